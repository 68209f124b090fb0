import { A, useSearchParams } from '@solidjs/router'
import { createEffect, createResource, createSignal, For, on, onCleanup, Show } from 'solid-js'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { EmptyState, Loaded } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { can } from '../../session.ts'
import { downloadJson, exportAll, importJobs, listJobs, type ImportResult, type JobList, type JobListItem } from './jobs-api.ts'
import { ago, runTone, statusLabel } from './model.ts'
import './jobs.css'

/*
 * /jobs — search (by name) and tag filter kept in the URL, each job's newest run, keyset pages
 * ("More jobs"), and import/export of definitions as JSON files.
 */

const SEARCH_DEBOUNCE_MS = 250

export function JobsPage() {
  const [search, setSearch] = useSearchParams<{ q?: string; tag?: string }>()
  const [text, setText] = createSignal(search.q ?? '')
  let timer: ReturnType<typeof setTimeout> | undefined
  onCleanup(() => clearTimeout(timer))
  const onSearch = (value: string) => {
    setText(value)
    clearTimeout(timer)
    timer = setTimeout(() => setSearch({ q: value.trim() || undefined }, { replace: true }), SEARCH_DEBOUNCE_MS)
  }

  const filter = () => ({ q: search.q, tag: search.tag })
  const [first, { refetch }] = createResource(filter, (f) => listJobs(f))
  // Further pages are appended below the first; a new filter starts again.
  const [more, setMore] = createSignal<JobListItem[]>([])
  const [next, setNext] = createSignal<string | null>(null)
  const [loadingMore, setLoadingMore] = createSignal(false)
  const [moreError, setMoreError] = createSignal<unknown>(null)
  // (Reading a failed resource throws: look at its error first.)
  createEffect(
    on(
      () => (first.error ? undefined : first.latest),
      (page) => {
        setMore([])
        setNext(page?.next ?? null)
      },
    ),
  )
  const loadMore = async () => {
    const cursor = next()
    if (!cursor) return
    setLoadingMore(true)
    setMoreError(null)
    try {
      const page = await listJobs({ ...filter(), cursor })
      setMore((m) => [...m, ...page.items])
      setNext(page.next)
    } catch (err) {
      setMoreError(err)
    } finally {
      setLoadingMore(false)
    }
  }

  const [ioError, setIoError] = createSignal<unknown>(null)
  const [imported, setImported] = createSignal<ImportResult | null>(null)
  let fileInput!: HTMLInputElement
  const doExport = async () => {
    setIoError(null)
    try {
      downloadJson('jobs.json', await exportAll(filter()))
    } catch (err) {
      setIoError(err)
    }
  }
  const doImport = async (file: File) => {
    setIoError(null)
    setImported(null)
    try {
      let body: unknown
      try {
        body = JSON.parse(await file.text())
      } catch {
        throw new Error(`${file.name} is not a JSON file`)
      }
      setImported(await importJobs(body))
      void refetch()
    } catch (err) {
      setIoError(err)
    } finally {
      fileInput.value = ''
    }
  }

  return (
    <section class="jobs-page">
      <PageHeader
        title="Jobs"
        subtitle="Versioned definitions of operational work: steps, parameters and targets."
        actions={
          <>
            <button type="button" class="button" onClick={() => void doExport()}>
              Export
            </button>
            <Show when={can('operator')}>
              <input ref={fileInput} id="jobs-import-file" type="file" accept="application/json,.json" class="visually-hidden" tabindex="-1" aria-hidden="true" onChange={(e) => e.currentTarget.files?.[0] && void doImport(e.currentTarget.files[0])} />
              <button type="button" class="button" onClick={() => fileInput.click()}>
                Import
              </button>
              <A class="button primary" href="/jobs/new">
                New job
              </A>
            </Show>
          </>
        }
      />
      <div class="toolbar" role="search">
        <div class="field inline-field">
          <label for="jobs-search">Search jobs</label>
          <input id="jobs-search" type="search" value={text()} placeholder="Name contains…" onInput={(e) => onSearch(e.currentTarget.value)} />
        </div>
        <div class="field inline-field">
          <label for="jobs-tag">Tag</label>
          <input id="jobs-tag" list="jobs-tags" value={search.tag ?? ''} placeholder="Any tag" onChange={(e) => setSearch({ tag: e.currentTarget.value.trim() || undefined })} />
          <datalist id="jobs-tags">
            <For each={[...new Set((first.error ? [] : (first.latest?.items ?? [])).flatMap((j) => j.tags))].sort()}>{(t) => <option value={t} />}</For>
          </datalist>
        </div>
        <Show when={search.tag}>
          <button type="button" class="button small" onClick={() => setSearch({ tag: undefined })}>
            Clear tag filter
          </button>
        </Show>
      </div>
      <Show when={ioError()}>
        <ErrorPanel title="Import or export failed" error={ioError()} />
        <ImportProblems error={ioError()} />
      </Show>
      <Show when={imported()}>
        {(r) => (
          <p class="notice" role="status">
            Imported {r().items.length} {r().items.length === 1 ? 'job' : 'jobs'}: {r().items.map((i) => `${i.name} (${i.created ? 'new' : `v${i.version}`})`).join(', ')}.
          </p>
        )}
      </Show>
      <Loaded resource={first} what="jobs" onRetry={() => void refetch()}>
        {/* Loaded hands its children the first value only: read the resource itself so a new filter shows. */}
        {(page) => <JobTable page={first.error ? page : (first.latest ?? page)} more={more()} filtered={!!(search.q || search.tag)} onTag={(tag) => setSearch({ tag })} />}
      </Loaded>
      <Show when={moreError()}>
        <ErrorPanel title="Could not load more jobs" error={moreError()} onRetry={() => void loadMore()} />
      </Show>
      <Show when={next() && !first.loading}>
        <button type="button" class="button load-more" disabled={loadingMore()} onClick={() => void loadMore()}>
          {loadingMore() ? 'Loading…' : 'More jobs'}
        </button>
      </Show>
    </section>
  )
}

