import { batch, createSignal, onCleanup } from 'solid-js'
import { ALL_OUTPUT, lowerBound, OutputStore, type LineFilter } from './output-store.ts'
import { fromBase64, openRunStream, type StreamState } from './run-stream.ts'
import type { RunStatus } from './status.ts'
import { StepGridModel } from './step-grid-model.ts'

const FINAL = new Set<RunStatus>(['succeeded', 'failed', 'timed_out', 'cancelled', 'skipped', 'agent_lost', 'interrupted', 'system_error'])

/*
 * One run's live state for its page: the event stream feeds the output store and the step grid
 * as events arrive; what the page shows is brought up to date once per animation frame (a burst
 * of ten thousand chunks costs one render), through a few signals the components read.
 */
export function createRunLive(runId: string) {
  const store = new OutputStore()
  const grid = new StepGridModel()
  const [view, setView] = createSignal<readonly number[]>(store.view, { equals: false })
  const [changedRev, setChangedRev] = createSignal(0)
  const [generation, setGeneration] = createSignal(0)
  const [gridRev, setGridRev] = createSignal(0)
  const [queryRev, setQueryRev] = createSignal(0)
  const [streamState, setStreamState] = createSignal<StreamState>('connecting')
  const [streamError, setStreamError] = createSignal<unknown>(null)
  const [status, setStatus] = createSignal<RunStatus | null>(null)
  const [ended, setEnded] = createSignal(false)
  let gridDirty = false
  let scheduled = false
  let frame = 0
  let timer: ReturnType<typeof setTimeout> | undefined

  const flush = () => {
    scheduled = false
    cancelAnimationFrame(frame)
    clearTimeout(timer)
    const changed = store.commit()
    batch(() => {
      setView(store.view)
      if (changed.length) setChangedRev((n) => n + 1)
      if (store.generation !== generation()) setGeneration(store.generation)
      if (gridDirty) {
        gridDirty = false
        setGridRev((n) => n + 1)
      }
    })
  }
  const schedule = () => {
    if (scheduled) return
    scheduled = true
    frame = requestAnimationFrame(flush)
    // A hidden tab gets no animation frames: still commit now and then, so memory use stays bounded by the store.
    timer = setTimeout(flush, 500)
  }

  const stream = openRunStream(runId, {
    run: (e) => setStatus(e.status),
    step: (e) => {
      if (grid.apply(e)) gridDirty = true
      if (e.step_run_id && e.status && FINAL.has(e.status)) store.finish(e.step_run_id)
      schedule()
    },
    output: (e) => {
      if (!e.step_run_id) return
      if (e.dropped_bytes > 0) store.notice(e.step_run_id, `[opsconductor: ${e.dropped_bytes} bytes of output were lost on the agent (spool full)]`)
      store.append(e.step_run_id, e.stream === 'stderr' ? 'stderr' : 'stdout', fromBase64(e.data))
      schedule()
    },
    end: (e) => {
      if (e.status) setStatus(e.status)
      for (const id of grid.byId.keys()) store.finish(id)
      setEnded(true)
      schedule()
    },
    state: (s, err) => {
      setStreamState(s)
      setStreamError(err ?? null)
    },
  })
  onCleanup(() => {
    stream.close()
    cancelAnimationFrame(frame)
    clearTimeout(timer)
  })

  return {
    store,
    grid,
    view,
    changedRev,
    generation,
    gridRev,
    queryRev,
    streamState,
    streamError,
    status,
    ended,
    /** The run's targets in its own order, for the grid's rows. */
    setTargets(names: readonly string[]) {
      grid.setTargets(names)
      setGridRev((n) => n + 1)
    },
    setFilter(filter: LineFilter) {
      store.setFilter(filter)
      batch(() => {
        setView(store.view)
        setQueryRev((n) => n + 1)
      })
    },
    setQuery(text: string) {
      store.setQuery(text)
      setQueryRev((n) => n + 1)
    },
    /** The match after (or before) `line`, wrapping around; undefined without matches. */
    nextMatch(line: number, dir: 1 | -1): number | undefined {
      const m = store.matches
      if (m.length === 0) return undefined
      if (dir === 1) {
        const at = lowerBound(m, line + 1)
        return m[at < m.length ? at : 0]
      }
      const at = lowerBound(m, line) - 1
      return m[at >= 0 ? at : m.length - 1]
    },
  }
}

export type RunLive = ReturnType<typeof createRunLive>
export { ALL_OUTPUT }
