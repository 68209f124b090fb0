import { A, useSearchParams } from '@solidjs/router'
import { createEffect, createMemo, createResource, createSignal, For, Match, on, onCleanup, Show, Switch } from 'solid-js'
import { getJson, type api, type Ok } from '../../api.ts'
import { Badge } from '../../components/badge.tsx'
import { DataTable } from '../../components/data-table.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { Field, SelectField } from '../../components/form.tsx'
import { formatDateTime } from '../../components/format.ts'
import { EmptyState } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { LoadMore } from '../../components/paged.tsx'
import { filtersFromParams, filtersToParams, hasFilters, listQuery, matchesFilters, RANGE_LABELS, RANGES, type RunFilters } from './run-filters.ts'
import { formatDuration, isActive, runDuration, RUN_STATUS_OPTIONS, RUN_TRIGGER_OPTIONS, shortId, statusLabel, statusTone, triggerLabel } from './status.ts'
import './runs.css'

type RunsPageData = Ok<Awaited<ReturnType<typeof api.runs.$get>>>
export type RunItem = RunsPageData['items'][number]
type JobsPage = Ok<Awaited<ReturnType<typeof api.jobs.$get>>>

const PAGE = 50
const POLL_MS = 3000

const runsUrl = (q: Record<string, string>) => `/api/v1/runs?${new URLSearchParams(q)}`

/** Whether a polled copy of a run differs from the one shown (so unchanged rows keep their DOM). */
const changed = (a: RunItem, b: RunItem) => a.status !== b.status || a.finished_at !== b.finished_at || a.started_at !== b.started_at || a.target_count !== b.target_count || a.waiting_for !== b.waiting_for

/** `/runs`: every run, newest first, filtered; active runs' statuses follow live. */
export function RunsPage() {
  const [params, setParams] = useSearchParams()
  const filters = createMemo(() => filtersFromParams(params), undefined, { equals: (a, b) => JSON.stringify(a) === JSON.stringify(b) })
  const update = (patch: Partial<RunFilters>) => setParams(filtersToParams({ ...filters(), ...patch }))

  const [rows, setRows] = createSignal<RunItem[]>([])
  const [next, setNext] = createSignal<string | null>(null)
  const [state, setState] = createSignal<'loading' | 'ready' | 'error'>('loading')
  const [error, setError] = createSignal<unknown>(null)
  const [moreError, setMoreError] = createSignal<unknown>(null)
  const [loadingMore, setLoadingMore] = createSignal(false)
  const [now, setNow] = createSignal(Date.now())
  let generation = 0

  /** The first page; `quiet` (an empty list looking for new runs) keeps what is shown while it asks. */
  const load = async (quiet = false) => {
    const gen = ++generation
    if (!quiet) {
      setState('loading')
      setError(null)
      setMoreError(null)
    }
    try {
      const page = await getJson<RunsPageData>(runsUrl({ ...listQuery(filters(), Date.now()), limit: String(PAGE) }))
      if (gen !== generation) return
      setRows(page.items)
      setNext(page.next)
      setState('ready')
    } catch (err) {
      if (gen !== generation || quiet) return
      setError(err)
      setState('error')
    }
  }
  createEffect(on(filters, () => void load()))

  const loadMore = async () => {
    const cursor = next()
    if (!cursor) return
    const gen = generation
    setLoadingMore(true)
    setMoreError(null)
    try {
      const page = await getJson<RunsPageData>(runsUrl({ ...listQuery(filters(), Date.now()), limit: String(PAGE), cursor }))
      if (gen !== generation) return
      const seen = new Set(rows().map((r) => r.id))
      setRows([...rows(), ...page.items.filter((r) => !seen.has(r.id))])
      setNext(page.next)
    } catch (err) {
      setMoreError(err)
    } finally {
      setLoadingMore(false)
    }
  }

  /*
   * Live: one request for every run created since the oldest active one shown (or the newest one):
   * it brings the active runs' new statuses and the runs started since. Skipped while the tab is
   * hidden or a load is under way; a failed poll is simply tried again at the next tick.
   */
  const poll = async () => {
    if (state() !== 'ready' || document.visibilityState !== 'visible') return
    const gen = generation
    const shown = rows()
    const active = shown.filter((r) => isActive(r.status))
    const times = [...active, ...shown.slice(0, 1)].map((r) => r.created_at)
    if (times.length === 0) return void (shown.length === 0 && (await load(true)))
    const since = times.reduce((a, b) => (a < b ? a : b))
    const base = listQuery(filters(), Date.now())
    delete base.status
    if (!base.since || base.since < since) base.since = since
    try {
      const page = await getJson<RunsPageData>(runsUrl({ ...base, limit: '500' }))
      if (gen !== generation) return
      const fresh = new Map(page.items.map((r) => [r.id, r]))
      const newest = rows()[0]?.created_at ?? ''
      const added = page.items.filter((r) => r.created_at >= newest && !rows().some((x) => x.id === r.id) && matchesFilters(r, filters()))
      const updated = rows().map((r) => {
        const f = fresh.get(r.id)
        return f && changed(r, f) ? f : r
      })
      setRows([...added, ...updated])
    } catch {
      // The next tick tries again; the list keeps what it shows.
    }
  }
  const timer = setInterval(() => {
    setNow(Date.now())
    void poll()
  }, POLL_MS)
  onCleanup(() => clearInterval(timer))

  return (
    <div class="runs-page">
      <PageHeader title="Runs" subtitle="Every run of every job, newest first. Active runs update live." />
      <Filters filters={filters()} update={update} clear={() => setParams(filtersToParams({}))} />
      <Switch>
        <Match when={state() === 'error'}>
          <ErrorPanel title="Could not load runs" error={error()} onRetry={() => void load()} />
        </Match>
        <Match when={state() === 'loading' && rows().length === 0}>
          <div class="card card-loading" aria-busy="true">
            Loading runs…
          </div>
        </Match>
        <Match when={rows().length === 0}>
          <Show
            when={hasFilters(filters())}
            fallback={
              <EmptyState title="No runs yet">
                <p>
                  Start one from a <A href="/jobs">job</A>; scheduled and triggered runs appear here too.
                </p>
              </EmptyState>
            }
          >
            <EmptyState title="No runs match these filters">
              <button type="button" class="button" onClick={() => setParams(filtersToParams({}))}>
                Clear filters
              </button>
            </EmptyState>
          </Show>
        </Match>
        <Match when={rows().length > 0}>
          <RunsTable rows={rows()} now={now()} busy={state() === 'loading'} />
          <LoadMore list={{ hasMore: () => next() !== null, loadingMore, moreError, loadMore }} what="runs">
            <Show when={!next()}>{rows().length === 1 ? 'One run' : `All ${rows().length} runs`} shown.</Show>
          </LoadMore>
        </Match>
      </Switch>
    </div>
  )
}

