import { A, useNavigate, useParams } from '@solidjs/router'
import { createEffect, createMemo, createResource, createSignal, createUniqueId, For, Index, Match, Show, Switch } from 'solid-js'
import { createStore, produce } from 'solid-js/store'
import { api, unwrap } from '../../api.ts'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { createSubmit, Field, SelectField, TextAreaField } from '../../components/form.tsx'
import { Loaded } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { can } from '../../session.ts'
import { credentialSummary, listCredentials, TYPE_LABELS, type Credential } from '../credentials/data.ts'
import { createTarget, fetchAll, getTarget, OS_LABELS, updateTarget, type ConnectionType, type OsType, type Target, type TargetBody } from './data.ts'
import { messagesUnder } from './parts.tsx'
import './targets.css'

/*
 * Create or edit a target: what it is (name, address, OS, tags) and how the controller reaches it
 * (SSH with a credential and host-key policy and optional jump hosts, WinRM over HTTPS/HTTP, or
 * through an agent). Validation is the server's: its 400 names fields by JSON path and each field
 * shows its own message.
 */

type HostKeyPolicy = 'strict' | 'tofu' | 'off'

interface FormState {
  name: string
  address: string
  os_type: OsType
  description: string
  enabled: boolean
  tags: { key: string; value: string }[]
  type: ConnectionType
  ssh: { port: string; credential_id: string; host_key_policy: HostKeyPolicy; jump: { name: string; target_id: string; credential_id: string }[] }
  winrm: { https: boolean; port: string; credential_id: string; verify_tls: boolean; tls_ca: string }
  agent: { agent_id: string }
}

const EMPTY: FormState = {
  name: '',
  address: '',
  os_type: 'linux',
  description: '',
  enabled: true,
  tags: [],
  type: 'ssh',
  ssh: { port: '22', credential_id: '', host_key_policy: 'tofu', jump: [] },
  winrm: { https: true, port: '', credential_id: '', verify_tls: true, tls_ca: '' },
  agent: { agent_id: '' },
}

const POLICIES: [HostKeyPolicy, string, string][] = [
  ['tofu', 'Trust on first use', 'The first key seen is trusted; a changed key is refused until an operator approves it.'],
  ['strict', 'Strict', 'Only keys an operator approved on the target page; the first connection records the key as pending.'],
  ['off', 'Off (any key)', 'Any key is accepted. Not recommended.'],
]

const CREDENTIAL_TYPES_FOR: Record<'ssh' | 'winrm', Credential['type'][]> = { ssh: ['ssh_key', 'ssh_password'], winrm: ['winrm'] }

async function stateOf(t: Target): Promise<FormState> {
  const c = t.connection
  const s: FormState = structuredClone(EMPTY)
  Object.assign(s, { name: t.name, address: t.address, os_type: t.os_type as OsType, description: t.description ?? '', enabled: t.enabled, type: c.type })
  s.tags = Object.entries(t.tags).map(([key, value]) => ({ key, value }))
  if (c.type === 'ssh') {
    // Jump hosts are stored by id; the form shows their names.
    const jump = await Promise.all(
      c.jump.map(async (h) => ({ name: await getTarget(h.target_id).then((x) => x.name, () => h.target_id), target_id: h.target_id, credential_id: h.credential_id ?? '' })),
    )
    s.ssh = { port: String(c.port), credential_id: c.credential_id ?? '', host_key_policy: c.host_key_policy, jump }
  }
  if (c.type === 'winrm') s.winrm = { https: c.https, port: String(c.port), credential_id: c.credential_id ?? '', verify_tls: c.verify_tls, tls_ca: (c as { tls_ca?: string }).tls_ca ?? '' }
  if (c.type === 'agent') s.agent = { agent_id: c.agent_id ?? '' }
  return s
}

const portOf = (v: string): number | undefined => (v.trim() === '' ? undefined : Number(v))

