import { A, useSearchParams } from '@solidjs/router'
import { createMemo, createResource, createSignal, createUniqueId, For, onCleanup, Show } from 'solid-js'
import type { NotificationStatus } from '../../../../controller/src/notify/notify.sql.ts'
import { api, getJson, send, unwrap } from '../../api.ts'
import { createAction } from '../../components/action.ts'
import { Badge, toneOf } from '../../components/badge.tsx'
import { DataTable } from '../../components/data-table.tsx'
import { ConfirmDialog } from '../../components/dialog.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { formatDateTime, relativeTime } from '../../components/format.ts'
import { EmptyState } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { createPaged, LoadMore } from '../../components/paged.tsx'
import { Time, useNow } from '../../components/time.tsx'
import { can } from '../../session.ts'
import { EVENT_IDS, EVENTS } from './events.ts'
import { NotificationsNav } from './notifications-nav.tsx'
import type { Notification, NotificationPage, OutboxStatus } from './types.ts'
import '../schedules/schedules.css'
import './notifications.css'

/*
 * What was sent, to where, and how each attempt went: the outbox's history newest first, with the
 * receivers' answers per attempt, dead letters to retry or discard, and the queue's status.
 */

const STATUSES: Record<NotificationStatus, string> = {
  pending: 'Pending',
  sending: 'Sending',
  delivered: 'Delivered',
  dead: 'Dead letter',
  discarded: 'Discarded',
  held: 'Held for digest',
  batched: 'Sent in a digest',
}
const STATUS_POLL_MS = 10_000

