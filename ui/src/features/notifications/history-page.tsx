import { A, useSearchParams } from '@solidjs/router'
import { createMemo, createResource, createSignal, createUniqueId, For, onCleanup, Show } from 'solid-js'
import type { NotificationStatus } from '../../../../controller/src/notify/notify.sql.ts'
import { api, getJson, send, unwrap } from '../../api.ts'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { EmptyState } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { can } from '../../session.ts'
import { ConfirmDialog, StatusBadge, toneOf } from '../schedules/kit.tsx'
import { createPaged } from '../schedules/paged.ts'
import { formatLocal, relative } from '../schedules/time.ts'
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
  const [actionError, setActionError] = createSignal<unknown>(null)
  const [busy, setBusy] = createSignal<string | null>(null)
  const [discarding, setDiscarding] = createSignal<Notification | null>(null)
  const act = async (n: Notification, action: 'retry' | 'discard') => {
    setBusy(n.id)
    setActionError(null)
    try {
      const updated = await send<Notification>('POST', `/api/v1/notifications/${n.id}/${action}`)
      list.update((items) => items.map((i) => (i.id === n.id ? { ...i, ...updated } : i)))
      void refetchStatus()
    } catch (err) {
      setActionError(err)
    } finally {
      setBusy(null)
      setDiscarding(null)
    }
  }
  const ids = { status: createUniqueId(), event: createUniqueId(), channel: createUniqueId() }

  return (
    <section class="notifications-page">
      <PageHeader
        title="Notifications"
        subtitle="Every message sent, each attempt and what the receiver answered."
        actions={
          <button type="button" class="button" onClick={() => (list.reload(), void refetchStatus())} disabled={list.loading()}>
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
      <Show when={actionError()}>{(err) => <ErrorPanel title="Could not change the notification" error={err()} />}</Show>
      <Show when={!list.error()} fallback={<ErrorPanel title="Could not load the delivery history" error={list.error()} onRetry={list.reload} />}>
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
            <div class="table-wrap">
              <table class="data history-table" aria-label="Delivery history">
                <thead>
                  <tr>
                    <th scope="col">Created</th>
                    <th scope="col">Event</th>
                    <th scope="col">Subject</th>
                    <th scope="col">Channel</th>
                    <th scope="col">Status</th>
                    <th scope="col">Attempts</th>
                    <th scope="col">
                      <span class="visually-hidden">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  <For each={list.items()}>
                    {(n) => (
                      <>
                        <tr data-notification={n.id}>
                          <td>
                            <time datetime={n.created_at} title={formatLocal(n.created_at)}>
                              {relative(n.created_at)}
                            </time>
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
                            <StatusBadge tone={toneOf(n.status)}>{STATUSES[n.status] ?? n.status}</StatusBadge>
                            <Show when={n.status === 'pending' && n.attempt_count > 0}>
                              <div class="hint">next {relative(n.next_attempt_at)}</div>
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
                              <button type="button" class="button small" disabled={busy() === n.id} onClick={() => void act(n, 'retry')}>
                                Retry<span class="visually-hidden"> “{n.subject}”</span>
                              </button>
                            </Show>
                            <Show when={can('operator') && (n.status === 'dead' || n.status === 'pending')}>
                              <button type="button" class="button small danger" disabled={busy() === n.id} onClick={() => setDiscarding(n)}>
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
                  </For>
                </tbody>
              </table>
            </div>
            <Show when={list.moreError()}>{(err) => <ErrorPanel title="Could not load more" error={err()} onRetry={list.more} />}</Show>
            <Show when={list.hasMore()}>
              <div class="load-more">
                <button type="button" class="button" onClick={list.more} disabled={list.loading()}>
                  {list.loading() ? 'Loading…' : 'Load more'}
                </button>
              </div>
            </Show>
          </Show>
        </Show>
      </Show>
      <ConfirmDialog
        open={discarding() !== null}
        title="Discard this notification?"
        confirmLabel="Discard"
        danger
        pending={busy() !== null}
        onConfirm={() => {
          const n = discarding()
          if (n) void act(n, 'discard')
        }}
        onClose={() => setDiscarding(null)}
      >
        <p>“{discarding()?.subject}” will not be delivered. It stays in the history as discarded and can still be retried.</p>
      </ConfirmDialog>
    </section>
  )
}

function StatusCard(props: { status: OutboxStatus; channelName: (id: string) => string; onDead: () => void }) {
  const s = () => props.status
  return (
    <section class="card outbox-status" aria-labelledby="outbox-status-title" data-testid="outbox-status">
      <h2 id="outbox-status-title">Delivery status</h2>
      <div class="stat-row">
        <Stat label="Queued" value={s().queue_depth} hint={s().oldest_pending_at ? `oldest ${relative(s().oldest_pending_at)}` : undefined} />
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
        <Stat label="Last delivery" value={s().last_delivery_at ? relative(s().last_delivery_at) : 'never'} />
      </div>
      <Show when={s().last_error}>
        {(e) => (
          <p class="last-error">
            <strong>Last failure</strong> {relative(e().at)} on {props.channelName(e().channel_id)}: <span class="mono">{e().message}</span>
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
  const n = () => props.notification
  return (
    <div class="attempts">
      <Show when={n().attempts.length > 0} fallback={<p class="hint">No attempt yet{n().status === 'pending' ? `: due ${relative(n().next_attempt_at)}` : ''}.</p>}>
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
                    <time datetime={a.at}>{formatLocal(a.at)}</time>
                  </td>
                  <td>
                    <StatusBadge tone={toneOf(a.outcome)}>{a.outcome}</StatusBadge>
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
