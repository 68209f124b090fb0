import { useNavigate, useParams } from '@solidjs/router'
import { createSignal, For, Index, Match, Show, Switch } from 'solid-js'
import { createStore } from 'solid-js/store'
import { api, send, unwrap } from '../../api.ts'
import { createAction } from '../../components/action.ts'
import { ConfirmButton } from '../../components/dialog.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { createSubmit, Field, SaveActions, SelectField, TextAreaField } from '../../components/form.tsx'
import { EmptyState, LoadById } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { can } from '../../session.ts'
import { CHANNEL_TYPES } from './events.ts'
import { NotificationsNav } from './notifications-nav.tsx'
import { TestResultCard } from './test-result.tsx'
import type { Channel, ChannelType, TestResult } from './types.ts'
import '../schedules/schedules.css'
import './notifications.css'

/*
 * One channel (admins): its type's settings, and its secrets — write-only: a stored one shows as
 * set, typing replaces it, a box removes it. "Send test" delivers once to the saved channel and
 * shows what the receiver answered.
 */

interface Header {
  name: string
  value: string
}

interface ChannelForm {
  type: ChannelType
  name: string
  rate_limit: string
  to: string
  subject_prefix: string
  url: string
  method: 'POST' | 'PUT'
  content_type: string
  headers: Header[]
  secret_headers: Header[]
  /** Stored secret header names to remove. */
  remove_secret_headers: string[]
  hmac_secret: string
  username: string
  password: string
  body_template: string
  ca_pem: string
  timeout_ms: string
  /** Stored secret fields to remove (`hmac_secret`, `password`). */
  remove: string[]
}

function formOf(c?: Channel): ChannelForm {
  const cfg = (c?.config ?? {}) as Record<string, unknown>
  const str = (k: string) => (typeof cfg[k] === 'string' ? (cfg[k] as string) : '')
  return {
    type: c?.type ?? 'webhook',
    name: c?.name ?? '',
    rate_limit: String(c?.rate_limit_per_minute ?? 60),
    to: Array.isArray(cfg.to) ? (cfg.to as string[]).join('\n') : '',
    subject_prefix: str('subject_prefix'),
    url: '',
    method: cfg.method === 'PUT' ? 'PUT' : 'POST',
    content_type: str('content_type') || 'application/json',
    headers: Object.entries((cfg.headers ?? {}) as Record<string, string>).map(([name, value]) => ({ name, value })),
    secret_headers: [],
    remove_secret_headers: [],
    hmac_secret: '',
    username: str('username'),
    password: '',
    body_template: str('body_template'),
    ca_pem: str('ca_pem'),
    timeout_ms: typeof cfg.timeout_ms === 'number' ? String(cfg.timeout_ms) : '10000',
    remove: [],
  }
}

const num = (t: string): number | string => (t.trim() !== '' && Number.isFinite(Number(t)) ? Number(t) : t)

export function ChannelFormPage() {
  const params = useParams<{ id?: string }>()
  return (
    <section class="notifications-page">
      <Show when={can('admin')} fallback={<Denied />}>
        <LoadById
          id={params.id}
          fetch={(id) => unwrap(api['notification-channels'][':id'].$get({ param: { id } }), 'GET /notification-channels/:id')}
          what="the channel"
          header={
            <>
              <PageHeader title="Notification channel" />
              <NotificationsNav />
            </>
          }
          fallback={
            <>
              <PageHeader title="New channel" subtitle="Email, Slack, Teams or your own webhook." />
              <NotificationsNav />
              <ChannelEditor />
            </>
          }
        >
          {(value, update) => <ExistingChannel channel={value()} onChanged={update} />}
        </LoadById>
      </Show>
    </section>
  )
}

function Denied() {
  return (
    <>
      <PageHeader title="Notification channel" />
      <NotificationsNav />
      <EmptyState title="Channels are managed by admins" />
    </>
  )
}

