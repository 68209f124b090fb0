import { A } from '@solidjs/router'
import { createMemo, createResource, For, Show } from 'solid-js'
import { api, unwrap } from '../../api.ts'
import { EmptyState, Loaded } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { can } from '../../session.ts'
import { StatusBadge } from '../schedules/kit.tsx'
import { formatDuration } from '../schedules/time.ts'
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
          <Show when={can('operator')}>
            <A href="/notifications/rules/new" class="button primary">
              New rule
            </A>
          </Show>
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
            <div class="table-wrap">
              <table class="data" aria-label="Rules">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Events</th>
                    <th scope="col">Sends to</th>
                    <th scope="col">Escalation</th>
                    <th scope="col">State</th>
                  </tr>
                </thead>
                <tbody>
                  <For each={list.items}>
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
                            <StatusBadge tone={r.enabled ? 'good' : 'neutral'}>{r.enabled ? 'enabled' : 'disabled'}</StatusBadge>
                            <Show when={r.critical}>
                              <StatusBadge tone="bad">critical</StatusBadge>
                            </Show>
                          </span>
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
