import { A, useSearchParams } from '@solidjs/router'
import { createResource, Show } from 'solid-js'
import { api, getJson, send, unwrap } from '../../api.ts'
import { createAction } from '../../components/action.ts'
import { Badge, toneOf, words } from '../../components/badge.tsx'
import { DataTable } from '../../components/data-table.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { relativeTime } from '../../components/format.ts'
import { EmptyState } from '../../components/loaded.tsx'
import { NewLink, PageHeader } from '../../components/page-header.tsx'
import { createPaged, LoadMore } from '../../components/paged.tsx'
import { useNow } from '../../components/time.tsx'
import { can } from '../../session.ts'
import { describeCron } from './cron-presets.ts'
import { SchedulesNav } from './schedules-nav.tsx'
import { formatShortInZone } from './time.ts'
import type { Schedule, ScheduleItem, ScheduleList } from './types.ts'
import './schedules.css'

const PAGE = 50

export function SchedulesListPage() {
  const [params, setParams] = useSearchParams<{ enabled?: string; job_id?: string }>()
  const filter = () => ({ enabled: params.enabled === 'true' || params.enabled === 'false' ? params.enabled : undefined, job: params.job_id })
  const list = createPaged(filter, (f, cursor) => {
    const q = new URLSearchParams({ limit: String(PAGE) })
    if (f.enabled) q.set('enabled', f.enabled)
    if (f.job) q.set('job_id', f.job)
    if (cursor) q.set('cursor', cursor)
    return getJson<ScheduleList>(`/api/v1/schedules?${q}`)
  })
  const [status, { refetch: refetchStatus }] = createResource(() => unwrap(api.scheduler.status.$get(), 'GET /scheduler/status'))
  const now = useNow()
  const toggle = createAction(async (s: ScheduleItem) => {
    const saved = await send<Schedule>('PUT', `/api/v1/schedules/${s.id}`, { enabled: !s.enabled })
    list.update((i) => (i.id === s.id ? { ...i, ...saved } : i))
  })

  return (
    <section class="schedules-page">
      <PageHeader
        title="Schedules"
        subtitle="Jobs fired on cron expressions, each in its own time zone."
        actions={
          <NewLink href="/schedules/new" role="operator">
            New schedule
          </NewLink>
        }
      />
      <SchedulesNav />
      <Show when={status()}>
        {(s) => (
          <p class="scheduler-status" data-testid="scheduler-status">
            <Badge tone={s().paused ? 'bad' : 'good'}>{s().paused ? 'Scheduler paused' : 'Scheduler running'}</Badge>
            <span class="hint">
              {s().paused ? `Paused by ${s().paused_by ?? 'someone'} ${relativeTime(s().paused_at, now())}. ` : ''}
              {s().last_tick_at ? `Last tick ${relativeTime(s().last_tick_at, now())}` : 'No tick yet'}
              {s().leader_node ? ` on ${s().leader_node}` : ''}.
            </span>
          </p>
        )}
      </Show>
      <Show when={status.error as unknown}>{(err) => <ErrorPanel title="Could not load the scheduler status" error={err()} onRetry={() => void refetchStatus()} />}</Show>
      <div class="toolbar">
        <div class="inline-field">
          <label for="schedule-filter">Show</label>
          <select id="schedule-filter" class="input" value={filter().enabled ?? ''} onChange={(e) => setParams({ enabled: e.currentTarget.value || undefined })}>
            <option value="" selected={!filter().enabled}>
              All schedules
            </option>
            <option value="true" selected={filter().enabled === 'true'}>
              Enabled only
            </option>
            <option value="false" selected={filter().enabled === 'false'}>
              Disabled only
            </option>
          </select>
        </div>
        <Show when={filter().job}>
          <button type="button" class="button small" onClick={() => setParams({ job_id: undefined })}>
            Showing one job’s schedules — show all
          </button>
        </Show>
        <span class="toolbar-end hint" aria-live="polite">
          <Show when={list.loaded()}>
            {list.items().length}
            {list.hasMore() ? '+' : ''} schedule{list.items().length === 1 ? '' : 's'}
          </Show>
        </span>
      </div>
      <Show when={toggle.error()}>{(err) => <ErrorPanel title="Could not change the schedule" error={err()} />}</Show>
      <Show
        when={!list.error()}
        fallback={<ErrorPanel title="Could not load schedules" error={list.error()} onRetry={() => void list.reload()} />}
      >
        <Show when={list.loaded()} fallback={<div class="card card-loading" aria-busy="true">Loading schedules…</div>}>
          <Show
            when={list.items().length > 0}
            fallback={
              <EmptyState title={filter().enabled || filter().job ? 'No schedules match' : 'No schedules yet'}>
                <p>A schedule runs a job on a cron expression in a time zone you choose.</p>
                <NewLink href="/schedules/new" role="operator">
                  New schedule
                </NewLink>
              </EmptyState>
            }
          >
            <DataTable label="Schedules" columns={['Name', 'Job', 'When (zone)', 'Enabled', 'Next fire', 'Last fire']} each={list.items()}>
              {(s) => (
                <tr data-schedule={s.name}>
                  <td>
                    <A href={`/schedules/${s.id}`} class="strong-link">
                      {s.name}
                    </A>
                  </td>
                  <td>{s.job_name ?? <span class="hint">deleted job</span>}</td>
                  <td>
                    <div>{describeCron(s.cron) ?? 'Custom'}</div>
                    <div class="hint">
                      <code class="cron-code">{s.cron}</code> · {s.timezone}
                    </div>
                  </td>
                  <td>
                    <Show when={can('operator')} fallback={<Badge tone={s.enabled ? 'good' : 'neutral'}>{s.enabled ? 'Enabled' : 'Disabled'}</Badge>}>
                      <button
                        type="button"
                        class="switch"
                        role="switch"
                        aria-checked={s.enabled}
                        aria-label={`Enabled: ${s.name}`}
                        disabled={toggle.pending()}
                        onClick={() => void toggle.run(s)}
                      >
                        <span class="switch-track" aria-hidden="true">
                          <span class="switch-thumb" />
                        </span>
                        <span class="switch-text">{s.enabled ? 'On' : 'Off'}</span>
                      </button>
                    </Show>
                  </td>
                  <td>
                    <Show when={s.next_fire_at} fallback={<span class="hint">{s.enabled ? 'none left' : '—'}</span>}>
                      {(at) => (
                        <>
                          <div>
                            <time datetime={at()}>{formatShortInZone(at(), s.timezone)}</time>
                          </div>
                          <div class="hint">{relativeTime(at(), now())}</div>
                        </>
                      )}
                    </Show>
                  </td>
                  <td>
                    <Show when={s.last_fire} fallback={<span class="hint">never</span>}>
                      {(f) => (
                        <>
                          <div class="last-fire">
                            <Badge tone={toneOf(f().run_status ?? f().status)} title={f().reason ? `reason: ${words(f().reason!)}` : undefined}>
                              {words(f().run_status ?? f().status)}
                            </Badge>
                            <Show when={f().run_id}>{(run) => <A href={`/runs/${run()}`}>run</A>}</Show>
                          </div>
                          <div class="hint">
                            <time datetime={f().fire_at}>{formatShortInZone(f().fire_at, s.timezone)}</time>
                          </div>
                        </>
                      )}
                    </Show>
                  </td>
                </tr>
              )}
            </DataTable>
            <LoadMore list={list} what="schedules" />
          </Show>
        </Show>
      </Show>
    </section>
  )
}