/** Jump hosts are named by the operator; the API takes ids. Unknown names become field errors here. */
async function resolveJumpHosts(rows: FormState['ssh']['jump']): Promise<{ ids: string[]; problems: Record<string, string> }> {
  const problems: Record<string, string> = {}
  const ids = await Promise.all(
    rows.map(async (row, i) => {
      const name = row.name.trim()
      if (row.target_id) return row.target_id
      const page = await unwrap(api.targets.$get({ query: { q: name, connection: 'ssh', limit: '50' } }), 'GET /targets')
      const hit = page.items.find((t) => t.name.toLowerCase() === name.toLowerCase())
      if (!hit) problems[`connection.jump[${i}].target_id`] = `no SSH target named ${name}`
      return hit?.id ?? ''
    }),
  )
  return { ids, problems }
}

function bodyOf(s: FormState, jumpIds: string[]): TargetBody {
  const connection: TargetBody['connection'] =
    s.type === 'ssh'
      ? {
          type: 'ssh',
          ...(portOf(s.ssh.port) !== undefined ? { port: portOf(s.ssh.port)! } : {}),
          credential_id: s.ssh.credential_id || null,
          host_key_policy: s.ssh.host_key_policy,
          jump: s.ssh.jump.map((h, i) => ({ target_id: jumpIds[i]!, credential_id: h.credential_id || null })),
        }
      : s.type === 'winrm'
        ? {
            type: 'winrm',
            https: s.winrm.https,
            ...(portOf(s.winrm.port) !== undefined ? { port: portOf(s.winrm.port)! } : {}),
            credential_id: s.winrm.credential_id || null,
            verify_tls: s.winrm.verify_tls,
            ...(s.winrm.https && s.winrm.tls_ca.trim() ? { tls_ca: s.winrm.tls_ca } : {}),
          }
        : { type: 'agent', agent_id: s.agent.agent_id || null }
  return {
    name: s.name,
    address: s.address,
    os_type: s.os_type,
    description: s.description.trim() || null,
    enabled: s.enabled,
    tags: Object.fromEntries(s.tags.filter((t) => t.key.trim() !== '' || t.value !== '').map((t) => [t.key.trim(), t.value])),
    connection,
  }
}

export function NewTargetPage() {
  return <TargetForm initial={structuredClone(EMPTY)} />
}

export function EditTargetPage() {
  const params = useParams<{ id: string }>()
  const [initial, { refetch }] = createResource(() => params.id, async (id) => {
    const target = await getTarget(id)
    return { target, state: await stateOf(target) }
  })
  return (
    <Loaded resource={initial} what="the target" onRetry={() => void refetch()}>
      {(loaded) => <TargetForm initial={loaded.state} target={loaded.target} />}
    </Loaded>
  )
}

