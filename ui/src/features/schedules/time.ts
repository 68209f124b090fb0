/*
 * Dates as operators read them: wall-clock time in a named zone (a schedule's, a window's), with
 * the zone's abbreviation, and how far away it is. The server computes instants; these only print them.
 */

const FORMATS = new Map<string, Intl.DateTimeFormat>()

function formatter(zone: string, withZoneName: boolean): Intl.DateTimeFormat {
  const key = `${zone}\0${withZoneName}`
  let f = FORMATS.get(key)
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      weekday: 'short',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      ...(withZoneName ? { timeZoneName: 'short' as const } : {}),
    })
    FORMATS.set(key, f)
  }
  return f
}

export interface ZonedParts {
  weekday: string
  date: string
  time: string
  zoneName: string
}

/** An instant's wall clock in a zone: `Sun`, `2026-03-08`, `03:00` (`03:00:30` with seconds), `EDT`. */
export function zonedParts(iso: string | Date, zone: string): ZonedParts {
  const d = typeof iso === 'string' ? new Date(iso) : iso
  let parts: Intl.DateTimeFormatPart[]
  try {
    parts = formatter(zone, true).formatToParts(d)
  } catch {
    parts = formatter('UTC', true).formatToParts(d)
  }
  const p: Record<string, string> = {}
  for (const part of parts) p[part.type] = part.value
  const seconds = p.second && p.second !== '00' ? `:${p.second}` : ''
  return { weekday: p.weekday ?? '', date: `${p.year}-${p.month}-${p.day}`, time: `${p.hour}:${p.minute}${seconds}`, zoneName: p.timeZoneName ?? zone }
}

/** `Sun 2026-03-08 03:00 EDT` */
export function formatInZone(iso: string | Date | null | undefined, zone: string): string {
  if (!iso) return '—'
  const z = zonedParts(iso, zone)
  return `${z.weekday} ${z.date} ${z.time} ${z.zoneName}`
}

/** Without the weekday, for tight columns: `2026-03-08 03:00 EDT` */
export function formatShortInZone(iso: string | Date | null | undefined, zone: string): string {
  if (!iso) return '—'
  const z = zonedParts(iso, zone)
  return `${z.date} ${z.time} ${z.zoneName}`
}

/**
 * A wall-clock time as the server gave it (`2026-03-08T03:00:00-04:00`): date, time, the weekday
 * of that date and the offset, without converting anything — so the page shows exactly what the
 * server computed.
 */
export function splitLocal(atLocal: string): { weekday: string; date: string; time: string; offset: string } {
  const m = /^(\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})$/.exec(atLocal)
  if (!m) return { weekday: '', date: atLocal, time: '', offset: '' }
  const [, y, mo, d, h, mi, s, off] = m
  const weekday = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d))).getUTCDay()]!
  return { weekday, date: `${y}-${mo}-${d}`, time: `${h}:${mi}${s === '00' ? '' : `:${s}`}`, offset: off === 'Z' ? '+00:00' : off! }
}

export function browserZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'
  } catch {
    return 'UTC'
  }
}

let zones: string[] | undefined
/** Every IANA zone the browser knows, UTC first. */
export function allZones(): string[] {
  if (!zones) {
    let list: string[] = []
    try {
      list = Intl.supportedValuesOf('timeZone')
    } catch {
      list = []
    }
    zones = ['UTC', ...list.filter((z) => z !== 'UTC')]
  }
  return zones
}

const WALL = new Map<string, Intl.DateTimeFormat>()
/** The wall clock in the zone at an instant, as if it were UTC (ms). */
function wallMs(at: number, zone: string): number {
  let f = WALL.get(zone)
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' })
    WALL.set(zone, f)
  }
  const p: Record<string, number> = {}
  for (const part of f.formatToParts(new Date(at))) if (part.type !== 'literal') p[part.type] = Number(part.value)
  return Date.UTC(p.year!, p.month! - 1, p.day!, p.hour! % 24, p.minute!, p.second!)
}

const DAY = 86_400_000

/**
 * The instant a wall-clock time (`2026-03-08T02:30`, as a datetime-local input gives it) names in
 * a zone: a time that happens twice is its first occurrence, one in a spring-forward gap is read
 * with the offset before the gap (the server's maintenance windows read wall times the same way).
 * Undefined for an unreadable time or zone.
 */
export function wallToInstant(wall: string, zone: string): Date | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(wall)
  if (!m) return undefined
  const w = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0))
  try {
    const offset = (at: number) => wallMs(at, zone) - Math.floor(at / 1000) * 1000
    const valid = [w - offset(w - DAY), w - offset(w + DAY)].filter((c) => wallMs(c, zone) === w)
    return new Date(valid.length ? Math.min(...valid) : w - offset(w - DAY))
  } catch {
    return undefined
  }
}

/** An instant as a datetime-local value (`2026-03-08T03:00`) on the zone's wall clock. */
export function instantToWall(iso: string, zone: string): string {
  try {
    return new Date(wallMs(new Date(iso).getTime(), zone)).toISOString().slice(0, 16)
  } catch {
    return new Date(iso).toISOString().slice(0, 16)
  }
}
