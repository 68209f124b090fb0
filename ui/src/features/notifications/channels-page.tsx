import { A } from '@solidjs/router'
import { createResource, createSignal, For, Show } from 'solid-js'
import { api, getJson, send, unwrap } from '../../api.ts'
import { DataTable } from '../../components/data-table.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { createSubmit, Field, SaveActions, SelectField, TextAreaField } from '../../components/form.tsx'
import { formatDateTime } from '../../components/format.ts'
import { EmptyState, Loaded } from '../../components/loaded.tsx'
import { NewLink, PageHeader } from '../../components/page-header.tsx'
import { can } from '../../session.ts'
import { CHANNEL_TYPES } from './events.ts'
import { NotificationsNav } from './notifications-nav.tsx'
import { TestResultCard } from './test-result.tsx'
import type { Channel, ChannelList, SmtpSettings, SmtpTestResult, TestResult } from './types.ts'
import '../schedules/schedules.css'
import './notifications.css'

/*
 * Channels (admins): where messages go, each testable in place — the receiver's own answer is
 * shown — and the SMTP server email channels send through.
 */

/** Where a channel sends, in words, without any secret. */
export function destinationOf(c: Channel): string {
  const cfg = c.config as Record<string, unknown>
  switch (c.type) {
    case 'email':
      return Array.isArray(cfg.to) ? (cfg.to as string[]).join(', ') : ''
    case 'webhook':
      return `${typeof cfg.method === 'string' ? cfg.method : 'POST'} to ${c.secret_fields.includes('url') ? 'its URL (sealed)' : 'no URL'}${c.secret_fields.includes('hmac_secret') ? ', signed' : ''}`
    default:
      return c.secret_fields.includes('url') ? 'incoming webhook (URL sealed)' : 'no URL set'
  }
}

export function ChannelsPage() {
  return (
    <section class="notifications-page">
      <PageHeader
        title="Notification channels"
        subtitle="Where notifications go. Secrets (URLs, keys, passwords) are sealed and never shown again."
        actions={
          <NewLink href="/notifications/channels/new" role="admin">
            New channel
          </NewLink>
        }
      />
      <NotificationsNav />
      <Show when={can('admin')} fallback={<EmptyState title="Channels are managed by admins">Ask an admin to add or change a channel.</EmptyState>}>
        <ChannelTable />
        <SmtpCard />
      </Show>
    </section>
  )
}

function ChannelTable() {
  const [channels, { refetch }] = createResource(() => getJson<ChannelList>('/api/v1/notification-channels?limit=500'))
  const [testing, setTesting] = createSignal<string | null>(null)
  const [results, setResults] = createSignal<Record<string, { result?: TestResult; error?: unknown }>>({})
  const test = async (c: Channel) => {
    setTesting(c.id)
    try {
      const result = await send<TestResult>('POST', `/api/v1/notification-channels/${c.id}/test`)
      setResults({ ...results(), [c.id]: { result } })
    } catch (error) {
      setResults({ ...results(), [c.id]: { error } })
    } finally {
      setTesting(null)
    }
  }
  return (
    <Loaded resource={channels} what="channels" onRetry={() => void refetch()}>
      {(list) => (
        <Show
          when={list.items.length > 0}
          fallback={
            <EmptyState title="No channels yet">
              <p>Add an email list, a Slack or Teams incoming webhook, or your own webhook.</p>
              <A href="/notifications/channels/new" class="button primary">
                New channel
              </A>
            </EmptyState>
          }
        >
          <DataTable label="Channels" columns={['Name', 'Type', 'Sends to', 'Rate limit', 'Changed', '']} each={list.items}>
            {(c) => (
              <>
                <tr data-channel={c.name}>
                  <td>
                    <A href={`/notifications/channels/${c.id}`} class="strong-link">
                      {c.name}
                    </A>
                  </td>
                  <td>{CHANNEL_TYPES[c.type]}</td>
                  <td class="wrap">{destinationOf(c)}</td>
                  <td>{c.rate_limit_per_minute}/min</td>
                  <td>
                    {formatDateTime(c.updated_at)}
                    {c.updated_by ? ` · ${c.updated_by}` : ''}
                  </td>
                  <td class="row-actions">
                    <button type="button" class="button small" disabled={testing() === c.id} onClick={() => void test(c)}>
                      {testing() === c.id ? 'Testing…' : 'Test'}
                      <span class="visually-hidden"> {c.name}</span>
                    </button>
                  </td>
                </tr>
                <Show when={results()[c.id]}>
                  {(r) => (
                    <tr class="attempts-row">
                      <td colspan="6">
                        <Show when={r().result} fallback={<ErrorPanel title={`Could not test “${c.name}”`} error={r().error} />}>
                          {(res) => <TestResultCard result={res()} title={`Test of ${c.name}`} />}
                        </Show>
                      </td>
                    </tr>
                  )}
                </Show>
              </>
            )}
          </DataTable>
        </Show>
      )}
    </Loaded>
  )
}

const SECURITY: Record<SmtpSettings['security'], string> = {
  starttls: 'STARTTLS (usually port 587)',
  tls: 'Implicit TLS (usually port 465)',
  none: 'None — a relay on a trusted network (port 25)',
}

function SmtpCard() {
  const [settings, { refetch, mutate }] = createResource(() => unwrap(api.notification.smtp.settings.$get(), 'GET /notification/smtp/settings'))
  return (
    <section class="card smtp-card" aria-labelledby="smtp-title">
      <h2 id="smtp-title">Email (SMTP) server</h2>
      <Show when={!settings.error} fallback={<ErrorPanel title="Could not load the SMTP settings" error={settings.error} onRetry={() => void refetch()} />}>
        <Show when={settings.latest} fallback={<p class="hint" aria-busy="true">Loading SMTP settings…</p>}>
          {(s) => <SmtpForm settings={s()} onSaved={(next) => mutate(next)} />}
        </Show>
      </Show>
    </section>
  )
}

