import { createEffect, createSignal, on } from 'solid-js'
import type { Page } from '../../../../../controller/src/http/pagination.ts'

/**
 * A keyset-paginated list: the first page for the current query, then "load more" appends the
 * next pages. A new query starts again (answers to an older query are dropped); what was shown
 * stays on screen while the new one loads.
 */
export function createPaged<T, Q>(query: () => Q, fetchPage: (q: Q, cursor: string | undefined) => Promise<Page<T>>) {
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
    const q = query()
    setLoading(true)
    setError(null)
    setMoreError(null)
    try {
      const page = await fetchPage(q, undefined)
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
    next,
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
