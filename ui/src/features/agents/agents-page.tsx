import { A, useSearchParams } from '@solidjs/router'
import { createMemo, createSignal, For, onCleanup, Show, type JSX } from 'solid-js'
import { DataTable } from '../../components/data-table.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { formatDateTime, relativeTime } from '../../components/format.ts'
import { EmptyState } from '../../components/loaded.tsx'
import { NewLink, PageHeader } from '../../components/page-header.tsx'
import { useNow } from '../../components/time.tsx'
import { can, me } from '../../session.ts'
import { getAgentCounts, listAgents, type AgentQuery, type AgentStatus } from './agents-api.ts'
import { osLabel } from './format.ts'
import { createPolled, Live } from './live.tsx'
import { AgentStatusBadge, AgentVersion } from './widgets.tsx'
import './agents.css'

/** How often the list and the counts are refreshed: an agent's state changes within a heartbeat or two. */
export const AGENTS_POLL_MS = 5_000
const STATUSES: AgentStatus[] = ['online', 'offline', 'revoked']

export function AgentsPage() {
  return (
    <OperatorOnly title="Agents">
      <AgentsList />
    </OperatorOnly>
  )
}

/** The API lets operators and admins read agents: a viewer is told so, without asking it for a 403. */
export function OperatorOnly(props: { title: string; children: JSX.Element }) {
  return (
    <Show
      when={can('operator')}
      fallback={
        <>
          <PageHeader title={props.title} />
          <ErrorPanel title="You cannot view agents" error={new Error(`Agents need the operator role; you are signed in as a ${me()?.role ?? 'viewer'}.`)} />
        </>
      }
    >
      {props.children}
    </Show>
  )
}

function AgentsList() {
  const [params, setParams] = useSearchParams<{ q?: string; status?: string; outdated?: string }>()
  const outdated = () => params.outdated === 'true'
  const status = (): AgentStatus | '' => (STATUSES.includes(params.status as AgentStatus) ? (params.status as AgentStatus) : '')
  // Keyset pages: the cursors that led to the pages before this one.
  const [cursors, setCursors] = createSignal<(string | undefined)[]>([undefined])
  const query = createMemo<AgentQuery>(() => ({ q: params.q ?? '', status: status(), outdated: outdated(), cursor: cursors().at(-1) }), { q: '', status: '', outdated: false, cursor: undefined }, {
    equals: (a, b) => a.q === b.q && a.status === b.status && a.outdated === b.outdated && a.cursor === b.cursor,
  })
  const agents = createPolled(listAgents, AGENTS_POLL_MS, query)
  const counts = createPolled(getAgentCounts, AGENTS_POLL_MS)
  const now = useNow()

  const [search, setSearch] = createSignal(params.q ?? '')
  let debounce: ReturnType<typeof setTimeout> | undefined
  onCleanup(() => clearTimeout(debounce))
  const onSearch = (value: string) => {
    setSearch(value)
    clearTimeout(debounce)
    debounce = setTimeout(() => {
      setCursors([undefined])
      setParams({ q: value.trim() || undefined }, { replace: true })
    }, 300)
  }
  const filtered = () => !!(params.q || status() || outdated())
  const showOutdated = (on: boolean) => {
    setCursors([undefined])
    setParams({ outdated: on ? 'true' : undefined }, { replace: true })
  }

  return (
    <section class="agents-page">
      <PageHeader
        title="Agents"
        subtitle="Hosts running the OpsConductor agent. The list refreshes every few seconds."
        actions={
          <NewLink href="/agents/enroll" role="admin">
            Enroll an agent
          </NewLink>
        }
      />
      <div class="toolbar">
        <div class="field inline-field">
          <label for="agent-search">Search agents</label>
          <input id="agent-search" type="search" placeholder="Name or host name" value={search()} onInput={(e) => onSearch(e.currentTarget.value)} />
        </div>
        <div class="field inline-field">
          <label for="agent-status">Status</label>
          <select
            id="agent-status"
            value={status()}
            onChange={(e) => {
              setCursors([undefined])
              setParams({ status: e.currentTarget.value || undefined }, { replace: true })
            }}
          >
            <option value="">All</option>
            <For each={STATUSES}>{(s) => <option value={s}>{s[0]!.toUpperCase() + s.slice(1)}</option>}</For>
          </select>
        </div>
        <Show when={!counts.resource.error && counts.resource.latest}>
          {(c) => (
            <p class="agent-counts" data-testid="agent-counts">
              <span class="count-online" classList={{ some: c().online > 0 }}>
                {c().online} online
              </span>
              <span aria-hidden="true"> · </span>
              <span class="count-offline" classList={{ some: c().offline > 0 }}>
                {c().offline} offline
              </span>
              <span aria-hidden="true"> · </span>
              <span>{c().revoked} revoked</span>
              <Show when={c().outdated > 0 || outdated()}>
                <span aria-hidden="true"> · </span>
                <button type="button" class="link-button count-outdated" aria-pressed={outdated()} title={`Agents older than ${c().min_version}, the oldest version this controller supports`} onClick={() => showOutdated(!outdated())}>
                  {c().outdated} outdated
                </button>
              </Show>
            </p>
          )}
        </Show>
      </div>

      <Live polled={agents} what="agents">
        {(page) => (
          <Show
            when={page().items.length > 0}
            fallback={
              <Show
                when={filtered()}
                fallback={
                  <EmptyState title="No agents enrolled yet">
                    <p>Agents dial out to this controller and run work on their host.</p>
                    <NewLink href="/agents/enroll" role="admin">
                      Enroll an agent
                    </NewLink>
                  </EmptyState>
                }
              >
                <EmptyState title="No agents match">
                  <p>Change the search or the filters.</p>
                </EmptyState>
              </Show>
            }
          >
            <DataTable label="Agents" columns={['Name', 'Status', 'Host name', 'Version', 'OS', 'Address', 'Last seen']} class="agents-table" each={page().items}>
              {(agent) => (
                <tr data-agent-id={agent.id}>
                  <td>
                    <A href={`/agents/${agent.id}`}>{agent.name}</A>
                  </td>
                  <td>
                    <AgentStatusBadge status={agent.status} />
                  </td>
                  <td>{agent.hostname}</td>
                  <td>
                    <AgentVersion version={agent.agent_version} supported={agent.version_supported} />
                  </td>
                  <td>{osLabel(agent.facts)}</td>
                  <td class="mono">{agent.address ?? '—'}</td>
                  <td title={formatDateTime(agent.last_seen_at)}>{relativeTime(agent.last_seen_at, now())}</td>
                </tr>
              )}
            </DataTable>
            <Show when={cursors().length > 1 || page().next}>
              <nav class="pager" aria-label="Agent pages">
                <button type="button" class="button small" disabled={cursors().length <= 1} onClick={() => setCursors(cursors().slice(0, -1))}>
                  Previous page
                </button>
                <span class="hint">Page {cursors().length}</span>
                <button
                  type="button"
                  class="button small"
                  disabled={!page().next}
                  onClick={() => {
                    const next = page().next
                    if (next) setCursors([...cursors(), next])
                  }}
                >
                  Next page
                </button>
              </nav>
            </Show>
          </Show>
        )}
      </Live>
    </section>
  )
}
