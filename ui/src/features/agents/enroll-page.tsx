import { A } from '@solidjs/router'
import { createResource, createSignal, For, Match, Show, Switch } from 'solid-js'
import { getVersion } from '../../api.ts'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { createSubmit, Field, SelectField } from '../../components/form.tsx'
import { formatDateTime, relativeTime } from '../../components/format.ts'
import { PageHeader } from '../../components/page-header.tsx'
import { useNow } from '../../components/time.tsx'
import { can } from '../../session.ts'
import { createEnrollmentToken, getTokenAgents, type CreatedToken, type TokenAgents } from './agents-api.ts'
import { parseTags } from './format.ts'
import { createPolled, Live, type Polled } from './live.tsx'
import { AgentStatusBadge, CommandBlock } from './widgets.tsx'
import './agents.css'

/** The wizard watches for its agent this often. */
const WATCH_POLL_MS = 2_000

const EXPIRY: { label: string; seconds: number }[] = [
  { label: '1 hour', seconds: 3_600 },
  { label: '1 day', seconds: 86_400 },
  { label: '7 days', seconds: 7 * 86_400 },
  { label: '30 days', seconds: 30 * 86_400 },
]

export function EnrollPage() {
  const [created, setCreated] = createSignal<CreatedToken | null>(null)
  const step = () => (created() ? 2 : 1)
  return (
    <section class="enroll-page">
      <A href="/agents" class="back-link">
        ← Agents
      </A>
      <PageHeader title="Enroll an agent" subtitle="Create a one-time token, run the commands on the host, and watch the agent connect." />
      <Show when={can('admin')} fallback={<ErrorPanel title="Only administrators can enroll agents" error={new Error('Ask an administrator for an enrollment token.')} />}>
        <ol class="wizard-steps" aria-label="Steps">
          <li aria-current={step() === 1 ? 'step' : undefined} classList={{ done: step() > 1 }}>
            <span class="step-number">1</span> Token
          </li>
          <li aria-current={step() === 2 ? 'step' : undefined}>
            <span class="step-number">2</span> Install and connect
          </li>
        </ol>
        <Show when={created()} fallback={<TokenForm onCreated={setCreated} />}>
          {(token) => <Instructions token={token()} onAnother={() => setCreated(null)} />}
        </Show>
      </Show>
    </section>
  )
}

function TokenForm(props: { onCreated: (t: CreatedToken) => void }) {
  const [name, setName] = createSignal('')
  const [expires, setExpires] = createSignal(86_400)
  const [uses, setUses] = createSignal('1')
  const [tags, setTags] = createSignal('')
  const form = createSubmit(async () => {
    const tagMap = parseTags(tags())
    const token = await createEnrollmentToken({
      ...(name().trim() ? { name: name().trim() } : {}),
      expires_in_seconds: expires(),
      max_uses: Number(uses()),
      ...(Object.keys(tagMap).length ? { tags: tagMap } : {}),
    })
    props.onCreated(token)
    return token
  })
  /** Tag problems come back by path (`tags.<key>` or `tags`): shown under the one tags field. */
  const tagError = () => Object.entries(form.errors()).find(([path]) => path === 'tags' || path.startsWith('tags.'))?.[1]
  const otherError = () => {
    const err = form.error()
    if (!err) return null
    return Object.keys(form.errors()).length > 0 ? null : err
  }
  return (
    <form class="card enroll-form" onSubmit={(e) => void form.submit(e)} novalidate>
      <h2>Enrollment token</h2>
      <div class="form-grid">
        <Field label="Name" hint="Optional: what the token is for, e.g. the rollout" value={name()} onInput={(e) => setName(e.currentTarget.value)} error={form.errors()['name']} maxlength={200} />
        <SelectField label="Expires in" onChange={(e) => setExpires(Number(e.currentTarget.value))} error={form.errors()['expires_in_seconds']}>
          {/* `selected` rather than the select's value: the options do not exist yet when the value is set. */}
          <For each={EXPIRY}>
            {(o) => (
              <option value={String(o.seconds)} selected={o.seconds === expires()}>
                {o.label}
              </option>
            )}
          </For>
        </SelectField>
        <Field
          label="Hosts that may use it"
          type="number"
          min="1"
          inputmode="numeric"
          hint="1 for a single host; more to roll out to several hosts with one token"
          value={uses()}
          onInput={(e) => setUses(e.currentTarget.value)}
          error={form.errors()['max_uses']}
          required
        />
        <Field label="Tags" hint="Optional key=value pairs, comma-separated, given to each enrolled host's target" placeholder="env=prod, role=web" value={tags()} onInput={(e) => setTags(e.currentTarget.value)} error={tagError()} />
      </div>
      <Show when={otherError()}>{(err) => <ErrorPanel title="Could not create the token" error={err()} />}</Show>
      <div class="form-actions">
        <A href="/agents" class="button">
          Cancel
        </A>
        <button type="submit" class="button primary" disabled={form.pending()}>
          {form.pending() ? 'Creating…' : 'Create token'}
        </button>
      </div>
    </form>
  )
}