function RunsTable(props: { rows: RunItem[]; now: number; busy: boolean }) {
  return (
    <DataTable label="Runs, newest first" columns={['Run', 'Status', 'Trigger', 'Requested by', 'Targets', 'Created', 'Duration']} busy={props.busy} class="runs-table" each={props.rows}>
      {(r) => (
        <tr>
          <td>
            <A href={`/runs/${r.id}`} class="run-link">
              <span class="run-job">{r.job_name}</span> <span class="mono run-id">{shortId(r.id)}</span>
            </A>
          </td>
          <td>
            <Badge tone={statusTone(r.status)}>{statusLabel(r.status)}</Badge>
          </td>
          <td>{triggerLabel(r.trigger)}</td>
          <td>{r.requested_by ?? '—'}</td>
          <td>{r.target_count}</td>
          <td>{formatDateTime(r.created_at)}</td>
          <td>{formatDuration(runDuration(r, props.now))}</td>
        </tr>
      )}
    </DataTable>
  )
}

function Filters(props: { filters: RunFilters; update: (patch: Partial<RunFilters>) => void; clear: () => void }) {
  const [jobs] = createResource(() => getJson<JobsPage>('/api/v1/jobs?limit=500'))
  const jobOptions = () => (jobs.state === 'ready' ? jobs().items.map((j) => ({ id: String(j.id), name: String(j.name) })) : [])
  const [who, setWho] = createSignal(props.filters.requested_by ?? '')
  createEffect(on(() => props.filters.requested_by, (v) => setWho(v ?? '')))
  return (
    <form class="card filters" role="search" aria-label="Filter runs" onSubmit={(e) => (e.preventDefault(), props.update({ requested_by: who().trim() || undefined }))}>
      <div class="filters-grid">
        <SelectField label="Status" onChange={(e) => props.update({ status: (e.currentTarget.value || undefined) as RunFilters['status'] })}>
          <option value="" selected={!props.filters.status}>
            Any status
          </option>
          <For each={RUN_STATUS_OPTIONS}>
            {(s) => (
              <option value={s} selected={props.filters.status === s}>
                {statusLabel(s)}
              </option>
            )}
          </For>
        </SelectField>
        <SelectField label="Job" onChange={(e) => props.update({ job_id: e.currentTarget.value || undefined })}>
          <option value="" selected={!props.filters.job_id}>
            {jobs.error ? 'Any job (could not load jobs)' : 'Any job'}
          </option>
          <For each={jobOptions()}>
            {(j) => (
              <option value={j.id} selected={props.filters.job_id === j.id}>
                {j.name}
              </option>
            )}
          </For>
        </SelectField>
        <SelectField label="Trigger" onChange={(e) => props.update({ trigger: (e.currentTarget.value || undefined) as RunFilters['trigger'] })}>
          <option value="" selected={!props.filters.trigger}>
            Any trigger
          </option>
          <For each={RUN_TRIGGER_OPTIONS}>
            {(t) => (
              <option value={t} selected={props.filters.trigger === t}>
                {triggerLabel(t)}
              </option>
            )}
          </For>
        </SelectField>
        <Field label="Requested by" value={who()} placeholder="user name" onInput={(e) => setWho(e.currentTarget.value)} onChange={(e) => props.update({ requested_by: e.currentTarget.value.trim() || undefined })} />
        <SelectField label="Time" onChange={(e) => props.update({ range: (e.currentTarget.value || undefined) as RunFilters['range'] })}>
          <option value="" selected={!props.filters.range}>
            Any time
          </option>
          <For each={RANGES}>
            {(r) => (
              <option value={r} selected={props.filters.range === r}>
                {RANGE_LABELS[r]}
              </option>
            )}
          </For>
        </SelectField>
        <Show when={props.filters.range === 'custom'}>
          <Field label="From" type="datetime-local" value={props.filters.from ?? ''} onChange={(e) => props.update({ from: e.currentTarget.value || undefined })} />
          <Field label="To" type="datetime-local" value={props.filters.to ?? ''} onChange={(e) => props.update({ to: e.currentTarget.value || undefined })} />
        </Show>
      </div>
      <Show when={hasFilters(props.filters)}>
        <div class="filters-actions">
          <button type="button" class="button small" onClick={() => props.clear()}>
            Clear filters
          </button>
        </div>
      </Show>
    </form>
  )
}
