import { createEffect, createMemo, createRenderEffect, createSignal, createUniqueId, For, on, onCleanup, Show } from 'solid-js'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { VirtualList } from '../../components/virtual-list.tsx'
import { outputBlob, saveBlob, type DownloadPart } from './download.ts'
import { renderLine } from './log-line.ts'
import { lowerBound } from './output-store.ts'
import type { RunLive } from './run-live.ts'
import { shortId } from './status.ts'
import { NO_TARGET, StepGridModel } from './step-grid-model.ts'

/** Every row's height: 2^20 rows of it stay under the tallest element a browser can scroll. */
export const ROW_HEIGHT = 17
const NUMBER = new Intl.NumberFormat()
const plural = (n: number, one: string, many = `${one}s`) => `${NUMBER.format(n)} ${n === 1 ? one : many}`

interface Props {
  live: RunLive
  runId: string
  /** The step run whose output alone is shown (a grid cell), or null for the whole run. */
  selected: string | null
  onClearSelection: () => void
}

/** The run's output: windowed, coloured, followed live, searchable, filtered, downloadable. */
export function LogViewer(props: Props) {
  const live = props.live
  const store = live.store
  const grid = live.grid
  let el: HTMLDivElement | undefined
  let expectedTop = -1
  const [follow, setFollow] = createSignal(true)
  const [target, setTarget] = createSignal('')
  const [stdout, setStdout] = createSignal(true)
  const [stderr, setStderr] = createSignal(true)
  const [query, setQuery] = createSignal('')
  const [current, setCurrent] = createSignal(-1)
  const [downloading, setDownloading] = createSignal(false)
  const [downloadError, setDownloadError] = createSignal<unknown>(null)
  const ids = { search: createUniqueId(), target: createUniqueId() }

  const targets = createMemo(() => {
    live.gridRev()
    return [...grid.targets]
  })
  const multiTarget = () => targets().length > 1
  const labelOf = (stepRunId: string) => {
    const cell = grid.byId.get(stepRunId)
    return cell ? (cell.target ?? StepGridModel.targetLabel(NO_TARGET)) : ''
  }

  // Filters: the selected cell wins over the target filter; both are asked once per step run.
  createEffect(() => {
    const sel = props.selected
    const t = target()
    const stepRun = sel ? (id: string) => id === sel : t ? (id: string) => (grid.byId.get(id)?.target ?? NO_TARGET) === t : null
    live.setFilter({ stepRun, stdout: stdout(), stderr: stderr() })
    setCurrent(-1)
  })

  // Search: applied shortly after typing stops (a million lines take a moment to scan), or on Enter.
  let searchTimer: ReturnType<typeof setTimeout> | undefined
  let applied = ''
  const applyQuery = (q: string) => {
    clearTimeout(searchTimer)
    if (q === applied) return
    applied = q
    live.setQuery(q)
    setCurrent(-1)
  }
  createEffect(
    on(query, (q) => {
      clearTimeout(searchTimer)
      searchTimer = setTimeout(() => applyQuery(q), 120)
    }),
  )
  onCleanup(() => clearTimeout(searchTimer))

  const matchCount = () => {
    live.view()
    live.queryRev()
    live.changedRev()
    return store.matches.length
  }
  const matchPosition = () => {
    matchCount()
    const at = lowerBound(store.matches, current())
    return store.matches[at] === current() ? at + 1 : 0
  }

  const scrollToEnd = () => {
    if (!el) return
    el.scrollTop = el.scrollHeight
    expectedTop = el.scrollTop
  }
  // Follow: after every commit of new lines, and when following is turned back on.
  createEffect(
    on([live.view, follow], () => {
      if (follow()) scrollToEnd()
    }),
  )
  const onScroll = (list: HTMLDivElement) => {
    // Only following needs the position; reading it forces a layout of the rows just rendered.
    if (!follow()) return
    if (Math.abs(list.scrollTop - expectedTop) < 1) return
    expectedTop = -1
    const atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - ROW_HEIGHT
    if (!atEnd) setFollow(false)
  }

  const goToMatch = (dir: 1 | -1) => {
    if (matchCount() === 0) return
    const from = current() >= 0 ? current() : dir === 1 ? firstVisibleLine() - 1 : firstVisibleLine()
    const line = live.nextMatch(from, dir)
    if (line === undefined || !el) return
    setFollow(false)
    setCurrent(line)
    const pos = store.viewPosition(line)
    el.scrollTop = Math.max(0, pos * ROW_HEIGHT - el.clientHeight / 2 + ROW_HEIGHT / 2)
    expectedTop = el.scrollTop
  }
  const firstVisibleLine = () => {
    const pos = el ? Math.floor(el.scrollTop / ROW_HEIGHT) : 0
    return store.view[Math.min(pos, store.view.length - 1)] ?? 0
  }

  const download = async () => {
    setDownloading(true)
    setDownloadError(null)
    try {
      const cells = [...grid.byId.values()].filter((c) => (props.selected ? c.stepRunId === props.selected : !target() || (c.target ?? NO_TARGET) === target()))
      const order = (c: (typeof cells)[number]) => [targets().indexOf(c.target ?? NO_TARGET), grid.steps.indexOf(c.stepId), c.attempt]
      cells.sort((a, b) => {
        const [x, y] = [order(a), order(b)]
        return x[0]! - y[0]! || x[1]! - y[1]! || x[2]! - y[2]!
      })
      const parts: DownloadPart[] = cells.map((c) => ({ stepRunId: c.stepRunId, label: `${c.stepId} on ${c.target ?? 'controller'} (attempt ${c.attempt})` }))
      const stream = stdout() && !stderr() ? 'stdout' : stderr() && !stdout() ? 'stderr' : undefined
      const blob = await outputBlob(props.runId, parts, stream)
      const only = props.selected ? cells[0] : undefined
      saveBlob(blob, `run-${shortId(props.runId)}${only ? `-${only.stepId}-${only.target ?? 'controller'}` : target() ? `-${target()}` : ''}.log`.replace(/[^\w.-]+/g, '_'))
    } catch (err) {
      setDownloadError(err)
    } finally {
      setDownloading(false)
    }
  }

  const selectedCell = () => {
    live.gridRev()
    return props.selected ? grid.byId.get(props.selected) : undefined
  }
  const streamNote = () => {
    switch (live.streamState()) {
      case 'connecting':
        return 'Connecting…'
      case 'live':
        return 'Live'
      case 'reconnecting':
        return 'Reconnecting…'
      case 'ended':
        return 'Complete'
      case 'failed':
        return 'Disconnected'
    }
  }

  return (
    <section class="card log-card" aria-labelledby="output-heading">
      <div class="log-head">
        <h2 id="output-heading">Output</h2>
        <p class="log-status">
          <span>{plural(live.view().length, 'line')}</span>
          <span role="status" classList={{ 'log-live': live.streamState() === 'live' }}>
            {streamNote()}
          </span>
        </p>
      </div>
      <Show when={selectedCell()}>
        {(cell) => (
          <p class="log-scope">
            Showing step <strong>{cell().stepId}</strong> on <strong>{cell().target ?? 'controller'}</strong>
            {cell().attempt > 1 ? ` (attempt ${cell().attempt})` : ''}.{' '}
            <button type="button" class="link-button" onClick={() => props.onClearSelection()}>
              Show all output
            </button>
          </p>
        )}
      </Show>
      <div class="log-toolbar toolbar">
        <button type="button" class="button small" aria-pressed={follow()} onClick={() => setFollow(!follow())}>
          Follow
        </button>
        <div class="log-search">
          <label class="visually-hidden" for={ids.search}>
            Search output
          </label>
          <input
            id={ids.search}
            class="input"
            type="search"
            placeholder="Search output"
            value={query()}
            onInput={(e) => setQuery(e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter') {
                e.preventDefault()
                applyQuery(query())
                goToMatch(e.shiftKey ? -1 : 1)
              }
            }}
          />
          <button type="button" class="button small" disabled={matchCount() === 0} onClick={() => goToMatch(-1)}>
            Previous match
          </button>
          <button type="button" class="button small" disabled={matchCount() === 0} onClick={() => goToMatch(1)}>
            Next match
          </button>
          <span class="log-matches" role="status">
            {query() ? (matchPosition() ? `${NUMBER.format(matchPosition())} of ${NUMBER.format(matchCount())}` : plural(matchCount(), 'match', 'matches')) : ''}
          </span>
        </div>
        <Show when={multiTarget() && !props.selected}>
          <div class="log-filter">
            <label for={ids.target}>Target</label>
            <select id={ids.target} class="input" value={target()} onChange={(e) => setTarget(e.currentTarget.value)}>
              <option value="">All targets</option>
              <For each={targets()}>{(t) => <option value={t}>{StepGridModel.targetLabel(t)}</option>}</For>
            </select>
          </div>
        </Show>
        <fieldset class="log-streams">
          <legend class="visually-hidden">Streams</legend>
          <label>
            <input type="checkbox" checked={stdout()} onChange={(e) => setStdout(e.currentTarget.checked)} /> stdout
          </label>
          <label>
            <input type="checkbox" checked={stderr()} onChange={(e) => setStderr(e.currentTarget.checked)} /> stderr
          </label>
        </fieldset>
        <button type="button" class="button small" disabled={downloading() || (!stdout() && !stderr())} onClick={() => void download()}>
          {downloading() ? 'Preparing download…' : 'Download output'}
        </button>
      </div>
      <Show when={downloadError()}>{(err) => <ErrorPanel title="Could not download the output" error={err()} onRetry={() => void download()} />}</Show>
      <Show when={live.streamError()}>{(err) => <ErrorPanel title="Live output stopped" error={err()} />}</Show>
      <Show when={store.dropped > 0 && live.generation() >= 0}>
        <p class="hint">{NUMBER.format(store.dropped)} earlier lines are no longer shown, to save memory; Download output has everything.</p>
      </Show>
      <div class="log-frame">
        <VirtualList
          items={live.view()}
          rowHeight={ROW_HEIGHT}
          height="var(--log-height)"
          overscan={12}
          label="Run output"
          role="log"
          class="log-list"
          ref={(e) => (el = e)}
          onScroll={onScroll}
        >
          {(line) => <LogRow line={line} live={live} current={current} multi={multiTarget} labelOf={labelOf} />}
        </VirtualList>
        <Show when={live.view().length === 0}>
          <p class="log-empty">
            {store.length > 0 ? 'No lines match these filters.' : live.ended() ? 'This run produced no output.' : 'No output yet.'}
          </p>
        </Show>
      </div>
    </section>
  )
}