function TargetForm(props: { initial: FormState; target?: Target }) {
  const navigate = useNavigate()
  const [form, setForm] = createStore<FormState>(props.initial)
  const [connectionTouched, setConnectionTouched] = createSignal(!!props.target)
  const [credentials] = createResource(() => listCredentials())
  const [agents] = createResource(() => (form.type === 'agent' && can('operator') ? true : undefined), () => fetchAll((cursor) => unwrap(api.agents.$get({ query: { limit: '500', ...(cursor ? { cursor } : {}) } }), 'GET /agents')))
  const [localErrors, setLocalErrors] = createSignal<Record<string, string>>({})
  let formEl!: HTMLFormElement

  const save = createSubmit(async () => {
    setLocalErrors({})
    const { ids, problems } = form.type === 'ssh' ? await resolveJumpHosts(form.ssh.jump) : { ids: [], problems: {} }
    if (Object.keys(problems).length) {
      setLocalErrors(problems)
      return
    }
    const body = bodyOf(form, ids)
    const saved = props.target ? await updateTarget(props.target.id, body) : await createTarget(body)
    navigate(`/targets/${saved.id}`, { state: { saved: props.target ? 'Changes saved.' : 'Target created.' } })
  })
  const errors = createMemo(() => ({ ...save.errors(), ...localErrors() }))
  const submit = async (e: Event) => {
    await save.submit(e)
    // Take the operator to the first thing to fix.
    queueMicrotask(() => formEl.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus())
  }

  const credentialOptions = (kind: 'ssh' | 'winrm') => (credentials() ?? []).filter((c) => CREDENTIAL_TYPES_FOR[kind].includes(c.type))
  const setOs = (os: OsType) => {
    setForm('os_type', os)
    // A new target follows its OS to the usual transport until the operator picks one.
    if (!connectionTouched()) setForm('type', os === 'windows' ? 'winrm' : 'ssh')
  }
  const typeGroup = createUniqueId()
  const title = () => (props.target ? `Edit ${props.target.name}` : 'New target')

  return (
    <div class="targets-area">
      <PageHeader title={title()} subtitle={props.target ? props.target.address : 'A host or device the controller can reach.'} />
      <form ref={formEl} class="target-form" onSubmit={(e) => void submit(e)} novalidate aria-label={title()}>
        <Show when={save.error()}>{(err) => <ErrorPanel title="Could not save the target" error={err()} />}</Show>
        <Show when={Object.keys(localErrors()).length}>
          <div class="error-panel" role="alert">
            <div class="error-title">Check the jump hosts</div>
            <p class="error-message">{Object.values(localErrors()).join('; ')}</p>
          </div>
        </Show>

        <section class="card" aria-labelledby="tf-what">
          <h2 id="tf-what">Target</h2>
          <div class="form-grid">
            <Field label="Name" name="name" required autocomplete="off" value={form.name} onInput={(e) => setForm('name', e.currentTarget.value)} error={errors().name} hint="Unique; letters, digits and . _ @ : -" />
            <Field label="Address" name="address" required autocomplete="off" value={form.address} onInput={(e) => setForm('address', e.currentTarget.value)} error={errors().address} hint="Host name or IP address" />
            <SelectField label="OS type" name="os_type" value={form.os_type} onChange={(e) => setOs(e.currentTarget.value as OsType)} error={errors().os_type}>
              <For each={Object.entries(OS_LABELS) as [OsType, string][]}>{([v, l]) => <option value={v}>{l}</option>}</For>
            </SelectField>
          </div>
          <TextAreaField label="Description" name="description" rows={2} value={form.description} onInput={(e) => setForm('description', e.currentTarget.value)} error={errors().description} />
          <label class="check">
            <input type="checkbox" checked={form.enabled} onChange={(e) => setForm('enabled', e.currentTarget.checked)} /> Enabled (jobs and schedules may select it)
          </label>
        </section>

        <section class="card" aria-labelledby="tf-tags">
          <h2 id="tf-tags">Tags</h2>
          <p class="hint">Tags select targets in jobs and group selectors, e.g. env=prod, role=web.</p>
          <Show when={messagesUnder(errors(), 'tags')}>{(m) => <p class="field-error">{m()}</p>}</Show>
          <ul class="tag-rows">
            <Index each={form.tags}>
              {(tag, i) => (
                <li class="tag-row">
                  <Field label={`Tag ${i + 1} key`} value={tag().key} onInput={(e) => setForm('tags', i, 'key', e.currentTarget.value)} error={errors()[`tags.${tag().key.trim()}`]} />
                  <Field label={`Tag ${i + 1} value`} value={tag().value} onInput={(e) => setForm('tags', i, 'value', e.currentTarget.value)} />
                  <button type="button" class="button small" onClick={() => setForm('tags', (t) => t.filter((_, j) => j !== i))} aria-label={`Remove tag ${i + 1}`}>
                    Remove
                  </button>
                </li>
              )}
            </Index>
          </ul>
          <button type="button" class="button small" onClick={() => setForm('tags', (t) => [...t, { key: '', value: '' }])}>
            Add tag
          </button>
        </section>

        <section class="card" aria-labelledby="tf-conn">
          <h2 id="tf-conn">Connection</h2>
          <fieldset class="segmented">
            <legend>How the controller reaches it</legend>
            <For each={[['ssh', 'SSH (Linux, Unix, network)'], ['winrm', 'WinRM (Windows)'], ['agent', 'Agent (installed on the host)']] as [ConnectionType, string][]}>
              {([value, label]) => (
                <label classList={{ chosen: form.type === value }}>
                  <input
                    type="radio"
                    name={typeGroup}
                    value={value}
                    checked={form.type === value}
                    onChange={() => {
                      setConnectionTouched(true)
                      setForm('type', value)
                    }}
                  />
                  {label}
                </label>
              )}
            </For>
          </fieldset>
          <Show when={errors()['connection.type'] ?? errors().connection}>{(m) => <p class="field-error">{m()}</p>}</Show>

          <Switch>
            <Match when={form.type === 'ssh'}>
              <div class="form-grid">
                <Field label="SSH port" name="port" type="number" inputmode="numeric" min="1" max="65535" value={form.ssh.port} onInput={(e) => setForm('ssh', 'port', e.currentTarget.value)} error={errors()['connection.port']} />
                <CredentialPicker label="SSH credential" kind="ssh" value={form.ssh.credential_id} options={credentialOptions('ssh')} loading={credentials.loading} onChange={(v) => setForm('ssh', 'credential_id', v)} error={errors()['connection.credential_id']} />
                <SelectField
                  label="Host-key policy"
                  value={form.ssh.host_key_policy}
                  onChange={(e) => setForm('ssh', 'host_key_policy', e.currentTarget.value as HostKeyPolicy)}
                  error={errors()['connection.host_key_policy']}
                  hint={POLICIES.find(([v]) => v === form.ssh.host_key_policy)?.[2]}
                >
                  <For each={POLICIES}>{([v, l]) => <option value={v}>{l}</option>}</For>
                </SelectField>
              </div>
              <Show when={form.ssh.host_key_policy === 'off'}>
                <p class="warning-line" role="note">
                  With host-key verification off, anyone who can intercept the connection can pose as this host and read the credential.
                </p>
              </Show>
              <h3 class="subhead">Jump hosts</h3>
              <p class="hint">Reach the target through up to 5 SSH hosts, in order (the first is reached directly).</p>
              <ol class="jump-rows">
                <Index each={form.ssh.jump}>
                  {(hop, i) => (
                    <li class="jump-row">
                      <JumpHostName index={i} value={hop().name} onInput={(v) => setForm('ssh', 'jump', i, { name: v, target_id: '' })} error={errors()[`connection.jump[${i}].target_id`]} />
                      <CredentialPicker label={`Jump host ${i + 1} credential`} kind="ssh" value={hop().credential_id} options={credentialOptions('ssh')} loading={credentials.loading} onChange={(v) => setForm('ssh', 'jump', i, 'credential_id', v)} error={errors()[`connection.jump[${i}].credential_id`]} />
                      <button type="button" class="button small" aria-label={`Remove jump host ${i + 1}`} onClick={() => setForm('ssh', 'jump', (j) => j.filter((_, k) => k !== i))}>
                        Remove
                      </button>
                    </li>
                  )}
                </Index>
              </ol>
              <Show when={form.ssh.jump.length < 5}>
                <button type="button" class="button small" onClick={() => setForm('ssh', 'jump', produce((j) => void j.push({ name: '', target_id: '', credential_id: '' })))}>
                  Add jump host
                </button>
              </Show>
            </Match>
            <Match when={form.type === 'winrm'}>
              <div class="form-grid">
                <Field label="WinRM port" name="port" type="number" inputmode="numeric" min="1" max="65535" placeholder={form.winrm.https ? '5986' : '5985'} value={form.winrm.port} onInput={(e) => setForm('winrm', 'port', e.currentTarget.value)} error={errors()['connection.port']} hint="Empty: 5986 for HTTPS, 5985 for HTTP" />
                <CredentialPicker label="WinRM credential" kind="winrm" value={form.winrm.credential_id} options={credentialOptions('winrm')} loading={credentials.loading} onChange={(v) => setForm('winrm', 'credential_id', v)} error={errors()['connection.credential_id']} />
              </div>
              <label class="check">
                <input type="checkbox" checked={form.winrm.https} onChange={(e) => setForm('winrm', 'https', e.currentTarget.checked)} /> HTTPS
              </label>
              <Show when={form.winrm.https}>
                <label class="check">
                  <input type="checkbox" checked={form.winrm.verify_tls} onChange={(e) => setForm('winrm', 'verify_tls', e.currentTarget.checked)} /> Verify the host's TLS certificate
                </label>
                <TextAreaField
                  label="CA certificate (PEM, optional)"
                  rows={3}
                  placeholder="-----BEGIN CERTIFICATE-----"
                  value={form.winrm.tls_ca}
                  onInput={(e) => setForm('winrm', 'tls_ca', e.currentTarget.value)}
                  error={errors()['connection.tls_ca']}
                  hint="Verify the host's certificate against this CA instead of the system store"
                />
              </Show>
              <Show when={!form.winrm.https || !form.winrm.verify_tls}>
                <p class="warning-line" role="note">
                  {form.winrm.https ? 'Without certificate verification, an interceptor can pose as this host.' : 'Plain HTTP: use NTLM credentials so the password is not sent in the clear; prefer HTTPS.'}
                </p>
              </Show>
            </Match>
            <Match when={form.type === 'agent'}>
              <SelectField label="Agent" value={form.agent.agent_id} onChange={(e) => setForm('agent', 'agent_id', e.currentTarget.value)} error={errors()['connection.agent_id']} hint="Not bound: the target is tied to its agent when the agent enrolls for it.">
                <option value="">Not bound yet</option>
                <For each={agents() ?? []}>
                  {(a) => (
                    <option value={a.id} selected={a.id === form.agent.agent_id}>
                      {a.name} ({a.hostname}, {a.status})
                    </option>
                  )}
                </For>
              </SelectField>
              <Show when={agents.error as unknown}>{(err) => <ErrorPanel title="Could not load agents" error={err()} />}</Show>
            </Match>
          </Switch>
        </section>

        <div class="form-actions">
          <A href={props.target ? `/targets/${props.target.id}` : '/targets'} class="button">
            Cancel
          </A>
          <button type="submit" class="button primary" disabled={save.pending()}>
            {save.pending() ? 'Saving…' : props.target ? 'Save changes' : 'Create target'}
          </button>
        </div>
      </form>
    </div>
  )
}

