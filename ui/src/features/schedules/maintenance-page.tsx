import { A } from '@solidjs/router'
import { createResource, For, Show } from 'solid-js'
import { api, unwrap } from '../../api.ts'
import { EmptyState, Loaded } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { can } from '../../session.ts'
import { describeCron } from './cron-presets.ts'
import { StatusBadge } from './kit.tsx'
import { MaintenanceCalendar } from './maintenance-calendar.tsx'
import { SchedulesNav } from './schedules-nav.tsx'
import { formatDuration, formatInZone } from './time.ts'
import type { MaintenanceWindow } from './types.ts'
import './schedules.css'

const DAY_ORDER = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']
const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1)

/** When a window opens, in words. */
export function windowWhen(w: MaintenanceWindow): string {
  switch (w.kind) {
    case 'one_off':
      return `${formatInZone(w.starts_at, w.timezone)} → ${formatInZone(w.ends_at, w.timezone)}`
    case 'cron':
      return `${describeCron(w.cron ?? '') ?? w.cron ?? ''} for ${formatDuration(w.duration_sec ?? 0)}`
    case 'weekly':
      return (w.ranges ?? []).map((r) => `${[...r.days].sort((a, b) => DAY_ORDER.indexOf(a) - DAY_ORDER.indexOf(b)).map(cap).join(', ')} ${r.start}–${r.end}`).join('; ')
  }
}

export function appliesToText(w: MaintenanceWindow): string {
  const a = w.applies_to
  if (a === 'all') return 'All targets'
  const parts: string[] = []
  if (a.selector) parts.push(a.selector)
  if (a.groups?.length) parts.push(`${a.groups.length} group${a.groups.length === 1 ? '' : 's'}`)
  if (a.target_ids?.length) parts.push(`${a.target_ids.length} target${a.target_ids.length === 1 ? '' : 's'}`)
  return parts.join(' · ')
}

const KIND: Record<MaintenanceWindow['kind'], string> = { one_off: 'One-off', cron: 'Recurring (cron)', weekly: 'Weekly' }

export function MaintenancePage() {
  const [windows, { refetch }] = createResource(() => unwrap(api['maintenance-windows'].$get(), 'GET /maintenance-windows'))
  return (
    <section class="maintenance-page">
      <PageHeader
        title="Maintenance windows"
        subtitle="Times when scheduled fires on the targets they cover are skipped or deferred."
        actions={
          <Show when={can('operator')}>
            <A href="/schedules/maintenance/new" class="button primary">
              New window
            </A>
          </Show>
        }
      />
      <SchedulesNav />
      <MaintenanceCalendar />
      <h2 class="section-heading">All windows</h2>
      <Loaded resource={windows} what="maintenance windows" onRetry={() => void refetch()}>
        {(list) => (
          <Show
            when={list.items.length > 0}
            fallback={
              <EmptyState title="No maintenance windows">
                <p>A window skips or defers scheduled runs on the targets it covers while it is open.</p>
              </EmptyState>
            }
          >
            <div class="table-wrap">
              <table class="data" aria-label="Maintenance windows">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Kind</th>
                    <th scope="col">When</th>
                    <th scope="col">Zone</th>
                    <th scope="col">Applies to</th>
                    <th scope="col">Action</th>
                    <th scope="col">State</th>
                  </tr>
                </thead>
                <tbody>
                  <For each={list.items}>
                    {(w) => (
                      <tr data-window={w.name}>
                        <td>
                          <A href={`/schedules/maintenance/${w.id}`} class="strong-link">
                            {w.name}
                          </A>
                        </td>
                        <td>{KIND[w.kind]}</td>
                        <td class="wrap">{windowWhen(w)}</td>
                        <td>{w.timezone}</td>
                        <td class="wrap">{appliesToText(w)}</td>
                        <td>
                          <StatusBadge tone={w.action === 'skip' ? 'bad' : 'warn'}>{w.action}</StatusBadge>
                        </td>
                        <td>
                          <Show when={w.enabled} fallback={<StatusBadge tone="neutral">disabled</StatusBadge>}>
                            <Show when={w.active} fallback={<StatusBadge tone="good">enabled</StatusBadge>}>
                              {(a) => <StatusBadge tone="warn" title={`until ${formatInZone(a().end, w.timezone)}`}>open now</StatusBadge>}
                            </Show>
                          </Show>
                        </td>
                      </tr>
                    )}
                  </For>
                </tbody>
              </table>
            </div>
          </Show>
        )}
      </Loaded>
    </section>
  )
}