interface RowProps {
  line: number
  live: RunLive
  current: () => number
  multi: () => boolean
  labelOf: (stepRunId: string) => string
}

/**
 * One row, built directly as DOM in a single render effect (rows come and go by the hundred per
 * frame while scrolling fast, so each costs one computation, not one per part).
 */
function LogRow(props: RowProps) {
  const { store } = props.live
  const line = props.line
  const row = document.createElement('div')
  createRenderEffect(() => {
    props.live.generation()
    props.live.queryRev()
    // An unfinished line redraws as it grows; a finished one never again.
    if (store.isOpen(line)) props.live.changedRev()
    const src = store.sourceOf(line)
    row.className = `log-line${src.stream === 'stderr' ? ' log-stderr' : src.stream === 'system' ? ' log-system' : ''}`
    const no = document.createElement('span')
    no.className = 'log-no'
    no.setAttribute('aria-hidden', 'true')
    no.textContent = String(line + store.dropped + 1)
    const parts: Node[] = [no]
    if (src.stream === 'stderr') {
      const hidden = document.createElement('span')
      hidden.className = 'visually-hidden'
      hidden.textContent = 'stderr: '
      parts.push(hidden)
    }
    if (props.multi()) {
      const label = document.createElement('span')
      label.className = 'log-src'
      label.title = label.textContent = props.labelOf(src.stepRunId)
      parts.push(label)
    }
    const text = document.createElement('span')
    text.className = 'log-text'
    text.append(...renderLine(store, line, store.queryRegExp))
    parts.push(text)
    row.replaceChildren(...parts)
  })
  createRenderEffect(() => row.classList.toggle('log-current', props.current() === line))
  return row
}
