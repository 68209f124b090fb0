import { A, useLocation } from '@solidjs/router'
import { For } from 'solid-js'

export interface SubNavItem {
  href: string
  label: string
  /** Current only on exactly its own path (a list whose sections live below it). */
  end?: boolean
  /** Whether the item is the current section, when neither rule fits. */
  current?: (path: string) => boolean
}

/** Links between a feature's sections, the current one marked (aria-current) and highlighted. */
export function SubNav(props: { label: string; items: SubNavItem[] }) {
  const location = useLocation()
  const path = () => location.pathname.replace(/(.)\/$/, '$1')
  const isCurrent = (item: SubNavItem) => (item.current ? item.current(path()) : path() === item.href || (!item.end && path().startsWith(`${item.href}/`)))
  return (
    <nav class="subnav" aria-label={props.label}>
      <For each={props.items}>
        {(item) => (
          <A href={item.href} class="subnav-link" activeClass="" inactiveClass="" classList={{ current: isCurrent(item) }} aria-current={isCurrent(item) ? 'page' : undefined}>
            {item.label}
          </A>
        )}
      </For>
    </nav>
  )
}
