import { A, useLocation, type RouteSectionProps } from '@solidjs/router'
import { createEffect, createSignal, ErrorBoundary, For, Show } from 'solid-js'
import type { Role } from '../../../controller/src/auth/roles.ts'
import { can, me, signOut } from '../session.ts'
import { ErrorPanel } from './error-panel.tsx'
import { ThemeToggle } from './theme.tsx'

interface NavItem {
  href: string
  label: string
  /** The lowest role that can open the page (the API would refuse the others anyway). */
  role: Role
  /** Only an exact match marks the item active (so "/" is not active everywhere). */
  end?: boolean
}

export const NAV: NavItem[] = [
  { href: '/', label: 'Dashboard', role: 'viewer', end: true },
  { href: '/runs', label: 'Runs', role: 'viewer' },
  { href: '/jobs', label: 'Jobs', role: 'viewer' },
  { href: '/schedules', label: 'Schedules', role: 'viewer' },
  { href: '/targets', label: 'Targets', role: 'viewer' },
  { href: '/agents', label: 'Agents', role: 'operator' },
  { href: '/credentials', label: 'Credentials', role: 'operator' },
  { href: '/notifications', label: 'Notifications', role: 'viewer' },
  { href: '/users', label: 'Users', role: 'admin' },
  { href: '/audit', label: 'Audit log', role: 'admin' },
  { href: '/settings', label: 'Settings', role: 'viewer' },
]

/** Top bar, side navigation (a menu on phones) and the routed page. */
export function Shell(props: RouteSectionProps) {
  const [menuOpen, setMenuOpen] = createSignal(false)
  const location = useLocation()
  // A navigation closes the phone menu.
  createEffect(() => {
    void location.pathname
    setMenuOpen(false)
  })
  return (
    <div class="shell">
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <button type="button" class="menu-button" aria-expanded={menuOpen()} aria-controls="main-nav" onClick={() => setMenuOpen(!menuOpen())}>
          <span class="visually-hidden">Menu</span>
          <span aria-hidden="true">☰</span>
        </button>
        <A href="/" class="brand">
          <img class="brand-mark" src="/favicon.svg" alt="" width="24" height="24" />
          <span>OpsConductor</span>
        </A>
        <div class="topbar-end">
          <ThemeToggle />
          <Show when={me()}>
            {(user) => (
              <div class="user-menu">
                <A href="/settings" class="user-name" title={`Signed in as ${user().username} (${user().role})`}>
                  {user().display_name ?? user().username}
                  <span class="role-tag">{user().role}</span>
                </A>
                <button type="button" class="button small" onClick={() => void signOut()}>
                  Sign out
                </button>
              </div>
            )}
          </Show>
        </div>
      </header>
      <nav id="main-nav" class="sidenav" classList={{ open: menuOpen() }} aria-label="Main">
        <ul>
          <For each={NAV.filter((item) => can(item.role))}>
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
      <main class="content" id="main" tabindex="-1">
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