function ExistingChannel(props: { channel: Channel; onChanged: (c: Channel) => void }) {
  const navigate = useNavigate()
  const [result, setResult] = createSignal<TestResult | null>(null)
  const c = () => props.channel
  const test = createAction(async () => {
    setResult(null)
    setResult(await send<TestResult>('POST', `/api/v1/notification-channels/${c().id}/test`))
  })
  return (
    <>
      <PageHeader
        title={c().name}
        subtitle={`${CHANNEL_TYPES[c().type]} channel`}
        actions={
          <>
            <button type="button" class="button" disabled={test.pending()} onClick={() => void test.run()}>
              {test.pending() ? 'Sending test…' : 'Send test'}
            </button>
            <ConfirmButton
              label="Delete"
              title={`Delete channel “${c().name}”?`}
              confirmLabel="Delete channel"
              danger
              errorTitle="Could not delete the channel"
              action={async () => {
                await send('DELETE', `/api/v1/notification-channels/${c().id}`)
                navigate('/notifications/channels')
              }}
            >
              <p>Rules that send to it stop reaching it; its sealed secrets are wiped. Messages already sent keep naming it.</p>
            </ConfirmButton>
          </>
        }
      />
      <NotificationsNav />
      <Show when={test.error()}>{(err) => <ErrorPanel title="Could not send the test" error={err()} />}</Show>
      <Show when={result()}>{(r) => <TestResultCard result={r()} title={`Test of ${c().name}`} />}</Show>
      <ChannelEditor existing={c()} onSaved={props.onChanged} />
    </>
  )
}

function HeaderRows(props: { label: string; rows: Header[]; onChange: (rows: Header[]) => void; secret?: boolean }) {
  return (
    <fieldset class="header-rows">
      <legend>{props.label}</legend>
      <Index each={props.rows}>
        {(row, i) => (
          <div class="header-row">
            <Field label={`Header ${i + 1} name`} class="mono" value={row().name} onInput={(e) => props.onChange(props.rows.map((r, j) => (j === i ? { ...r, name: e.currentTarget.value } : r)))} />
            <Field
              label={`Header ${i + 1} value`}
              type={props.secret ? 'password' : 'text'}
              autocomplete={props.secret ? 'new-password' : 'off'}
              class="mono"
              value={row().value}
              onInput={(e) => props.onChange(props.rows.map((r, j) => (j === i ? { ...r, value: e.currentTarget.value } : r)))}
            />
            <button type="button" class="button small" onClick={() => props.onChange(props.rows.filter((_, j) => j !== i))}>
              Remove header {i + 1}
            </button>
          </div>
        )}
      </Index>
      <button type="button" class="button small" onClick={() => props.onChange([...props.rows, { name: '', value: '' }])}>
        Add {props.secret ? 'secret ' : ''}header
      </button>
    </fieldset>
  )
}

