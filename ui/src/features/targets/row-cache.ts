import { createRoot, onCleanup, type JSX } from 'solid-js'

/*
 * Keeps each rendered row's DOM (and its bindings) for as long as its item stays near the view.
 *
 * VirtualList calls its row function inside an expression that also reads the visible range, so
 * on every scroll step it calls it again for every row in view; without this, each frame of
 * scrolling would rebuild all ~40 rows instead of the few that came into view. Handing back the
 * same node makes Solid keep it. (The lasting fix is in VirtualList: call `children` untracked.)
 */
export function createRowCache<T extends object>(render: (item: T, index: number) => JSX.Element, capacity = 300): (item: T, index: number) => JSX.Element {
  const cache = new Map<T, { node: JSX.Element; dispose: () => void }>()
  onCleanup(() => {
    for (const entry of cache.values()) entry.dispose()
    cache.clear()
  })
  // An item keeps its index for as long as it is in the list (pages are appended; a new load brings new items).
  return (item, index) => {
    let entry = cache.get(item)
    if (entry) {
      // Most recently used last: rows in view are asked for on every scroll step.
      cache.delete(item)
    } else {
      entry = createRoot((dispose) => ({ node: render(item, index), dispose }))
    }
    cache.set(item, entry)
    if (cache.size > capacity) {
      const [oldest, old] = cache.entries().next().value!
      cache.delete(oldest)
      old.dispose()
    }
    return entry.node
  }
}
