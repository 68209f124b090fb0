// Times, durations and sizes as text, for every page. Pure (no Solid, no DOM), so node:test covers them.

/** "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago"; "in 5 min" for a time ahead. */
export function relativeTime(iso: string | null | undefined, now: number): string {
  if (!iso) return 'never'
  const t = new Date(iso).getTime()
  if (Number.isNaN(t)) return 'unknown'
  const diff = now - t
  const ahead = diff < 0
  const s = Math.abs(diff) / 1000
  let text: string
  if (s < 5) return ahead ? 'in a moment' : 'just now'
  if (s < 60) text = `${Math.floor(s)} s`
  else if (s < 3_600) text = `${Math.floor(s / 60)} min`
  else if (s < 86_400) text = `${Math.floor(s / 3_600)} h`
  else text = `${Math.floor(s / 86_400)} d`
  return ahead ? `in ${text}` : `${text} ago`
}

const DATE_TIME = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' })
const DAY = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' })

function format(f: Intl.DateTimeFormat, iso: string | null | undefined): string {
  if (!iso) return '—'
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? iso : f.format(d)
}

/** The exact local date and time, for tooltips, details and logs. */
export const formatDateTime = (iso: string | null | undefined) => format(DATE_TIME, iso)

/** The local day alone ("Mar 8, 2026"), for expiry dates. */
export const formatDay = (iso: string | null | undefined) => format(DAY, iso)

/** Seconds as `1 h 30 min`, `45 s`, `2 d 3 h`: every non-zero unit down to minutes. */
export function formatDuration(sec: number): string {
  if (sec < 60) return `${Math.round(sec)} s`
  const parts: string[] = []
  const d = Math.floor(sec / 86_400)
  const h = Math.floor((sec % 86_400) / 3600)
  const m = Math.floor((sec % 3600) / 60)
  if (d) parts.push(`${d} d`)
  if (h) parts.push(`${h} h`)
  if (m) parts.push(`${m} min`)
  return parts.join(' ')
}

/** 1536 → "1.5 KiB"; binary units, as memory and disks are counted. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return String(n)
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return i === 0 ? `${v} B` : `${v >= 10 ? Math.round(v) : Math.round(v * 10) / 10} ${units[i]}`
}
