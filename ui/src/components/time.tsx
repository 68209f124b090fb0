import { createSignal, onCleanup, Show, type Accessor } from 'solid-js'
import { formatDateTime, relativeTime } from './format.ts'

/** One clock for every relative time on screen ("12 s ago"), ticking each second while something shows one. */
const [now, setNow] = createSignal(Date.now())
let users = 0
let timer: ReturnType<typeof setInterval> | undefined
export function useNow(): Accessor<number> {
  if (++users === 1) {
    setNow(Date.now())
    timer = setInterval(() => setNow(Date.now()), 1_000)
  }
  onCleanup(() => {
    if (--users === 0) clearInterval(timer)
  })
  return now
}

/** A time, relative by default with the exact local time in its tooltip; `never` is what a null shows. */
export function Time(props: { iso: string | null | undefined; never?: string; mode?: 'relative' | 'absolute' }) {
  const now = useNow()
  return (
    <Show when={props.iso} fallback={<span class="muted">{props.never ?? '—'}</span>}>
      {(iso) => (
        <time datetime={iso()} title={formatDateTime(iso())}>
          {props.mode === 'absolute' ? formatDateTime(iso()) : relativeTime(iso(), now())}
        </time>
      )}
    </Show>
  )
}
