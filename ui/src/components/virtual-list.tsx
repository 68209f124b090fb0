import { createMemo, createSignal, For, onCleanup, onMount, untrack, type Accessor, type JSX } from 'solid-js'

/*
 * A windowed list: only the rows in view (plus a margin) exist in the DOM, so 10,000 targets or a
 * million output lines scroll like ten. Rows have one fixed height; the list is a scroll container
 * whose inner spacer has the full height, and the visible slice is positioned inside it.
 */

export interface VirtualListProps<T> {
  items: readonly T[]
  /** Every row's height in CSS pixels. */
  rowHeight: number
  /** The scroll container's height (CSS), e.g. "60vh" or "480px". */
  height: string
  /** Rows rendered beyond each edge of the view. */
  overscan?: number
  /** A row, made once while its item stays in view; `index` follows the item's place in the list. */
  children: (item: T, index: Accessor<number>) => JSX.Element
  /** Called with the scroll container (to follow the tail, jump to a row). */
  ref?: (el: HTMLDivElement) => void
  onScroll?: (el: HTMLDivElement) => void
  class?: string
  /** Accessible name of the list. */
  label: string
  /** `list` (default, rows are listitems); `log` for output and `rowgroup` for a table's body (rows bring their own role). */
  role?: 'list' | 'log' | 'rowgroup'
}

export function VirtualList<T>(props: VirtualListProps<T>) {
  let el!: HTMLDivElement
  const [scrollTop, setScrollTop] = createSignal(0)
  const [viewHeight, setViewHeight] = createSignal(600)
  const overscan = () => props.overscan ?? 20
  const rowRole = () => ((props.role ?? 'list') === 'list' ? 'listitem' : undefined)

  onMount(() => {
    setViewHeight(el.clientHeight)
    const observer = new ResizeObserver(() => setViewHeight(el.clientHeight))
    observer.observe(el)
    onCleanup(() => observer.disconnect())
  })

  const range = createMemo(() => {
    const first = Math.max(0, Math.floor(scrollTop() / props.rowHeight) - overscan())
    const last = Math.min(props.items.length, Math.ceil((scrollTop() + viewHeight()) / props.rowHeight) + overscan())
    return { first, last }
  })
  // The slice itself: For is keyed by item, so a row that stays in view keeps its DOM node, and a
  // changed list (filtered, appended) renders exactly the rows whose item changed. The row is made
  // untracked: reading the range there would remake every visible row on each scroll step.
  const visible = createMemo(() => props.items.slice(range().first, range().last))

  return (
    <div
      ref={(e) => {
        el = e
        props.ref?.(e)
      }}
      class={`virtual-list ${props.class ?? ''}`}
      style={{ height: props.height, overflow: 'auto', position: 'relative' }}
      role={props.role ?? 'list'}
      aria-label={props.label}
      tabindex="0"
      onScroll={() => {
        setScrollTop(el.scrollTop)
        props.onScroll?.(el)
      }}
    >
      <div style={{ height: `${props.items.length * props.rowHeight}px`, position: 'relative' }}>
        <div style={{ position: 'absolute', top: `${range().first * props.rowHeight}px`, left: 0, right: 0 }}>
          <For each={visible()}>
            {(item, i) => (
              <div class="virtual-row" style={{ height: `${props.rowHeight}px` }} role={rowRole()}>
                {untrack(() => props.children(item, () => range().first + i()))}
              </div>
            )}
          </For>
        </div>
      </div>
    </div>
  )
}
