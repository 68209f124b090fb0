import { createEffect, createSignal, on, Show, type JSX } from 'solid-js'
import { ErrorPanel } from './error-panel.tsx'

export interface PageOf<T> {
  items: T[]
  /** The cursor of the following page; null on the last. */
  next: string | null
}

/**
 * A keyset-paginated list: the first page for the current query, then "load more" appends the
 * next pages. A new query starts again (answers to an older query are dropped); what was shown
 * stays on screen while the new one loads.
 */
export function createPaged<T, Q>(query: () => Q, fetchPage: (q: Q, cursor: string | undefined) => Promise<PageOf<T>>) {
  const [items, setItems] = createSignal<T[]>([])
  const [next, setNext] = createSignal<string | null>(null)
  const [loaded, setLoaded] = createSignal(false)
  const [loading, setLoading] = createSignal(true)
  const [loadingMore, setLoadingMore] = createSignal(false)
  const [error, setError] = createSignal<unknown>(null)
  const [moreError, setMoreError] = createSignal<unknown>(null)
  let generation = 0

  const reload = async () => {
    const mine = ++generation
    setLoading(true)
    setError(null)
    setMoreError(null)
    try {
      const page = await fetchPage(query(), undefined)
      if (mine !== generation) return
      setItems(page.items)
      setNext(page.next)
      setLoaded(true)
    } catch (err) {
      if (mine === generation) setError(err)
    } finally {
      if (mine === generation) setLoading(false)
    }
  }

  const loadMore = async () => {
    const cursor = next()
    if (!cursor || loadingMore() || loading()) return
    const mine = generation
    setLoadingMore(true)
    setMoreError(null)
    try {
      const page = await fetchPage(query(), cursor)
      if (mine !== generation) return
      setItems([...items(), ...page.items])
      setNext(page.next)
    } catch (err) {
      if (mine === generation) setMoreError(err)
    } finally {
      setLoadingMore(false)
    }
  }

  createEffect(on(query, () => void reload()))

  return {
    items,
    hasMore: () => next() !== null,
    /** The first page has arrived at least once (a reload keeps showing the old rows). */
    loaded,
    loading,
    loadingMore,
    error,
    moreError,
    reload,
    loadMore,
    /** Replaces items in place (after an edit) without asking the server again. */
    update: (fn: (item: T) => T) => setItems(items().map(fn)),
    remove: (keep: (item: T) => boolean) => setItems(items().filter(keep)),
    prepend: (item: T) => setItems([item, ...items()]),
  }
}

/** What the footer of a paged list needs (createPaged gives it; a list with its own loading can too). */
export interface MorePages {
  hasMore: () => boolean
  loadingMore: () => boolean
  moreError: () => unknown
  loadMore: () => unknown
}

/** Under a paged list: a line about it (the count), the button for the next page, and why the last one failed. */
export function LoadMore(props: { list: MorePages; what: string; children?: JSX.Element }) {
  return (
    <div class="list-footer">
      <span class="hint" role="status">
        {props.children}
      </span>
      <Show when={props.list.hasMore()}>
        <button type="button" class="button" disabled={props.list.loadingMore()} onClick={() => void props.list.loadMore()}>
          {props.list.loadingMore() ? 'Loading…' : `Load more ${props.what}`}
        </button>
      </Show>
      <Show when={props.list.moreError()}>{(err) => <ErrorPanel title={`Could not load more ${props.what}`} error={err()} onRetry={() => void props.list.loadMore()} />}</Show>
    </div>
  )
}
