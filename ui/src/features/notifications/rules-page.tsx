import { A } from '@solidjs/router'
import { createMemo, createResource, For, Show } from 'solid-js'
import { api, unwrap } from '../../api.ts'
import { Badge } from '../../components/badge.tsx'
import { DataTable } from '../../components/data-table.tsx'
import { formatDuration } from '../../components/format.ts'
import { EmptyState, Loaded } from '../../components/loaded.tsx'
import { NewLink, PageHeader } from '../../components/page-header.tsx'
import { NotificationsNav } from './notifications-nav.tsx'
import '../schedules/schedules.css'
import './notifications.css'

/** Rules: which events reach which channels and people. Viewers read them, operators change them. */
export function RulesPage() {
  const [rules, { refetch }] = createResource(() => unwrap(api['notification-rules'].$get(), 'GET /notification-rules'))
  const [directory] = createResource(() => unwrap(api['notification-channels'].directory.$get(), 'GET /notification-channels/directory'))
  const names = createMemo(() => new Map((directory.error ? [] : (directory.latest?.items ?? [])).map((c) => [c.id, c.name])))
  return (
    <section class="notifications-page">
      <PageHeader
        title="Notification rules"
        subtitle="Which events, under which conditions, reach which channels and people."
        actions={
          <NewLink href="/notifications/rules/new" role="operator">
            New rule
          </NewLink>
        }
      />
      <NotificationsNav />
      <Loaded resource={rules} what="rules" onRetry={() => void refetch()}>
        {(list) => (
          <Show
            when={list.items.length > 0}
            fallback={
              <EmptyState title="No rules yet">
                <p>Without a rule nothing is sent. A rule picks events (a failed run, a missed schedule…) and where they go.</p>
              </EmptyState>
            }
          >
            <DataTable label="Rules" columns={['Name', 'Events', 'Sends to', 'Escalation', 'State']} each={list.items}>
              {(r) => (
                <tr data-rule={r.name}>
                  <td>
                    <A href={`/notifications/rules/${r.id}`} class="strong-link">
                      {r.name}
                    </A>
                  </td>
                  <td class="wrap">
                    <For each={r.events}>{(e) => <code class="event-tag">{e}</code>}</For>
                  </td>
                  <td class="wrap">
                    {[...r.channel_ids.map((id) => names().get(id) ?? 'unknown channel'), ...(r.user_ids.length ? [`${r.user_ids.length} user${r.user_ids.length === 1 ? '' : 's'}`] : [])].join(', ')}
                  </td>
                  <td>{r.escalation ? `after ${formatDuration(r.escalation.after_sec)}` : '—'}</td>
                  <td>
                    <span class="badges">
                      <Badge tone={r.enabled ? 'good' : 'neutral'}>{r.enabled ? 'enabled' : 'disabled'}</Badge>
                      <Show when={r.critical}>
                        <Badge tone="bad">critical</Badge>
                      </Show>
                    </span>
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