function Instructions(props: { token: CreatedToken; onAnother: () => void }) {
  const [version] = createResource(() => getVersion())
  const now = useNow()
  const watch = createPolled((id: string) => getTokenAgents(id), WATCH_POLL_MS, () => props.token.id)
  const fingerprint = () => props.token.ca_fingerprint
  const debFile = () => `opsconductor-agent_${version.latest?.version ?? '<version>'}_amd64.deb`
  const windowsInstall = () =>
    `.\\install-agent.ps1 -Controller ${props.token.controller} -Token ${props.token.token}${fingerprint() ? ` -CaFingerprint ${fingerprint()}` : ''}`

  return (
    <div class="enroll-instructions">
      <article class="card token-card" data-testid="token-summary">
        <h2>Token created</h2>
        <dl class="facts">
          <Show when={props.token.name}>
            <dt>Name</dt>
            <dd>{props.token.name}</dd>
          </Show>
          <dt>Token</dt>
          <dd class="mono">{props.token.prefix}…</dd>
          <dt>Expires</dt>
          <dd title={formatDateTime(props.token.expires_at)}>
            {formatDateTime(props.token.expires_at)} ({relativeTime(props.token.expires_at, now())})
          </dd>
          <dt>Hosts</dt>
          <dd>{props.token.max_uses === 1 ? 'one host' : `up to ${props.token.max_uses} hosts`}</dd>
          <dt>Controller</dt>
          <dd class="mono">{props.token.controller}</dd>
          <dt>CA fingerprint</dt>
          <dd class="mono key">{fingerprint() ?? 'not available'}</dd>
        </dl>
        <p class="hint">The token is shown only on this page: copy the commands now. It is stored only as a hash.</p>
        <Show when={!fingerprint()}>
          <p class="field-error">This controller did not report its CA fingerprint; the agent needs it (--ca-fingerprint) to pin the controller's certificate.</p>
        </Show>
      </article>

      <WatchPanel watch={watch} maxUses={props.token.max_uses} />

      <div class="platforms">
        <section class="card platform" aria-labelledby="linux-heading">
          <h2 id="linux-heading">Linux (.deb, systemd)</h2>
          <p class="hint">On the host, as root. Installing the package creates the service; enrolling stores the identity in /var/lib/opsconductor-agent.</p>
          <CommandBlock label="Install the package" step={1} command={`sudo apt install ./${debFile()}`} testId="linux-install-command" />
          <CommandBlock label="Enroll with this controller" step={2} command={props.token.commands.linux} testId="linux-enroll-command" />
          <CommandBlock label="Start the service" step={3} command="sudo systemctl enable --now opsconductor-agent" testId="linux-start-command" />
        </section>
        <section class="card platform" aria-labelledby="windows-heading">
          <h2 id="windows-heading">Windows (service)</h2>
          <p class="hint">
            In an elevated PowerShell, from the unpacked Windows agent package: <span class="mono">install-agent.ps1</span> installs the service, enrolls it and starts it.
          </p>
          <CommandBlock label="Install, enroll and start" command={windowsInstall()} testId="windows-install-command" />
          <details class="more">
            <summary>Agent already installed?</summary>
            <CommandBlock label="Enroll the installed agent" command={props.token.commands.windows} testId="windows-enroll-command" />
            <p class="hint">Then start the OpsConductor agent service.</p>
          </details>
        </section>
      </div>

      <div class="form-actions wizard-actions">
        <button type="button" class="button" onClick={() => props.onAnother()}>
          Create another token
        </button>
        <A href="/agents" class="button primary">
          Done
        </A>
      </div>
    </div>
  )
}

function WatchPanel(props: { watch: Polled<TokenAgents>; maxUses: number }) {
  return (
    <Live polled={props.watch} what="the enrollment status">
      {(w) => {
        const online = () => w().agents.filter((a) => a.status === 'online')
        const state = () => (online().length > 0 ? 'connected' : w().agents.length > 0 ? 'enrolled' : w().token.status === 'active' ? 'waiting' : 'unusable')
        return (
          <article class={`card watch-card watch-${state()}`} data-testid="enroll-watch" data-state={state()}>
            <div role="status" class="watch-status">
              <Switch>
                <Match when={state() === 'connected'}>
                  <span class="watch-icon" aria-hidden="true">
                    ✓
                  </span>
                  <strong>
                    {online().length === 1 ? `Agent ${online()[0]!.name} is connected` : `${online().length} agents are connected`}
                  </strong>
                </Match>
                <Match when={state() === 'enrolled'}>
                  <span class="watch-spinner" aria-hidden="true" />
                  <strong>Enrolled — waiting for the agent to connect</strong>
                  <span class="hint">Start the service on the host.</span>
                </Match>
                <Match when={state() === 'waiting'}>
                  <span class="watch-spinner" aria-hidden="true" />
                  <strong>Waiting for an agent to enroll with this token…</strong>
                </Match>
                <Match when={state() === 'unusable'}>
                  <strong>This token is {w().token.status}; no agent enrolled with it.</strong>
                </Match>
              </Switch>
            </div>
            <Show when={w().agents.length > 0}>
              <p class="hint">
                {w().token.uses} of {props.maxUses} {props.maxUses === 1 ? 'use' : 'uses'}
              </p>
              <ul class="watch-agents">
                <For each={w().agents}>
                  {(a) => (
                    <li>
                      <A href={`/agents/${a.id}`}>{a.name}</A>
                      <AgentStatusBadge status={a.status} />
                    </li>
                  )}
                </For>
              </ul>
            </Show>
          </article>
        )
      }}
    </Live>
  )
}
