import { A, type RouteSectionProps } from '@solidjs/router'
import { ErrorBoundary, For } from 'solid-js'
import { ErrorPanel } from './error-panel.tsx'

interface NavItem {
  href: string
  label: string
  /** Only an exact match marks the item active (so "/" is not active everywhere). */
  end?: boolean
}

const NAV: NavItem[] = [{ href: '/', label: 'Dashboard', end: true }]

/** Top bar, side navigation and the routed page. */
export function Shell(props: RouteSectionProps) {
  return (
    <div class="shell">
      <header class="topbar">
        <A href="/" class="brand">
          <img class="brand-mark" src="/favicon.svg" alt="" width="24" height="24" />
          <span>OpsConductor</span>
        </A>
      </header>
      <nav class="sidenav" aria-label="Main">
        <ul>
          <For each={NAV}>
            {(item) => (
              <li>
                <A href={item.href} end={item.end} class="nav-link" activeClass="active">
                  {item.label}
                </A>
              </li>
            )}
          </For>
        </ul>
      </nav>
      <main class="content">
        <ErrorBoundary
          fallback={(err, reset) => {
            // A render bug must stay visible to whoever debugs it, not only in the page.
            console.error('ui.render_failed', err)
            return <ErrorPanel title="This page failed to render" error={err} onRetry={reset} />
          }}
        >
          {props.children}
        </ErrorBoundary>
      </main>
    </div>
  )
}
