import { createEffect, createSignal, on } from 'solid-js'

/*
 * A keyset-paginated list read page by page ("Load more"): the first page again whenever the
 * filters change, the next pages appended. Responses to a stale request (filters changed while
 * it was in flight) are dropped.
 */

export interface PageOf<T> {
  items: T[]
  next: string | null
}

export function createPaged<T, K>(key: () => K, fetchPage: (key: K, cursor: string | undefined) => Promise<PageOf<T>>) {
  const [items, setItems] = createSignal<T[]>([])
  const [next, setNext] = createSignal<string | null>(null)
  const [loading, setLoading] = createSignal(true)
  const [loaded, setLoaded] = createSignal(false)
  const [error, setError] = createSignal<unknown>(null)
  const [moreError, setMoreError] = createSignal<unknown>(null)
  let generation = 0

  const load = async (k: K, cursor: string | undefined) => {
    const mine = ++generation
    setLoading(true)
    if (cursor === undefined) setError(null)
    setMoreError(null)
    try {
      const page = await fetchPage(k, cursor)
      if (mine !== generation) return
      setItems(cursor === undefined ? page.items : [...items(), ...page.items])
      setNext(page.next)
      setLoaded(true)
    } catch (err) {
      if (mine !== generation) return
      if (cursor === undefined) setError(err)
      else setMoreError(err)
    } finally {
      if (mine === generation) setLoading(false)
    }
  }

  createEffect(on(key, (k) => void load(k, undefined)))

  return {
    items,
    /** Replace one item in place (after an edit), keeping the order. */
    update: (fn: (items: T[]) => T[]) => setItems(fn(items())),
    hasMore: () => next() !== null,
    loading,
    /** The first page has arrived at least once (later reloads keep showing the old rows). */
    loaded,
    error,
    moreError,
    more: () => {
      const cursor = next()
      if (cursor && !loading()) void load(key(), cursor)
    },
    reload: () => void load(key(), undefined),
  }
}
