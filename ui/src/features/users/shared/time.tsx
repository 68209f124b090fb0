import { createSignal, Show } from 'solid-js'

/*
 * Times: relative ("3 min ago") where recency matters, the exact local time in the tooltip and the
 * <time datetime> attribute. One shared ticker keeps every relative time current.
 */

const [now, setNow] = createSignal(Date.now())
setInterval(() => setNow(Date.now()), 30_000)

const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' })
const day = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' })

export const formatAbsolute = (iso: string) => absolute.format(new Date(iso))
export const formatDay = (iso: string) => day.format(new Date(iso))

export function formatRelative(iso: string, reference = now()): string {
  const diff = new Date(iso).getTime() - reference
  const abs = Math.abs(diff)
  const future = diff > 0
  const say = (n: number, unit: string) => (future ? `in ${n} ${unit}` : `${n} ${unit} ago`)
  // Within a minute either way is "just now" (the controller's clock and the browser's differ a little).
  if (abs < 60_000) return 'just now'
  if (abs < 3_600_000) return say(Math.round(abs / 60_000), 'min')
  if (abs < 86_400_000) return say(Math.round(abs / 3_600_000), 'h')
  if (abs < 30 * 86_400_000) {
    const d = Math.round(abs / 86_400_000)
    return say(d, d === 1 ? 'day' : 'days')
  }
  return day.format(new Date(iso))
}

/** A time, relative by default; `never` is what a null shows. */
export function Time(props: { iso: string | null | undefined; never?: string; mode?: 'relative' | 'absolute' }) {
  return (
    <Show when={props.iso} fallback={<span class="muted">{props.never ?? '—'}</span>}>
      {(iso) => (
        <time datetime={iso()} title={formatAbsolute(iso())}>
          {props.mode === 'absolute' ? formatAbsolute(iso()) : formatRelative(iso())}
        </time>
      )}
    </Show>
  )
}
