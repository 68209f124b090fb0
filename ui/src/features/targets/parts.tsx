import { createSignal, For, onCleanup, Show, type JSX } from 'solid-js'
import { Badge } from '../../components/badge.tsx'

/** A short-lived "done" line, announced politely to screen readers. */
export function createNotice() {
  const [text, setText] = createSignal('')
  let timer: ReturnType<typeof setTimeout> | undefined
  const show = (message: string) => {
    setText(message)
    clearTimeout(timer)
    timer = setTimeout(() => setText(''), 8000)
  }
  onCleanup(() => clearTimeout(timer))
  const view = (): JSX.Element => (
    <p class="notice" role="status" classList={{ empty: !text() }}>
      {text()}
    </p>
  )
  return { show, view }
}

/** Tag chips (`key=value`), clipped to the cell. */
export function Chips(props: { items: string[]; label: string; max?: number }) {
  const shown = () => props.items.slice(0, props.max ?? 6)
  return (
    <Show when={props.items.length} fallback={<span class="muted">—</span>}>
      <ul class="chips" aria-label={props.label} title={props.items.join(', ')}>
        <For each={shown()}>{(t) => <li class="chip">{t}</li>}</For>
        <Show when={props.items.length > shown().length}>
          <li class="chip more">+{props.items.length - shown().length}</li>
        </Show>
      </ul>
    </Show>
  )
}

/** Online / offline / disabled, in words and colour. */
export function TargetStatus(props: { enabled: boolean; online: boolean }) {
  return (
    <Show when={props.enabled} fallback={<Badge tone="neutral">Disabled</Badge>}>
      <Badge tone={props.online ? 'good' : 'neutral'}>{props.online ? 'Online' : 'Offline'}</Badge>
    </Show>
  )
}

/** `env=prod, role=web` → { env: 'prod', role: 'web' } (a bare key has an empty value). */
export function parseTagText(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const part of text.split(/[,\n]/)) {
    const p = part.trim()
    if (!p) continue
    const at = p.indexOf('=')
    if (at < 0) out[p] = ''
    else out[p.slice(0, at).trim()] = p.slice(at + 1).trim()
  }
  return out
}

/** Server messages for a record field (`tags.env`, `tags`) joined for one control. */
export function messagesUnder(errors: Record<string, string>, prefix: string): string | undefined {
  const found = Object.entries(errors).filter(([path]) => path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`))
  if (!found.length) return undefined
  return found.map(([path, message]) => (path === prefix ? message : `${path.slice(prefix.length + 1)}: ${message}`)).join('; ')
}