export function HistoryPage() {
  const [params, setParams] = useSearchParams<{ status?: string; event?: string; channel_id?: string }>()
  const filters = () => ({ status: params.status ?? '', event: params.event ?? '', channel: params.channel_id ?? '' })
  const list = createPaged(filters, (f, cursor) => {
    const q = new URLSearchParams({ limit: '50' })
    if (f.status) q.set('status', f.status)
    if (f.event) q.set('event', f.event)
    if (f.channel) q.set('channel_id', f.channel)
    if (cursor) q.set('cursor', cursor)
    return getJson<NotificationPage>(`/api/v1/notifications?${q}`)
  })
  const [status, { refetch: refetchStatus }] = createResource(() => unwrap(api.notification.status.$get(), 'GET /notification/status'))
  const [directory] = createResource(() => unwrap(api['notification-channels'].directory.$get(), 'GET /notification-channels/directory'))
  const channelName = createMemo(() => new Map((directory.error ? [] : (directory.latest?.items ?? [])).map((c) => [c.id, c.name])))
  const poll = setInterval(() => void refetchStatus(), STATUS_POLL_MS)
  onCleanup(() => clearInterval(poll))

  const [open, setOpen] = createSignal<Set<string>>(new Set())
  const toggle = (id: string) => {
    const next = new Set(open())
    if (next.has(id)) next.delete(id)
    else next.add(id)
    setOpen(next)
  }
  const [discarding, setDiscarding] = createSignal<Notification | null>(null)
  const act = createAction(async (n: Notification, action: 'retry' | 'discard') => {
    const updated = await send<Notification>('POST', `/api/v1/notifications/${n.id}/${action}`)
    list.update((i) => (i.id === n.id ? { ...i, ...updated } : i))
    setDiscarding(null)
    void refetchStatus()
  })
  const ids = { status: createUniqueId(), event: createUniqueId(), channel: createUniqueId() }

  return (
    <section class="notifications-page">
      <PageHeader
        title="Notifications"
        subtitle="Every message sent, each attempt and what the receiver answered."
        actions={
          <button type="button" class="button" onClick={() => (void list.reload(), void refetchStatus())} disabled={list.loading()}>
            Refresh
          </button>
        }
      />
      <NotificationsNav />
      <Show when={!status.error} fallback={<ErrorPanel title="Could not load the delivery status" error={status.error} onRetry={() => void refetchStatus()} />}>
        <Show when={status.latest} fallback={<div class="card card-loading" aria-busy="true">Loading delivery status…</div>}>
          {(s) => <StatusCard status={s()} channelName={(id) => channelName().get(id) ?? id} onDead={() => setParams({ status: 'dead' })} />}
        </Show>
      </Show>
      <div class="toolbar history-filters">
        <div class="inline-field">
          <label for={ids.status}>Status</label>
          <select id={ids.status} class="input" onChange={(e) => setParams({ status: e.currentTarget.value || undefined })}>
            <option value="" selected={!filters().status}>
              Any
            </option>
            <For each={Object.entries(STATUSES)}>
              {([v, label]) => (
                <option value={v} selected={filters().status === v}>
                  {label}
                </option>
              )}
            </For>
          </select>
        </div>
        <div class="inline-field">
          <label for={ids.event}>Event</label>
          <select id={ids.event} class="input" onChange={(e) => setParams({ event: e.currentTarget.value || undefined })}>
            <option value="" selected={!filters().event}>
              Any
            </option>
            <For each={[...EVENT_IDS.filter((e) => e !== 'security.*'), 'notification.digest']}>
              {(e) => (
                <option value={e} selected={filters().event === e}>
                  {e}
                </option>
              )}
            </For>
          </select>
        </div>
        <div class="inline-field">
          <label for={ids.channel}>Channel</label>
          <select id={ids.channel} class="input" onChange={(e) => setParams({ channel_id: e.currentTarget.value || undefined })}>
            <option value="" selected={!filters().channel}>
              Any
            </option>
            <For each={directory.error ? [] : (directory.latest?.items ?? [])}>
              {(c) => (
                <option value={c.id} selected={filters().channel === c.id}>
                  {c.name}
                </option>
              )}
            </For>
          </select>
        </div>
        <Show when={filters().status !== 'dead'}>
          <button type="button" class="button small" onClick={() => setParams({ status: 'dead' })}>
            Show dead letters
          </button>
        </Show>
      </div>
      <Show when={!discarding() && act.error()}>{(err) => <ErrorPanel title="Could not change the notification" error={err()} />}</Show>
      <Show when={!list.error()} fallback={<ErrorPanel title="Could not load the delivery history" error={list.error()} onRetry={() => void list.reload()} />}>
        <Show when={list.loaded()} fallback={<div class="card card-loading" aria-busy="true">Loading delivery history…</div>}>
          <Show
            when={list.items().length > 0}
            fallback={
              <EmptyState title={filters().status || filters().event || filters().channel ? 'No notifications match' : 'Nothing sent yet'}>
                <p>
                  Messages appear here when a <A href="/notifications/rules">rule</A> matches an event.
                </p>
              </EmptyState>
            }
          >
            <DataTable label="Delivery history" columns={['Created', 'Event', 'Subject', 'Channel', 'Status', 'Attempts', '']} class="history-table" each={list.items()}>
              {(n) => (
                <>
                  <tr data-notification={n.id}>
                    <td>
                      <Time iso={n.created_at} />
                    </td>
                    <td>
                      <code>{n.event}</code>
                    </td>
                    <td class="wrap subject-cell">
                      {n.subject}
                      <Show when={n.recipient}>{(r) => <div class="hint">to {r()}</div>}</Show>
                    </td>
                    <td>{channelName().get(n.channel_id) ?? <span class="mono hint">{n.channel_id.slice(0, 8)}</span>}</td>
                    <td>
                      <Badge tone={toneOf(n.status)}>{STATUSES[n.status] ?? n.status}</Badge>
                      <Show when={n.status === 'pending' && n.attempt_count > 0}>
                        <div class="hint">
                          next <Time iso={n.next_attempt_at} />
                        </div>
                      </Show>
                    </td>
                    <td>
                      <button type="button" class="link-button" aria-expanded={open().has(n.id)} aria-controls={`attempts-${n.id}`} onClick={() => toggle(n.id)}>
                        {n.attempt_count} of {n.max_attempts}
                        <span class="visually-hidden"> attempts of “{n.subject}”</span>
                      </button>
                    </td>
                    <td class="row-actions">
                      <Show when={can('operator') && (n.status === 'dead' || n.status === 'discarded')}>
                        <button type="button" class="button small" disabled={act.pending()} onClick={() => void act.run(n, 'retry')}>
                          Retry<span class="visually-hidden"> “{n.subject}”</span>
                        </button>
                      </Show>
                      <Show when={can('operator') && (n.status === 'dead' || n.status === 'pending')}>
                        <button type="button" class="button small danger" disabled={act.pending()} onClick={() => setDiscarding(n)}>
                          Discard<span class="visually-hidden"> “{n.subject}”</span>
                        </button>
                      </Show>
                    </td>
                  </tr>
                  <Show when={open().has(n.id)}>
                    <tr class="attempts-row" id={`attempts-${n.id}`}>
                      <td colspan="7">
                        <Attempts notification={n} />
                      </td>
                    </tr>
                  </Show>
                </>
              )}
            </DataTable>
            <LoadMore list={list} what="notifications" />
          </Show>
        </Show>
      </Show>
      <Show when={discarding()}>
        {(n) => (
          <ConfirmDialog
            title="Discard this notification?"
            confirmLabel="Discard"
            danger
            pending={act.pending()}
            error={act.error()}
            errorTitle="Could not discard the notification"
            onConfirm={() => void act.run(n(), 'discard')}
            onCancel={() => (setDiscarding(null), act.clear())}
          >
            <p>“{n().subject}” will not be delivered. It stays in the history as discarded and can still be retried.</p>
          </ConfirmDialog>
        )}
      </Show>
    </section>
  )
}

