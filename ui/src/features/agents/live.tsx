import { createResource, Match, onCleanup, Switch, type Accessor, type JSX, type Resource, type Signal } from 'solid-js'
import { createStore, reconcile, unwrap } from 'solid-js/store'
import { ApiError } from '../../api.ts'
import { ErrorPanel } from '../../components/error-panel.tsx'

/*
 * Views that refresh themselves: a resource refetched every few seconds whose value lives in a
 * store updated by `reconcile` (keyed by `id`), so a refresh changes only the text that changed —
 * rows keep their DOM nodes (and focus, selection, hover), nothing flickers.
 */

/** createResource storage that reconciles each new value into the previous one. */
function createReconciledSignal<T>(value: T | undefined): Signal<T | undefined> {
  const [store, setStore] = createStore<{ value: T | undefined }>({ value })
  return [
    () => store.value,
    (v: unknown) => {
      const next = typeof v === 'function' ? (v as (prev: T | undefined) => T)(unwrap(store.value)) : v
      setStore('value', reconcile(next as T, { key: 'id', merge: false }) as never)
      return store.value
    },
  ] as Signal<T | undefined>
}

export interface Polled<T> {
  resource: Resource<T | undefined>
  /** Fetch now (the Refresh and Try again buttons). */
  refresh: () => void
}

/**
 * A resource that refetches every `intervalMs` while the page is visible (and once when it
 * becomes visible again); a refetch never overlaps the previous one. With `source`, it refetches
 * at once when the source changes (a filter), and a false source pauses it.
 */
export function createPolled<T, S = true>(fetcher: (source: S) => Promise<T>, intervalMs: number, source?: Accessor<S | false | null | undefined>): Polled<T> {
  const [resource, { refetch }] = source
    ? createResource(source, (s) => fetcher(s), { storage: createReconciledSignal })
    : createResource(() => (fetcher as () => Promise<T>)(), { storage: createReconciledSignal })
  const refresh = () => {
    if (!resource.loading) void refetch()
  }
  const tick = () => {
    // A refusal (not found, forbidden, bad filter) will not change by asking again; Try again still can.
    if (document.visibilityState === 'visible' && !isRefusal(resource.error)) refresh()
  }
  const timer = setInterval(tick, intervalMs)
  document.addEventListener('visibilitychange', tick)
  onCleanup(() => {
    clearInterval(timer)
    document.removeEventListener('visibilitychange', tick)
  })
  return { resource: resource as Resource<T | undefined>, refresh }
}

function isRefusal(err: unknown): boolean {
  return err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429
}

/**
 * Error first (with Try again), then the value, then a loading placeholder. Unlike a value passed
 * once, the accessor keeps following refreshes.
 */
export function Live<T>(props: { polled: Polled<T>; what: string; loading?: JSX.Element; children: (value: Accessor<NonNullable<T>>) => JSX.Element }) {
  return (
    <Switch
      fallback={
        props.loading ?? (
          <div class="live-loading" aria-busy="true">
            Loading {props.what}…
          </div>
        )
      }
    >
      <Match when={props.polled.resource.error as unknown}>
        {(err) => <ErrorPanel title={`Could not load ${props.what}`} error={err()} onRetry={props.polled.refresh} />}
      </Match>
      <Match when={props.polled.resource.latest}>{(value) => props.children(value as Accessor<NonNullable<T>>)}</Match>
    </Switch>
  )
}
