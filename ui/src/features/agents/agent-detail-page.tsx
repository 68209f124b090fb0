import { A, useParams } from '@solidjs/router'
import { For, Show } from 'solid-js'
import { ConfirmButton } from '../../components/dialog.tsx'
import { formatDateTime, relativeTime } from '../../components/format.ts'
import { PageHeader } from '../../components/page-header.tsx'
import { useNow } from '../../components/time.tsx'
import { can } from '../../session.ts'
import { getAgent, revokeAgent, type Agent } from './agents-api.ts'
import { AGENTS_POLL_MS, OperatorOnly } from './agents-page.tsx'
import { factRows } from './format.ts'
import { createPolled, Live } from './live.tsx'
import { AgentStatusBadge, AgentVersion } from './widgets.tsx'
import './agents.css'

export function AgentDetailPage() {
  return (
    <OperatorOnly title="Agent">
      <AgentDetail />
    </OperatorOnly>
  )
}

function AgentDetail() {
  const params = useParams<{ id: string }>()
  const agent = createPolled((id: string) => getAgent(id), AGENTS_POLL_MS, () => params.id)
  return (
    <section class="agent-detail">
      <A href="/agents" class="back-link">
        ← Agents
      </A>
      <Live
        polled={agent}
        what="the agent"
        loading={
          <>
            <PageHeader title="Agent" />
            <div class="live-loading" aria-busy="true">
              Loading the agent…
            </div>
          </>
        }
      >
        {(a) => <AgentView agent={a()} onChanged={agent.refresh} />}
      </Live>
    </section>
  )
}

function AgentView(props: { agent: Agent; onChanged: () => void }) {
  const now = useNow()
  const facts = () => factRows(props.agent.facts)
  return (
    <>
      <PageHeader
        title={props.agent.name}
        subtitle={props.agent.hostname === props.agent.name ? 'Agent' : `Agent on ${props.agent.hostname}`}
        actions={
          <Show when={can('admin') && props.agent.status !== 'revoked'}>
            <ConfirmButton
              label="Revoke agent"
              title={`Revoke agent ${props.agent.name}?`}
              confirmLabel="Revoke agent"
              danger
              errorTitle="Could not revoke the agent"
              action={async () => {
                await revokeAgent(props.agent.id)
                props.onChanged()
              }}
            >
              <p>The agent is disconnected at once and can never connect again; work waiting for it ends undelivered.</p>
              <p>Its target and run history stay. To manage the host again, enroll it with a new token.</p>
            </ConfirmButton>
          </Show>
        }
      />
      <div class="card-grid agent-cards">
        <article class="card" data-testid="agent-state">
          <h2>State</h2>
          <p>
            <AgentStatusBadge status={props.agent.status} />
          </p>
          <dl class="facts">
            <dt>Last seen</dt>
            <dd title={formatDateTime(props.agent.last_seen_at)}>{relativeTime(props.agent.last_seen_at, now())}</dd>
            <dt>Address</dt>
            <dd class="mono">{props.agent.address ?? '—'}</dd>
            <Show when={props.agent.revoked_at}>
              <dt>Revoked</dt>
              <dd>{formatDateTime(props.agent.revoked_at)}</dd>
            </Show>
          </dl>
          <Show when={props.agent.status === 'revoked'}>
            <p class="hint">A revoked agent can no longer connect. To manage this host again, enroll it with a new token.</p>
          </Show>
        </article>
        <article class="card" data-testid="agent-info">
          <h2>Agent</h2>
          <dl class="facts">
            <dt>Version</dt>
            <dd>
              <AgentVersion version={props.agent.agent_version} supported={props.agent.version_supported} />
            </dd>
            <dt>Protocol</dt>
            <dd>v{props.agent.protocol_version}</dd>
            <dt>Enrolled</dt>
            <dd>{formatDateTime(props.agent.enrolled_at)}</dd>
            <dt>Target</dt>
            <dd>
              <Show when={props.agent.target_id} fallback="—">
                {(id) => <A href={`/targets/${id()}`}>Open target</A>}
              </Show>
            </dd>
            <dt>Agent id</dt>
            <dd class="mono id" title={props.agent.id}>
              {props.agent.id}
            </dd>
          </dl>
        </article>
        <article class="card facts-card" data-testid="agent-facts">
          <h2>Host facts</h2>
          <Show when={facts().length > 0} fallback={<p class="hint">The agent reported no facts.</p>}>
            <dl class="facts">
              <For each={facts()}>
                {(f) => (
                  <>
                    <dt>{f.label}</dt>
                    <dd class={f.key === 'machine_id' ? 'mono' : undefined}>{f.value}</dd>
                  </>
                )}
              </For>
            </dl>
          </Show>
        </article>
        <article class="card" data-testid="agent-keys">
          <h2>Keys</h2>
          <dl class="facts">
            <dt>Identity (Ed25519)</dt>
            <dd class="mono key">{props.agent.identity_public_key}</dd>
            <dt>Sealing (X25519)</dt>
            <dd class="mono key">{props.agent.box_public_key}</dd>
          </dl>
        </article>
      </div>
    </>
  )
}
