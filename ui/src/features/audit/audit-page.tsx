import { useSearchParams } from '@solidjs/router'
import { createEffect, createMemo, createSignal, For, on, Show } from 'solid-js'
import type { z } from 'zod'
import type { AuditQuery } from '../../../../controller/src/audit/routes.ts'
import { api, fieldErrors, unwrap, type Ok } from '../../api.ts'
import { Badge, type Tone } from '../../components/badge.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { Field, SelectField } from '../../components/form.tsx'
import { EmptyState } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { createPaged, LoadMore } from '../../components/paged.tsx'
import { RequireRole } from '../../components/require-role.tsx'
import { VirtualList } from '../../components/virtual-list.tsx'
import { AuditDetail } from './audit-detail.tsx'
import { ChainStatus } from './chain-status.tsx'
import './audit.css'

export type AuditPage = Ok<Awaited<ReturnType<typeof api.audit.$get>>>
export type AuditEvent = AuditPage['items'][number]

/** The filters the API takes (GET /audit's query), as the page keeps them in its URL. */
export type FilterKey = Exclude<keyof z.input<typeof AuditQuery>, 'limit' | 'cursor'>
export type Filters = Partial<Record<FilterKey, string>>
const KEYS: FilterKey[] = ['actor', 'action', 'resource_type', 'resource_id', 'outcome', 'from', 'to']

const PAGE_SIZE = 200
const ROW_HEIGHT = 48

export const OUTCOME_TONE: Record<AuditEvent['outcome'], Tone> = { success: 'good', failure: 'bad', denied: 'bad' }

const rowTime = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' })

export const actorLabel = (a: AuditEvent['actor']) => a.name ?? a.id ?? a.type
export const resourceLabel = (r: AuditEvent['resource']) => (r.type ? (r.id ? `${r.type} ${r.id}` : r.type) : '—')

export function AuditPage() {
  return (
    <RequireRole role="admin" page="The audit log">
      <AuditLog />
    </RequireRole>
  )
}

function AuditLog() {
  const [params, setParams] = useSearchParams<Filters>()
  const filters = createMemo<Filters>(
    () => Object.fromEntries(KEYS.map((k) => [k, params[k] || undefined]).filter(([, v]) => v !== undefined)),
    {},
    { equals: (a, b) => JSON.stringify(a) === JSON.stringify(b) },
  )
  const list = createPaged(filters, (f, cursor) => unwrap(api.audit.$get({ query: { limit: String(PAGE_SIZE), cursor, ...f } }), 'GET /audit'))
  const [selected, setSelected] = createSignal<AuditEvent | null>(null)
  const filterErrors = () => fieldErrors(list.error())
  const active = () => Object.keys(filters()).length > 0

  const applyFilters = (next: Filters) => {
    setSelected(null)
    setParams(Object.fromEntries(KEYS.map((k) => [k, next[k] || undefined])), { replace: false })
  }

  return (
    <>
      <PageHeader
        title="Audit log"
        subtitle="Every change and security event, newest first, in a tamper-evident hash chain."
        actions={
          <button type="button" class="button" disabled={list.loading()} onClick={() => void list.reload()}>
            {list.loading() && list.loaded() ? 'Refreshing…' : 'Refresh'}
          </button>
        }
      />
      <ChainStatus onShow={setSelected} />
      <FilterForm current={filters()} errors={filterErrors()} onApply={applyFilters} suggestions={list.items()} />

      <Show when={list.error()}>
        <Show
          when={Object.keys(filterErrors()).length > 0}
          fallback={<ErrorPanel title="Could not load the audit log" error={list.error()} onRetry={() => void list.reload()} />}
        >
          <p class="filter-problem" role="alert">
            The controller refused these filters: fix the fields marked above.
          </p>
        </Show>
      </Show>

      {/* After a failed load the old list would not match the filters on screen: only the error shows. */}
      <Show when={list.loaded() && !list.error()} fallback={<Show when={!list.error()}>{<div class="card card-loading" aria-busy="true">Loading the audit log…</div>}</Show>}>
        <Show
          when={list.items().length > 0}
          fallback={
            <EmptyState title={active() ? 'No entries match these filters' : 'The audit log is empty'}>
              <Show when={active()}>
                <button type="button" class="button" onClick={() => applyFilters({})}>
                  Clear filters
                </button>
              </Show>
            </EmptyState>
          }
        >
          <div class="audit-table" aria-busy={list.loading()}>
            <div class="audit-head" aria-hidden="true">
              <span>Time</span>
              <span>Actor</span>
              <span>Action</span>
              <span>Resource</span>
              <span>Outcome</span>
            </div>
            <VirtualList
              items={list.items()}
              rowHeight={ROW_HEIGHT}
              height={`min(${list.items().length * ROW_HEIGHT + 2}px, max(360px, calc(100vh - 420px)))`}
              label="Audit entries"
              class="audit-list"
              onScroll={(el) => {
                if (el.scrollTop + el.clientHeight > el.scrollHeight - ROW_HEIGHT * 20) void list.loadMore()
              }}
            >
              {(entry) => (
                <button type="button" class="audit-row" data-entry-id={entry.id} aria-haspopup="dialog" onClick={() => setSelected(entry)}>
                  <span class="audit-time">
                    <time datetime={entry.at}>{rowTime.format(new Date(entry.at))}</time>
                  </span>
                  <span class="audit-actor" title={entry.actor.id ?? undefined}>
                    {actorLabel(entry.actor)}
                  </span>
                  <span class="audit-action mono">{entry.action}</span>
                  <span class="audit-resource" title={resourceLabel(entry.resource)}>
                    {resourceLabel(entry.resource)}
                  </span>
                  <span class="audit-outcome">
                    <Badge tone={OUTCOME_TONE[entry.outcome]}>{entry.outcome}</Badge>
                  </span>
                </button>
              )}
            </VirtualList>
          </div>
          <LoadMore list={list} what="entries">
            {list.items().length.toLocaleString()} {list.items().length === 1 ? 'entry' : 'entries'}
            {list.hasMore() ? ' loaded; scroll for more' : active() ? (list.items().length === 1 ? ' matches' : ' match') : ''}
          </LoadMore>
        </Show>
      </Show>

      <Show when={selected()} keyed>
        {(entry) => (
          <AuditDetail
            entry={entry}
            onClose={() => setSelected(null)}
            onFilter={(f) => applyFilters(f)}
          />
        )}
      </Show>
    </>
  )
}