function SmtpForm(props: { settings: SmtpSettings; onSaved: (s: SmtpSettings) => void }) {
  const s = props.settings // initial values; has_password and configured are read live below
  const [host, setHost] = createSignal(s.host ?? '')
  const [port, setPort] = createSignal(s.port ? String(s.port) : '')
  const [security, setSecurity] = createSignal<SmtpSettings['security']>(s.security)
  const [username, setUsername] = createSignal(s.username ?? '')
  const [password, setPassword] = createSignal('')
  const [clearPassword, setClearPassword] = createSignal(false)
  const [fromAddress, setFromAddress] = createSignal(s.from_address ?? '')
  const [fromName, setFromName] = createSignal(s.from_name ?? '')
  const [caPem, setCaPem] = createSignal(s.ca_pem ?? '')
  const [timeout, setTimeoutMs] = createSignal(String(s.timeout_ms))
  const [saved, setSaved] = createSignal(false)
  const [testTo, setTestTo] = createSignal('')
  const [testResult, setTestResult] = createSignal<SmtpTestResult | null>(null)

  const save = createSubmit(async () => {
    setSaved(false)
    const body: Record<string, unknown> = {
      host: host().trim(),
      port: port().trim() ? (Number.isFinite(Number(port())) ? Number(port()) : port()) : null,
      security: security(),
      username: username().trim() || null,
      from_address: fromAddress().trim(),
      from_name: fromName().trim() || null,
      ca_pem: caPem().trim() || null,
      timeout_ms: Number.isFinite(Number(timeout())) ? Number(timeout()) : timeout(),
      ...(password() ? { password: password() } : clearPassword() ? { password: null } : {}),
    }
    const next = await send<SmtpSettings>('POST', '/api/v1/notification/smtp/settings', body)
    setPassword('')
    setClearPassword(false)
    setSaved(true)
    props.onSaved(next)
    return next
  })
  const testMail = createSubmit(async () => {
    setTestResult(null)
    const r = await send<SmtpTestResult>('POST', '/api/v1/notification/smtp/test', { to: testTo().trim() })
    setTestResult(r)
    return r
  })
  const e = (p: string) => save.errors()[p]
  return (
    <>
      <form onSubmit={(ev) => void save.submit(ev)} novalidate aria-label="SMTP settings">
        <Show when={!props.settings.configured}>
          <p class="hint">Not configured yet: email channels wait (and retry) until it is.</p>
        </Show>
        <div class="form-grid">
          <Field label="SMTP host" value={host()} onInput={(ev) => setHost(ev.currentTarget.value)} error={e('host')} required />
          <Field label="Port" type="number" value={port()} placeholder="by security" onInput={(ev) => setPort(ev.currentTarget.value)} error={e('port')} />
          <SelectField label="Security" onChange={(ev) => setSecurity(ev.currentTarget.value as SmtpSettings['security'])} error={e('security')}>
            <For each={Object.entries(SECURITY)}>
              {([v, label]) => (
                <option value={v} selected={security() === v}>
                  {label}
                </option>
              )}
            </For>
          </SelectField>
          <Field label="Username" autocomplete="off" value={username()} onInput={(ev) => setUsername(ev.currentTarget.value)} error={e('username')} />
          <Field
            label="Password"
            type="password"
            autocomplete="new-password"
            value={password()}
            placeholder={props.settings.has_password ? 'Set — type to replace' : ''}
            onInput={(ev) => setPassword(ev.currentTarget.value)}
            error={e('password')}
            hint={props.settings.has_password ? 'A password is stored (sealed).' : 'Write-only: never shown again.'}
          />
          <Field label="From address" type="email" value={fromAddress()} onInput={(ev) => setFromAddress(ev.currentTarget.value)} error={e('from_address')} required />
          <Field label="From name" value={fromName()} onInput={(ev) => setFromName(ev.currentTarget.value)} error={e('from_name')} />
          <Field label="Timeout (ms)" type="number" value={timeout()} onInput={(ev) => setTimeoutMs(ev.currentTarget.value)} error={e('timeout_ms')} />
        </div>
        <Show when={props.settings.has_password}>
          <label class="check">
            <input type="checkbox" checked={clearPassword()} onChange={(ev) => setClearPassword(ev.currentTarget.checked)} />
            <span>Remove the stored password</span>
          </label>
        </Show>
        <TextAreaField label="CA certificate (PEM)" rows={3} value={caPem()} onInput={(ev) => setCaPem(ev.currentTarget.value)} error={e('ca_pem')} hint="Only for a server with a certificate from an internal CA." />
        <SaveActions label="Save SMTP settings" pending={save.pending()} saved={saved()} error={save.error()} errorTitle="Could not save the SMTP settings" />
      </form>
      <form class="smtp-test" onSubmit={(ev) => void testMail.submit(ev)} novalidate aria-label="Test email">
        <Field label="Send a test email to" type="email" value={testTo()} onInput={(ev) => setTestTo(ev.currentTarget.value)} error={testMail.errors().to} />
        <button type="submit" class="button" disabled={testMail.pending() || !props.settings.configured}>
          {testMail.pending() ? 'Sending…' : 'Send test email'}
        </button>
      </form>
      <Show when={testMail.error() && !testMail.errors().to}>{(_) => <ErrorPanel title="Could not send the test email" error={testMail.error()} />}</Show>
      <Show when={testResult()}>{(r) => <TestResultCard result={r()} title="SMTP test" />}</Show>
    </>
  )
}
