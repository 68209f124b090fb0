import { A, useSearchParams } from '@solidjs/router'
import { createSignal, For, onCleanup, Show } from 'solid-js'
import { Badge, toneOf, words } from '../../components/badge.tsx'
import { DataTable } from '../../components/data-table.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { EmptyState } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { createPaged, LoadMore } from '../../components/paged.tsx'
import { Time } from '../../components/time.tsx'
import { can } from '../../session.ts'
import { downloadJson, exportAll, importJobs, listJobs, type ImportResult, type JobListItem } from './jobs-api.ts'
import './jobs.css'

/*
 * /jobs — search (by name) and tag filter kept in the URL, each job's newest run, keyset pages
 * ("Load more jobs"), and import/export of definitions as JSON files.
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
  const list = createPaged(filter, (f, cursor) => listJobs({ ...f, cursor }))

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
      void list.reload()
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
            <For each={[...new Set(list.items().flatMap((j) => j.tags))].sort()}>{(t) => <option value={t} />}</For>
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
      <Show when={!list.error()} fallback={<ErrorPanel title="Could not load jobs" error={list.error()} onRetry={() => void list.reload()} />}>
        <Show when={list.loaded()} fallback={<div class="card card-loading" aria-busy="true">Loading jobs…</div>}>
          <JobTable jobs={list.items()} filtered={!!(search.q || search.tag)} onTag={(tag) => setSearch({ tag })} />
          <LoadMore list={list} what="jobs" />
        </Show>
      </Show>
    </section>
  )
}

function JobTable(props: { jobs: JobListItem[]; filtered: boolean; onTag: (tag: string) => void }) {
  return (
    <Show
      when={props.jobs.length}
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
      <DataTable label="Jobs" columns={['Name', 'Tags', 'Steps', 'Last run', 'Version', 'Updated']} focusable class="jobs-table" each={props.jobs}>
        {(j) => (
          <tr>
            <td class="job-name-cell">
              <A href={`/jobs/${j.id}`}>{j.name}</A>
              <Show when={!j.enabled}>
                {' '}
                <Badge tone="neutral">disabled</Badge>
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
                    <Badge large tone={toneOf(r().status)}>
                      {words(r().status)}
                    </Badge>{' '}
                    <span class="hint">
                      <Time iso={r().created_at} />
                    </span>
                  </A>
                )}
              </Show>
            </td>
            <td>v{j.version}</td>
            <td title={j.updated_at}>
              <Time iso={j.updated_at} />
              <Show when={j.updated_by}>
                <span class="hint"> by {j.updated_by}</span>
              </Show>
            </td>
          </tr>
        )}
      </DataTable>
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