function JobTable(props: { page: JobList; more: JobListItem[]; filtered: boolean; onTag: (tag: string) => void }) {
  const rows = () => [...props.page.items, ...props.more]
  return (
    <Show
      when={rows().length}
      fallback={
        <EmptyState title={props.filtered ? 'No job matches' : 'No jobs yet'}>
          <Show when={!props.filtered && can('operator')}>
            <p>
              <A href="/jobs/new">Build a job</A> from templates, or import definitions.
            </p>
          </Show>
        </EmptyState>
      }
    >
      <div class="table-wrap" tabindex="0" role="region" aria-label="Job list">
        <table class="data jobs-table">
          <caption class="visually-hidden">Jobs</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Tags</th>
              <th scope="col">Steps</th>
              <th scope="col">Last run</th>
              <th scope="col">Version</th>
              <th scope="col">Updated</th>
            </tr>
          </thead>
          <tbody>
            <For each={rows()}>
              {(j) => (
                <tr>
                  <td class="job-name-cell">
                    <A href={`/jobs/${j.id}`}>{j.name}</A>
                    <Show when={!j.enabled}>
                      {' '}
                      <span class="badge tone-neutral small-badge">disabled</span>
                    </Show>
                    <Show when={j.description}>
                      <div class="hint cell-note">{j.description}</div>
                    </Show>
                  </td>
                  <td>
                    <For each={j.tags}>
                      {(t) => (
                        <button type="button" class="tag tag-button" aria-label={`Filter by tag ${t}`} onClick={() => props.onTag(t)}>
                          {t}
                        </button>
                      )}
                    </For>
                  </td>
                  <td title={j.step_types.join(', ')}>
                    {j.step_count} <span class="hint mono">{j.step_types.slice(0, 2).join(', ')}{j.step_types.length > 2 ? '…' : ''}</span>
                  </td>
                  <td>
                    <Show when={j.last_run} fallback={<span class="hint">never</span>}>
                      {(r) => (
                        <A href={`/runs/${r().id}`} class="run-link" title={r().created_at}>
                          <span class={`badge tone-${runTone(r().status)}`}>{statusLabel(r().status)}</span> <span class="hint">{ago(r().created_at)}</span>
                        </A>
                      )}
                    </Show>
                  </td>
                  <td>v{j.version}</td>
                  <td title={j.updated_at}>
                    {ago(j.updated_at)}
                    <Show when={j.updated_by}>
                      <span class="hint"> by {j.updated_by}</span>
                    </Show>
                  </td>
                </tr>
              )}
            </For>
          </tbody>
        </table>
      </div>
    </Show>
  )
}

/** An import's 400 names each problem by file position (`jobs[1].steps[0].command`). */
function ImportProblems(props: { error: unknown }) {
  const details = () => {
    const d = (props.error as { details?: unknown }).details
    return Array.isArray(d) ? (d as { path?: string; message?: string }[]).filter((x) => typeof x.path === 'string') : []
  }
  return (
    <Show when={details().length}>
      <ul class="problem-list" aria-label="Problems in the file">
        <For each={details()}>
          {(d) => (
            <li>
              <span class="mono">{d.path}</span>: {d.message}
            </li>
          )}
        </For>
      </ul>
    </Show>
  )
}
