import { A, useSearchParams } from '@solidjs/router'
import { createEffect, createMemo, createResource, createSignal, For, Match, on, onCleanup, Show, Switch, type Accessor } from 'solid-js'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { Field, SelectField } from '../../components/form.tsx'
import { EmptyState } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { VirtualList } from '../../components/virtual-list.tsx'
import { can } from '../../session.ts'
import { BulkDialog, type BulkAction } from './bulk-dialog.tsx'
import { connectionSummary, downloadExport, fetchTargetPage, formatNumber, listGroups, OS_LABELS, tagPairs, type OsType, type TargetFilter, type TargetRow } from './data.ts'
import { Chips, createNotice, TargetStatus } from './parts.tsx'
import { TargetsNav } from './targets-nav.tsx'
import './targets.css'

/*
 * The fleet: every target matching the filters, loaded page by page (keyset, 500 at a time) into
 * one windowed table, so 10,000 rows scroll like ten. Filters live in the URL (shareable, Back
 * works). Operators select rows (click, shift-click for a range, or all) for bulk changes.
 */

const ROW_HEIGHT = 44

type Params = { q?: string; os?: string; connection?: string; group?: string; tags?: string; status?: string }

const CONNECTION_FILTERS: [NonNullable<TargetFilter['connection']>, string][] = [
  ['agent', 'Agent'],
  ['agentless', 'Agentless (SSH or WinRM)'],
  ['ssh', 'SSH'],
  ['winrm', 'WinRM'],
]

function filterOf(p: Params): TargetFilter {
  const tags = (p.tags ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => (t.includes('=') ? t : `${t}=`))
  return {
    q: p.q?.trim() || undefined,
    os: (p.os || undefined) as TargetFilter['os'],
    connection: (p.connection || undefined) as TargetFilter['connection'],
    group: p.group || undefined,
    tag: tags,
    online: p.status === 'online' ? 'true' : p.status === 'offline' ? 'false' : undefined,
    enabled: p.status === 'disabled' ? 'false' : p.status === 'online' || p.status === 'offline' ? 'true' : undefined,
  }
}

/** Loads every page for the current filter; a new filter cancels the old load. */
function createTargetLoader(filter: () => TargetFilter) {
  const [rows, setRows] = createSignal<TargetRow[]>([])
  const [state, setState] = createSignal<'loading' | 'partial' | 'done' | 'error'>('loading')
  const [error, setError] = createSignal<unknown>(null)
  let ctrl: AbortController | undefined
  const load = async (f: TargetFilter) => {
    ctrl?.abort()
    const c = (ctrl = new AbortController())
    setState('loading')
    setError(null)
    let acc: TargetRow[] = []
    let cursor: string | undefined
    try {
      do {
        const page = await fetchTargetPage(f, cursor, c.signal)
        if (c.signal.aborted) return
        acc = acc.concat(page.items)
        setRows(acc)
        cursor = page.next ?? undefined
        setState(cursor ? 'partial' : 'done')
      } while (cursor)
    } catch (err) {
      if (c.signal.aborted) return
      setError(err)
      setState('error')
    }
  }
  createEffect(on(filter, (f) => void load(f)))
  onCleanup(() => ctrl?.abort())
  return { rows, state, error, reload: () => load(filter()) }
}

