import { createUniqueId, For, Show } from 'solid-js'
import { Badge, type Tone } from '../../components/badge.tsx'
import { CopyButton } from '../../components/copy.tsx'
import type { AgentStatus } from './agents-api.ts'

const STATUS: Record<AgentStatus, { label: string; tone: Tone }> = {
  online: { label: 'Online', tone: 'good' },
  offline: { label: 'Offline', tone: 'bad' },
  revoked: { label: 'Revoked', tone: 'neutral' },
}

export function AgentStatusBadge(props: { status: AgentStatus }) {
  return (
    <Badge tone={STATUS[props.status].tone} data-status={props.status}>
      {STATUS[props.status].label}
    </Badge>
  )
}

/** The agent's version, flagged when it is older than the controller supports (OPSC_AGENT_MIN_VERSION). */
export function AgentVersion(props: { version: string; supported: boolean }) {
  return (
    <>
      <span class="mono">{props.version}</span>
      <Show when={!props.supported}>
        {' '}
        <Badge tone="bad" data-testid="agent-outdated" title="Older than the oldest agent version this controller supports: upgrade the agent package on this host">
          Outdated
        </Badge>
      </Show>
    </>
  )
}

/** A command to paste on a host, with a copy button (without clipboard access it selects the command, for Ctrl+C). */
export function CommandBlock(props: { label: string; step?: number; command: string; testId?: string }) {
  let pre!: HTMLPreElement
  const id = createUniqueId()
  return (
    <div class="command-block">
      <div class="command-head">
        <span id={id} class="command-label">
          <Show when={props.step}>{(n) => <span class="command-step">{n()}. </span>}</Show>
          {props.label}
        </span>
        <CopyButton text={props.command} label="Copy" aria-label={`Copy: ${props.label}`} selectOnRefusal={() => pre} />
      </div>
      <pre ref={pre} class="command" aria-labelledby={id} data-testid={props.testId} tabindex="0">
        <code>
          <For each={props.command.split(' ')}>
            {(word, i) => (
              <>
                {i() > 0 ? ' ' : ''}
                <span class={word.length > 24 ? 'word long' : 'word'}>{word}</span>
              </>
            )}
          </For>
        </code>
      </pre>
    </div>
  )
}
