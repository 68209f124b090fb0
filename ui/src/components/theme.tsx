import { createSignal } from 'solid-js'

/*
 * Light or dark: the system's choice until the user picks one, remembered in localStorage and
 * applied as data-theme on <html> (the stylesheet keys its colours on it).
 */

type Theme = 'light' | 'dark'
const KEY = 'opsc.theme'

function initial(): Theme {
  const stored = localStorage.getItem(KEY)
  if (stored === 'light' || stored === 'dark') return stored
  return window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'
}

const [theme, setTheme] = createSignal<Theme>(initial())
document.documentElement.dataset.theme = theme()

export function ThemeToggle() {
  const toggle = () => {
    const next = theme() === 'dark' ? 'light' : 'dark'
    setTheme(next)
    localStorage.setItem(KEY, next)
    document.documentElement.dataset.theme = next
  }
  return (
    <button type="button" class="button small theme-toggle" onClick={toggle} aria-label={theme() === 'dark' ? 'Switch to light theme' : 'Switch to dark theme'}>
      {theme() === 'dark' ? '☀' : '☾'}
    </button>
  )
}