export function TargetsPage() {
  const [params, setParams] = useSearchParams<Params>()
  // Typing in the search box waits for a pause before asking the server.
  const [q, setQ] = createSignal(params.q ?? '')
  let debounce: ReturnType<typeof setTimeout> | undefined
  const onSearch = (value: string) => {
    setQ(value)
    clearTimeout(debounce)
    debounce = setTimeout(() => setParams({ q: value || undefined }, { replace: true }), 250)
  }
  onCleanup(() => clearTimeout(debounce))
  const [tagText, setTagText] = createSignal(params.tags ?? '')

  const filter = createMemo(() => filterOf({ ...params }), undefined, { equals: (a, b) => JSON.stringify(a) === JSON.stringify(b) })
  const loader = createTargetLoader(filter)
  const [groups] = createResource(listGroups)
  const filtered = () => Object.values({ ...params }).some((v) => !!v)

  // ---- selection (operators) ----
  const canWrite = () => can('operator')
  const [selected, setSelected] = createSignal<ReadonlySet<string>>(new Set())
  let anchor = -1
  const toggle = (row: TargetRow, index: number, shift: boolean) => {
    const next = new Set(selected())
    const on = !next.has(row.id)
    if (shift && anchor >= 0) {
      const [a, b] = anchor < index ? [anchor, index] : [index, anchor]
      for (const r of loader.rows().slice(a, b + 1)) on ? next.add(r.id) : next.delete(r.id)
    } else if (on) next.add(row.id)
    else next.delete(row.id)
    anchor = index
    setSelected(next)
  }
  const selectedInView = createMemo(() => {
    const sel = selected()
    let n = 0
    for (const r of loader.rows()) if (sel.has(r.id)) n++
    return n
  })
  const allSelected = () => loader.rows().length > 0 && selectedInView() === loader.rows().length
  const toggleAll = () => setSelected(allSelected() ? new Set<string>() : new Set(loader.rows().map((r) => r.id)))
  // A new filter keeps only the selected targets it still shows.
  createEffect(
    on(
      () => loader.state(),
      (s) => {
        if (s !== 'done') return
        const shown = new Set(loader.rows().map((r) => r.id))
        const kept = [...selected()].filter((id) => shown.has(id))
        if (kept.length !== selected().size) setSelected(new Set(kept))
      },
    ),
  )
  const selectedRows = () => loader.rows().filter((r) => selected().has(r.id))

  const renderRow = (row: TargetRow, index: Accessor<number>) => (
    <div role="row" class="vtable-row" aria-rowindex={index() + 2} classList={{ selected: selected().has(row.id) }}>
      <Show when={canWrite()}>
        <span role="cell" class="cell-check">
          <input
            type="checkbox"
            aria-label={`Select ${row.name}`}
            checked={selected().has(row.id)}
            onClick={(e) => toggle(row, index(), e.shiftKey)}
          />
        </span>
      </Show>
      <span role="cell" class="cell-name">
        {/* A plain link (the router still handles its clicks): cheaper than <A> for rows made while scrolling. */}
        <a href={`/targets/${row.id}`}>{row.name}</a>
        <Show when={row.warnings.length}>
          <span class="warn-mark" title={row.warnings.join('; ')}>
            <span aria-hidden="true">⚠</span>
            <span class="visually-hidden">Warning: {row.warnings.join('; ')}</span>
          </span>
        </Show>
      </span>
      <span role="cell" class="mono cell-clip" title={row.address}>
        {row.address}
      </span>
      <span role="cell">{OS_LABELS[row.os_type as OsType] ?? row.os_type}</span>
      <span role="cell">{connectionSummary(row.connection)}</span>
      <span role="cell" class="cell-clip">
        <Chips items={tagPairs(row.tags)} label={`Tags of ${row.name}`} />
      </span>
      <span role="cell" class="cell-clip">
        <Chips items={(row.groups ?? []).map((g) => g.name)} label={`Groups of ${row.name}`} max={3} />
      </span>
      <span role="cell">
        <TargetStatus enabled={row.enabled} online={row.online} />
      </span>
    </div>
  )

  const [bulk, setBulk] = createSignal<BulkAction | null>(null)
  const notice = createNotice()
  const [exportError, setExportError] = createSignal<unknown>(null)
  const exportAs = async (format: 'csv' | 'json') => {
    setExportError(null)
    try {
      await downloadExport(format)
    } catch (err) {
      setExportError(err)
    }
  }

  const countText = () => {
    const n = loader.rows().length
    switch (loader.state()) {
      case 'loading':
        return 'Loading targets…'
      case 'partial':
        return `${formatNumber(n)} targets loaded, loading more…`
      case 'error':
        return `${formatNumber(n)} targets loaded before the error`
      case 'done':
        return `${formatNumber(n)} ${n === 1 ? 'target' : 'targets'}${filtered() ? ' match' : ''}`
    }
  }

  return (
    <div class="targets-area">
      <PageHeader
        title="Targets"
        subtitle="Hosts and devices OpsConductor runs work on."
        actions={
          <>
            <button type="button" class="button" onClick={() => void exportAs('csv')}>
              Export CSV
            </button>
            <button type="button" class="button" onClick={() => void exportAs('json')}>
              Export JSON
            </button>
            <Show when={canWrite()}>
              <A href="/targets/new" class="button primary">
                New target
              </A>
            </Show>
          </>
        }
      />
      <TargetsNav />
      <Show when={exportError()}>{(err) => <ErrorPanel title="Could not export targets" error={err()} onRetry={() => setExportError(null)} />}</Show>

      <form class="filters" role="search" aria-label="Filter targets" onSubmit={(e) => e.preventDefault()}>
        <Field label="Search" type="search" placeholder="Name or address" value={q()} onInput={(e) => onSearch(e.currentTarget.value)} />
        <SelectField label="OS type" value={params.os ?? ''} onChange={(e) => setParams({ os: e.currentTarget.value || undefined })}>
          <option value="">Any</option>
          <For each={Object.entries(OS_LABELS) as [OsType, string][]}>{([v, l]) => <option value={v}>{l}</option>}</For>
        </SelectField>
        <SelectField label="Connection" value={params.connection ?? ''} onChange={(e) => setParams({ connection: e.currentTarget.value || undefined })}>
          <option value="">Any</option>
          <For each={CONNECTION_FILTERS}>{([v, l]) => <option value={v}>{l}</option>}</For>
        </SelectField>
        <SelectField label="Group" value={params.group ?? ''} onChange={(e) => setParams({ group: e.currentTarget.value || undefined })}>
          <option value="">Any</option>
          <For each={groups() ?? []}>
            {(g) => (
              <option value={g.id} selected={g.id === params.group}>
                {g.name}
              </option>
            )}
          </For>
        </SelectField>
        <Field
          label="Tags"
          placeholder="env=prod, role=web"
          value={tagText()}
          onInput={(e) => setTagText(e.currentTarget.value)}
          onChange={(e) => setParams({ tags: e.currentTarget.value.trim() || undefined })}
          onKeyDown={(e) => e.key === 'Enter' && setParams({ tags: e.currentTarget.value.trim() || undefined })}
        />
        <SelectField label="Status" value={params.status ?? ''} onChange={(e) => setParams({ status: e.currentTarget.value || undefined })}>
          <option value="">Any</option>
          <option value="online">Online</option>
          <option value="offline">Offline</option>
          <option value="disabled">Disabled</option>
        </SelectField>
        <div class="filter-actions">
          <button
            type="button"
            class="button"
            disabled={!filtered()}
            onClick={() => {
              setQ('')
              setTagText('')
              setParams({ q: undefined, os: undefined, connection: undefined, group: undefined, tags: undefined, status: undefined })
            }}
          >
            Clear filters
          </button>
        </div>
      </form>

      <div class="list-status">
        <p class="count" aria-live="polite">
          {countText()}
        </p>
        {notice.view()}
      </div>

      <Show when={canWrite() && selected().size > 0}>
        <div class="bulk-bar" role="region" aria-label="Bulk actions">
          <strong>{formatNumber(selected().size)} selected</strong>
          <button type="button" class="button small" onClick={() => setBulk('add_tags')}>
            Add tags…
          </button>
          <button type="button" class="button small" onClick={() => setBulk('remove_tags')}>
            Remove tags…
          </button>
          <button type="button" class="button small" onClick={() => setBulk('add_to_group')}>
            Add to group…
          </button>
          <button type="button" class="button small" onClick={() => setBulk('remove_from_group')}>
            Remove from group…
          </button>
          <button type="button" class="button small" onClick={() => setBulk('enable')}>
            Enable…
          </button>
          <button type="button" class="button small" onClick={() => setBulk('disable')}>
            Disable…
          </button>
          <button type="button" class="button small danger" onClick={() => setBulk('delete')}>
            Delete…
          </button>
          <button type="button" class="link-button" onClick={() => setSelected(new Set<string>())}>
            Clear selection
          </button>
        </div>
      </Show>

      <Switch>
        <Match when={loader.state() === 'error' && loader.rows().length === 0}>
          <ErrorPanel title="Could not load targets" error={loader.error()} onRetry={() => void loader.reload()} />
        </Match>
        <Match when={loader.state() === 'loading' && loader.rows().length === 0}>
          <div class="card card-loading" aria-busy="true">
            Loading targets…
          </div>
        </Match>
        <Match when={loader.state() === 'done' && loader.rows().length === 0}>
          <Show
            when={filtered()}
            fallback={
              <EmptyState title="No targets yet">
                <p>Add hosts one by one, import a CSV or JSON file, or enroll agents.</p>
                <Show when={canWrite()}>
                  <p class="empty-actions">
                    <A href="/targets/new" class="button primary">
                      New target
                    </A>
                    <A href="/targets/import" class="button">
                      Import targets
                    </A>
                  </p>
                </Show>
              </EmptyState>
            }
          >
            <EmptyState title="No targets match these filters">
              <p>Change or clear the filters to see more.</p>
            </EmptyState>
          </Show>
        </Match>
        <Match when={loader.rows().length > 0}>
          <Show when={loader.state() === 'error'}>
            <ErrorPanel title="Could not load the rest of the targets" error={loader.error()} onRetry={() => void loader.reload()} />
          </Show>
          <div class="vtable-wrap" classList={{ stale: loader.state() === 'loading' }} aria-busy={loader.state() !== 'done' && loader.state() !== 'error'}>
            <div class="vtable targets-table" classList={{ selectable: canWrite() }} role="table" aria-label="Targets" aria-rowcount={loader.rows().length + 1}>
              <div role="rowgroup" class="vtable-head">
                <div role="row" class="vtable-row" aria-rowindex={1}>
                  <Show when={canWrite()}>
                    <span role="columnheader" class="cell-check">
                      <input
                        type="checkbox"
                        aria-label="Select all shown targets"
                        checked={allSelected()}
                        ref={(el) => createEffect(() => (el.indeterminate = selectedInView() > 0 && !allSelected()))}
                        onChange={toggleAll}
                      />
                    </span>
                  </Show>
                  <span role="columnheader">Name</span>
                  <span role="columnheader">Address</span>
                  <span role="columnheader">OS</span>
                  <span role="columnheader">Connection</span>
                  <span role="columnheader">Tags</span>
                  <span role="columnheader">Groups</span>
                  <span role="columnheader">Status</span>
                </div>
              </div>
              <VirtualList
                items={loader.rows()}
                rowHeight={ROW_HEIGHT}
                // As tall as the rows, up to what the window leaves below the filters.
                height={`min(${loader.rows().length * ROW_HEIGHT + 2}px, max(320px, calc(100vh - 360px)))`}
                overscan={12}
                label="Target rows"
                class="vtable-body"
                role="rowgroup"
              >
                {renderRow}
              </VirtualList>
            </div>
          </div>
          <Show when={canWrite()}>
            <p class="hint">Tip: shift-click a checkbox to select a range.</p>
          </Show>
        </Match>
      </Switch>

      <Show when={bulk()} keyed>
        {(action) => (
          <BulkDialog
            action={action}
            targets={selectedRows()}
            groups={groups() ?? []}
            onClose={() => setBulk(null)}
            onDone={(message, removed) => {
              setBulk(null)
              notice.show(message)
              if (removed) setSelected(new Set<string>())
              void loader.reload()
            }}
          />
        )}
      </Show>
    </div>
  )
}