function CredentialPicker(props: { label: string; kind: 'ssh' | 'winrm'; value: string; options: Credential[]; loading: boolean; error?: string | undefined; onChange: (id: string) => void }) {
  const known = () => props.value === '' || props.options.some((c) => c.id === props.value)
  // The options arrive after the select is made: choose the value again once they are there.
  let select: HTMLSelectElement | undefined
  createEffect(() => {
    void props.options.length
    if (select && !props.loading) select.value = props.value
  })
  return (
    <SelectField
      ref={(el: HTMLSelectElement) => (select = el)}
      label={props.label}
      value={props.value}
      onChange={(e) => props.onChange(e.currentTarget.value)}
      error={props.error}
      hint={props.loading ? 'Loading credentials…' : props.options.length === 0 ? `No ${props.kind === 'ssh' ? 'SSH' : 'WinRM'} credentials yet${can('admin') ? ': add one under Credentials' : ''}` : undefined}
    >
      <option value="">None</option>
      <Show when={!props.loading && !known()}>
        <option value={props.value} selected>
          {props.value} (not found)
        </option>
      </Show>
      <For each={props.options}>
        {(c) => (
          // Options arrive after the select is made: each says whether it is the chosen one.
          <option value={c.id} selected={c.id === props.value}>
            {c.name} — {TYPE_LABELS[c.type]}
            {credentialSummary(c) ? `, ${credentialSummary(c)}` : ''}
          </option>
        )}
      </For>
    </SelectField>
  )
}

/** A jump host by name, with suggestions from the SSH targets as the operator types. */
function JumpHostName(props: { index: number; value: string; error?: string | undefined; onInput: (v: string) => void }) {
  const listId = createUniqueId()
  const [term, setTerm] = createSignal(props.value)
  const [suggestions] = createResource(term, async (q) => (q.trim().length < 1 ? [] : (await unwrap(api.targets.$get({ query: { q: q.trim(), connection: 'ssh', limit: '20' } }), 'GET /targets')).items))
  return (
    <>
      <Field
        label={`Jump host ${props.index + 1}`}
        placeholder="SSH target name"
        list={listId}
        autocomplete="off"
        value={props.value}
        onInput={(e) => {
          props.onInput(e.currentTarget.value)
          setTerm(e.currentTarget.value)
        }}
        error={props.error}
      />
      <datalist id={listId}>
        <For each={suggestions() ?? []}>{(t) => <option value={t.name}>{t.address}</option>}</For>
      </datalist>
    </>
  )
}
