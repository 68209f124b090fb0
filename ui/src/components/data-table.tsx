import { For, type Accessor, type JSX } from 'solid-js'

interface Props<T> {
  /** The table's name (a visually hidden caption): what screen readers and tests call it. */
  label: string
  /** Header texts; an empty one is the actions column, named for screen readers only. */
  columns: string[]
  each: readonly T[] | undefined
  class?: string
  wrapClass?: string
  busy?: boolean
  /** A scroll box that keyboards can reach (wide tables on phones). */
  focusable?: boolean
  /** An item's row (or rows). */
  children: (item: T, index: Accessor<number>) => JSX.Element
}

/** A data table in its sideways scroll box, with its caption, column headers and a row per item. */
export function DataTable<T>(props: Props<T>) {
  return (
    <div
      class={`table-wrap${props.wrapClass ? ` ${props.wrapClass}` : ''}`}
      aria-busy={props.busy}
      tabindex={props.focusable ? 0 : undefined}
      role={props.focusable ? 'region' : undefined}
      aria-label={props.focusable ? props.label : undefined}
    >
      <table class={`data${props.class ? ` ${props.class}` : ''}`}>
        <caption class="visually-hidden">{props.label}</caption>
        <thead>
          <tr>
            <For each={props.columns}>{(column) => <th scope="col">{column || <span class="visually-hidden">Actions</span>}</th>}</For>
          </tr>
        </thead>
        <tbody>
          <For each={props.each}>{props.children}</For>
        </tbody>
      </table>
    </div>
  )
}
