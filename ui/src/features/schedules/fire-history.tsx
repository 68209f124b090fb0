import { A } from '@solidjs/router'
import { createSignal, createUniqueId, For, Show } from 'solid-js'
import type { FireStatus } from '../../../../controller/src/scheduler/scheduler.sql.ts'
import { getJson } from '../../api.ts'
import { Badge, toneOf, words } from '../../components/badge.tsx'
import { DataTable } from '../../components/data-table.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { EmptyState } from '../../components/loaded.tsx'
import { createPaged, LoadMore } from '../../components/paged.tsx'
import { formatInZone } from './time.ts'
import type { FirePage } from './types.ts'

const STATUSES: Record<FireStatus, string> = {
  fired: 'Fired',
  missed: 'Missed',
  skipped: 'Skipped',
  queued: 'Queued',
  deferred: 'Deferred',
  failed: 'Failed to launch',
}

/** Every occurrence of a schedule, newest first: what was decided, why, and the run it started. */
export function FireHistory(props: { scheduleId: string; timezone: string }) {
  const [status, setStatus] = createSignal<FireStatus | ''>('')
  const statusId = createUniqueId()
  const list = createPaged(
    () => ({ id: props.scheduleId, status: status() }),
    (k, cursor) => {
      const q = new URLSearchParams({ limit: '50' })
      if (k.status) q.set('status', k.status)
      if (cursor) q.set('cursor', cursor)
      return getJson<FirePage>(`/api/v1/schedules/${k.id}/fires?${q}`)
    },
  )
  const detailOf = (d: Record<string, unknown> | null) => {
    if (!d) return ''
    if (typeof d.window_name === 'string') return `window “${d.window_name}”${typeof d.until === 'string' ? ` until ${formatInZone(d.until, props.timezone)}` : ''}`
    if (typeof d.error === 'string') return d.error
    if (typeof d.message === 'string') return d.message
    return ''
  }
  return (
    <section class="card fire-history" aria-labelledby="fire-history-title">
      <div class="card-head">
        <h2 id="fire-history-title">Fire history</h2>
        <div class="inline-field">
          <label for={statusId}>Status</label>
          <select id={statusId} class="input" value={status()} onChange={(e) => setStatus(e.currentTarget.value as FireStatus | '')}>
            <option value="" selected={status() === ''}>
              All
            </option>
            <For each={Object.entries(STATUSES)}>{([v, label]) => <option value={v} selected={status() === v}>
                  {label}
                </option>}</For>
          </select>
        </div>
        <button type="button" class="button small" onClick={() => void list.reload()} disabled={list.loading()}>
          Refresh
        </button>
      </div>
      <Show when={!list.error()} fallback={<ErrorPanel title="Could not load the fire history" error={list.error()} onRetry={() => void list.reload()} />}>
        <Show when={list.loaded()} fallback={<p class="hint" aria-busy="true">Loading fires…</p>}>
          <Show when={list.items().length > 0} fallback={<EmptyState title={status() ? 'No fires with this status' : 'No fires yet'}>{status() ? null : <p>Occurrences appear here as the scheduler decides them.</p>}</EmptyState>}>
            <DataTable label="Fire history" columns={['Occurrence', 'Outcome', 'Reason', 'Run', 'Attempt', 'Lag']} wrapClass="flat" each={list.items()}>
              {(f) => (
                <tr>
                  <td>
                    <time datetime={f.fire_at}>{formatInZone(f.fire_at, props.timezone)}</time>
                  </td>
                  <td>
                    <Badge tone={toneOf(f.status)}>{STATUSES[f.status] ?? f.status}</Badge>
                  </td>
                  <td class="wrap">
                    {f.reason ? words(f.reason) : '—'}
                    <Show when={detailOf(f.detail)}>{(d) => <div class="hint">{d()}</div>}</Show>
                  </td>
                  <td>
                    <Show when={f.run_id} fallback="—">
                      {(run) => (
                        <A href={`/runs/${run()}`} class="mono">
                          Run {run().slice(0, 8)}
                        </A>
                      )}
                    </Show>
                  </td>
                  <td>{f.attempt}</td>
                  <td>{f.lag_ms === null ? '—' : f.lag_ms < 1000 ? `${f.lag_ms} ms` : `${(f.lag_ms / 1000).toFixed(1)} s`}</td>
                </tr>
              )}
            </DataTable>
            <LoadMore list={list} what="fires" />
          </Show>
        </Show>
      </Show>
    </section>
  )
}