function StatusCard(props: { status: OutboxStatus; channelName: (id: string) => string; onDead: () => void }) {
  const now = useNow()
  const s = () => props.status
  return (
    <section class="card outbox-status" aria-labelledby="outbox-status-title" data-testid="outbox-status">
      <h2 id="outbox-status-title">Delivery status</h2>
      <div class="stat-row">
        <Stat label="Queued" value={s().queue_depth} hint={s().oldest_pending_at ? `oldest ${relativeTime(s().oldest_pending_at, now())}` : undefined} />
        <Stat label="Sending" value={s().sending} />
        <Stat label="Held for digests" value={s().held} />
        <div class="stat" classList={{ 'stat-bad': s().dead > 0 }}>
          <div class="stat-value">{s().dead}</div>
          <div class="stat-label">Dead letters</div>
          <Show when={s().dead > 0}>
            <button type="button" class="link-button" onClick={() => props.onDead()}>
              Show them
            </button>
          </Show>
        </div>
        <Stat label="Last delivery" value={relativeTime(s().last_delivery_at, now())} />
      </div>
      <Show when={s().last_error}>
        {(e) => (
          <p class="last-error">
            <strong>Last failure</strong> <Time iso={e().at} /> on {props.channelName(e().channel_id)}: <span class="mono">{e().message}</span>
          </p>
        )}
      </Show>
    </section>
  )
}

function Stat(props: { label: string; value: number | string; hint?: string | undefined }) {
  return (
    <div class="stat">
      <div class="stat-value">{props.value}</div>
      <div class="stat-label">{props.label}</div>
      <Show when={props.hint}>{(h) => <div class="hint">{h()}</div>}</Show>
    </div>
  )
}

function Attempts(props: { notification: Notification }) {
  const now = useNow()
  const n = () => props.notification
  return (
    <div class="attempts">
      <Show when={n().attempts.length > 0} fallback={<p class="hint">No attempt yet{n().status === 'pending' ? `: due ${relativeTime(n().next_attempt_at, now())}` : ''}.</p>}>
        <table class="data attempts-table" aria-label={`Attempts of “${n().subject}”`}>
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">At</th>
              <th scope="col">Outcome</th>
              <th scope="col">HTTP</th>
              <th scope="col">Receiver’s answer</th>
              <th scope="col">Took</th>
            </tr>
          </thead>
          <tbody>
            <For each={n().attempts}>
              {(a) => (
                <tr>
                  <td>{a.attempt}</td>
                  <td>
                    <time datetime={a.at}>{formatDateTime(a.at)}</time>
                  </td>
                  <td>
                    <Badge tone={toneOf(a.outcome)}>{a.outcome}</Badge>
                  </td>
                  <td>{a.http_status ?? '—'}</td>
                  <td class="wrap answer-cell">
                    <Show when={a.error}>{(e) => <div class="answer-error">{e()}</div>}</Show>
                    <Show when={a.response}>{(r) => <pre class="answer">{r()}</pre>}</Show>
                    <Show when={!a.error && !a.response}>—</Show>
                  </td>
                  <td>{a.duration_ms === null ? '—' : `${a.duration_ms} ms`}</td>
                </tr>
              )}
            </For>
          </tbody>
        </table>
      </Show>
      <p class="hint">
        Delivery id <span class="mono">{n().id}</span>
        <Show when={n().run_id}>
          {(r) => (
            <>
              {' '}
              · <A href={`/runs/${r()}`}>the run</A>
            </>
          )}
        </Show>
        <Show when={n().last_error}>{(e) => <> · last error: {e()}</>}</Show>
      </p>
    </div>
  )
}
