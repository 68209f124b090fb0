import { A } from '@solidjs/router'
import { createResource, Show } from 'solid-js'
import { api, unwrap } from '../../api.ts'
import { Badge } from '../../components/badge.tsx'
import { DataTable } from '../../components/data-table.tsx'
import { formatDuration } from '../../components/format.ts'
import { EmptyState, Loaded } from '../../components/loaded.tsx'
import { NewLink, PageHeader } from '../../components/page-header.tsx'
import { describeCron } from './cron-presets.ts'
import { MaintenanceCalendar } from './maintenance-calendar.tsx'
import { SchedulesNav } from './schedules-nav.tsx'
import { formatInZone } from './time.ts'
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
          <NewLink href="/schedules/maintenance/new" role="operator">
            New window
          </NewLink>
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
            <DataTable label="Maintenance windows" columns={['Name', 'Kind', 'When', 'Zone', 'Applies to', 'Action', 'State']} each={list.items}>
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
                    <Badge tone={w.action === 'skip' ? 'bad' : 'active'}>{w.action}</Badge>
                  </td>
                  <td>
                    <Show when={w.enabled} fallback={<Badge tone="neutral">disabled</Badge>}>
                      <Show when={w.active} fallback={<Badge tone="good">enabled</Badge>}>
                        {(a) => <Badge tone="active" title={`until ${formatInZone(a().end, w.timezone)}`}>open now</Badge>}
                      </Show>
                    </Show>
                  </td>
                </tr>
              )}
            </DataTable>
          </Show>
        )}
      </Loaded>
    </section>
  )
}