function ChannelEditor(props: { existing?: Channel; onSaved?: (c: Channel) => void }) {
  const navigate = useNavigate()
  const [form, setForm] = createStore<ChannelForm>(formOf(props.existing))
  const [saved, setSaved] = createSignal(false)
  const stored = () => new Set(props.existing?.secret_fields ?? [])
  const storedHeaders = () => [...stored()].filter((f) => f.startsWith('headers.')).map((f) => f.slice('headers.'.length))
  const oldConfig = () => (props.existing?.config ?? {}) as Record<string, unknown>

  const { submit, pending, error, errors } = createSubmit(async () => {
    setSaved(false)
    const config: Record<string, unknown> = {}
    const secret: Record<string, unknown> = {}
    // On an update a key left empty is removed (null) if it was set; on a create it is left out.
    const optional = (key: string, value: string) => {
      if (value.trim()) config[key] = value
      else if (props.existing && oldConfig()[key] !== undefined) config[key] = null
    }
    if (form.type === 'email') {
      config.to = form.to.split(/[\s,;]+/).filter(Boolean)
      optional('subject_prefix', form.subject_prefix)
    } else {
      config.timeout_ms = num(form.timeout_ms)
      if (form.url.trim()) secret.url = form.url.trim()
    }
    if (form.type === 'webhook') {
      config.method = form.method
      config.content_type = form.content_type.trim() || 'application/json'
      config.headers = Object.fromEntries(form.headers.filter((h) => h.name.trim()).map((h) => [h.name.trim(), h.value]))
      optional('username', form.username)
      optional('body_template', form.body_template)
      optional('ca_pem', form.ca_pem)
      if (form.hmac_secret) secret.hmac_secret = form.hmac_secret
      else if (form.remove.includes('hmac_secret')) secret.hmac_secret = null
      if (form.password) secret.password = form.password
      else if (form.remove.includes('password')) secret.password = null
      const headers: Record<string, string | null> = {}
      for (const h of form.secret_headers) if (h.name.trim()) headers[h.name.trim()] = h.value
      for (const name of form.remove_secret_headers) headers[name] = null
      if (Object.keys(headers).length) secret.headers = headers
    }
    const body = {
      name: form.name,
      ...(props.existing ? {} : { type: form.type }),
      rate_limit_per_minute: num(form.rate_limit),
      config,
      ...(Object.keys(secret).length ? { secret } : {}),
    }
    const result = props.existing
      ? await send<Channel>('PUT', `/api/v1/notification-channels/${props.existing.id}`, body)
      : await send<Channel>('POST', '/api/v1/notification-channels', body)
    if (props.existing) {
      setForm({ url: '', hmac_secret: '', password: '', secret_headers: [], remove_secret_headers: [], remove: [] })
      setSaved(true)
      props.onSaved?.(result)
    } else navigate(`/notifications/channels/${result.id}`)
    return result
  })
  const e = (p: string) => errors()[p]
  const prefixed = (prefix: string) =>
    Object.entries(errors())
      .filter(([p]) => p.startsWith(prefix))
      .map(([p, m]) => `${p.slice(prefix.length + 1) || p}: ${m}`)
  const secretHint = (field: string, fallback: string) => (stored().has(field) ? 'Stored (sealed). Type to replace it.' : fallback)
  const RemoveBox = (p: { field: string; label: string }) => (
    <Show when={stored().has(p.field)}>
      <label class="check">
        <input type="checkbox" checked={form.remove.includes(p.field)} onChange={(ev) => setForm('remove', ev.currentTarget.checked ? [...form.remove, p.field] : form.remove.filter((f) => f !== p.field))} />
        <span>{p.label}</span>
      </label>
    </Show>
  )

  return (
    <form class="channel-form" onSubmit={(ev) => void submit(ev)} novalidate aria-label={props.existing ? 'Edit channel' : 'New channel'}>
      <fieldset class="card form-section">
        <legend class="section-title">Channel</legend>
        <div class="form-grid">
          <SelectField label="Type" disabled={!!props.existing} onChange={(ev) => setForm('type', ev.currentTarget.value as ChannelType)} error={e('type')}>
            <For each={Object.entries(CHANNEL_TYPES)}>
              {([v, label]) => (
                <option value={v} selected={form.type === v}>
                  {label}
                </option>
              )}
            </For>
          </SelectField>
          <Field label="Name" required value={form.name} onInput={(ev) => setForm('name', ev.currentTarget.value)} error={e('name')} />
          <Field label="Rate limit (messages per minute)" type="number" min="1" value={form.rate_limit} onInput={(ev) => setForm('rate_limit', ev.currentTarget.value)} error={e('rate_limit_per_minute')} />
        </div>
        <Switch>
          <Match when={form.type === 'email'}>
            <TextAreaField label="Recipients" rows={3} value={form.to} onInput={(ev) => setForm('to', ev.currentTarget.value)} error={e('config.to') ?? (prefixed('config.to').join('; ') || undefined)} hint="One address per line. Sent through the SMTP server set on the channels page." />
            <Field label="Subject prefix" value={form.subject_prefix} placeholder="[ops-prod]" onInput={(ev) => setForm('subject_prefix', ev.currentTarget.value)} error={e('config.subject_prefix')} />
          </Match>
          <Match when={form.type !== 'email'}>
            <Field
              label={form.type === 'webhook' ? 'URL' : 'Incoming webhook URL'}
              type="password"
              autocomplete="off"
              class="mono"
              value={form.url}
              placeholder={stored().has('url') ? 'Set — type to replace' : 'https://…'}
              onInput={(ev) => setForm('url', ev.currentTarget.value)}
              error={e('secret.url')}
              hint={secretHint('url', 'Write-only: sealed when saved, never shown again (it often carries a token).')}
            />
            <Field label="Timeout (ms)" type="number" value={form.timeout_ms} onInput={(ev) => setForm('timeout_ms', ev.currentTarget.value)} error={e('config.timeout_ms')} />
          </Match>
        </Switch>
      </fieldset>
      <Show when={form.type === 'webhook'}>
        <fieldset class="card form-section">
          <legend class="section-title">Request</legend>
          <div class="form-grid">
            <SelectField label="Method" onChange={(ev) => setForm('method', ev.currentTarget.value as 'POST' | 'PUT')} error={e('config.method')}>
              <option value="POST" selected={form.method === 'POST'}>
                POST
              </option>
              <option value="PUT" selected={form.method === 'PUT'}>
                PUT
              </option>
            </SelectField>
            <Field label="Content type" class="mono" value={form.content_type} onInput={(ev) => setForm('content_type', ev.currentTarget.value)} error={e('config.content_type')} />
          </div>
          <HeaderRows label="Headers" rows={form.headers} onChange={(rows) => setForm('headers', rows)} />
          <Show when={prefixed('config.headers').length}>
            <p class="field-error">{prefixed('config.headers').join('; ')}</p>
          </Show>
          <Show when={storedHeaders().length}>
            <fieldset class="group-picker">
              <legend>Stored secret headers</legend>
              <For each={storedHeaders()}>
                {(name) => (
                  <label class="check">
                    <input
                      type="checkbox"
                      checked={form.remove_secret_headers.includes(name)}
                      onChange={(ev) => setForm('remove_secret_headers', ev.currentTarget.checked ? [...form.remove_secret_headers, name] : form.remove_secret_headers.filter((n) => n !== name))}
                    />
                    <span>
                      Remove <span class="mono">{name}</span>
                    </span>
                  </label>
                )}
              </For>
            </fieldset>
          </Show>
          <HeaderRows label="Secret headers (write-only)" secret rows={form.secret_headers} onChange={(rows) => setForm('secret_headers', rows)} />
          <Show when={prefixed('secret.headers').length}>
            <p class="field-error">{prefixed('secret.headers').join('; ')}</p>
          </Show>
          <TextAreaField
            label="Body template"
            rows={6}
            value={form.body_template}
            onInput={(ev) => setForm('body_template', ev.currentTarget.value)}
            error={e('config.body_template')}
            hint="Empty: the default JSON body. Names: event, severity, subject, text, link, facts, data — e.g. {{ subject | json }}."
          />
        </fieldset>
        <fieldset class="card form-section">
          <legend class="section-title">Signing and authentication</legend>
          <div class="form-grid">
            <Field
              label="HMAC signing secret"
              type="password"
              autocomplete="new-password"
              value={form.hmac_secret}
              placeholder={stored().has('hmac_secret') ? 'Set — type to replace' : ''}
              onInput={(ev) => setForm('hmac_secret', ev.currentTarget.value)}
              error={e('secret.hmac_secret')}
              hint={secretHint('hmac_secret', 'At least 16 characters; requests are signed with it (X-OpsConductor-Signature).')}
            />
            <Field label="Basic auth user" autocomplete="off" value={form.username} onInput={(ev) => setForm('username', ev.currentTarget.value)} error={e('config.username')} />
            <Field
              label="Basic auth password"
              type="password"
              autocomplete="new-password"
              value={form.password}
              placeholder={stored().has('password') ? 'Set — type to replace' : ''}
              onInput={(ev) => setForm('password', ev.currentTarget.value)}
              error={e('secret.password')}
              hint={secretHint('password', 'Write-only.')}
            />
          </div>
          <RemoveBox field="hmac_secret" label="Remove the signing secret" />
          <RemoveBox field="password" label="Remove the basic auth password" />
          <TextAreaField label="CA certificate (PEM)" rows={3} value={form.ca_pem} onInput={(ev) => setForm('ca_pem', ev.currentTarget.value)} error={e('config.ca_pem')} hint="Only for a receiver with a certificate from an internal CA." />
        </fieldset>
      </Show>
      <SaveActions label="Save channel" pending={pending()} saved={saved()} error={error()} errorTitle="Could not save the channel" back={{ href: '/notifications/channels', label: props.existing ? 'Back' : 'Cancel' }} />
    </form>
  )
}