/** `2025-02-01T13:05:00.000Z` ↔ the local `2025-02-01T14:05` a datetime-local input shows. */
function toLocalInput(iso: string | undefined): string {
  if (!iso) return ''
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return ''
  const pad = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`
}

function fromLocalInput(value: string): string | undefined {
  if (!value) return undefined
  const d = new Date(value)
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString()
}

function FilterForm(props: { current: Filters; errors: Record<string, string>; onApply: (f: Filters) => void; suggestions: AuditEvent[] }) {
  const [draft, setDraft] = createSignal<Filters>({})
  // The form follows the URL (back button, a filter picked in the detail panel).
  createEffect(on(() => props.current, (c) => setDraft({ ...c, from: toLocalInput(c.from), to: toLocalInput(c.to) })))
  const set = (k: FilterKey) => (e: { currentTarget: { value: string } }) => setDraft({ ...draft(), [k]: e.currentTarget.value })
  const submit = (e: Event) => {
    e.preventDefault()
    const d = draft()
    props.onApply({
      ...Object.fromEntries(KEYS.map((k) => [k, d[k]?.trim() || undefined])),
      from: fromLocalInput(d.from ?? ''),
      to: fromLocalInput(d.to ?? ''),
    })
  }
  // Suggestions from what is on screen: the actions (and their prefixes), resource types and actors seen.
  const seen = createMemo(() => {
    const actions = new Set<string>()
    const types = new Set<string>()
    const actors = new Set<string>()
    for (const e of props.suggestions.slice(0, 1000)) {
      actions.add(e.action)
      const dot = e.action.indexOf('.')
      if (dot > 0) actions.add(`${e.action.slice(0, dot)}.*`)
      if (e.resource.type) types.add(e.resource.type)
      if (e.actor.name) actors.add(e.actor.name)
    }
    const sorted = (s: Set<string>) => [...s].sort()
    return { actions: sorted(actions), types: sorted(types), actors: sorted(actors) }
  })
  const count = () => Object.keys(props.current).length
  // Open on wide screens; on a phone folded away (unless filters are set), so the entries come first.
  const startOpen = !window.matchMedia('(max-width: 720px)').matches || count() > 0
  return (
    <details class="card audit-filters" open={startOpen}>
      <summary>
        <span class="filters-title">Filters</span>
        <Show when={count() > 0}>
          <Badge tone="active">{count()} active</Badge>
        </Show>
      </summary>
    <form onSubmit={submit} role="search" aria-label="Filter the audit log" novalidate>
      <div class="filter-grid">
        <Field label="Actor" name="actor" list="audit-actors" placeholder="username or id" value={draft().actor ?? ''} onInput={set('actor')} error={props.errors['actor']} />
        <Field label="Action" name="action" list="audit-actions" placeholder="users.create or users.*" value={draft().action ?? ''} onInput={set('action')} error={props.errors['action']} />
        <Field label="Resource type" name="resource_type" list="audit-types" placeholder="user" value={draft().resource_type ?? ''} onInput={set('resource_type')} error={props.errors['resource_type']} />
        <Field label="Resource id" name="resource_id" value={draft().resource_id ?? ''} onInput={set('resource_id')} error={props.errors['resource_id']} />
        <SelectField label="Outcome" name="outcome" value={draft().outcome ?? ''} onChange={set('outcome')} error={props.errors['outcome']}>
          <option value="">Any outcome</option>
          <option value="success">Success</option>
          <option value="failure">Failure</option>
          <option value="denied">Denied</option>
        </SelectField>
        <Field label="From" name="from" type="datetime-local" value={draft().from ?? ''} onInput={set('from')} error={props.errors['from']} />
        <Field label="To" name="to" type="datetime-local" value={draft().to ?? ''} onInput={set('to')} error={props.errors['to']} />
      </div>
      <datalist id="audit-actions">
        <For each={seen().actions}>{(a) => <option value={a} />}</For>
      </datalist>
      <datalist id="audit-types">
        <For each={seen().types}>{(t) => <option value={t} />}</For>
      </datalist>
      <datalist id="audit-actors">
        <For each={seen().actors}>{(a) => <option value={a} />}</For>
      </datalist>
      <div class="form-actions">
        <button type="button" class="button" onClick={() => props.onApply({})}>
          Clear filters
        </button>
        <button type="submit" class="button primary">
          Apply filters
        </button>
      </div>
    </form>
    </details>
  )
}
