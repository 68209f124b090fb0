import { and, eq, isNull, sql } from 'drizzle-orm'
import type { AppContext } from '../context.ts'
import { uuidArray, type Db } from '../db/client.ts'
import { ValidationError } from '../errors.ts'
import { parseSelector } from '../selectors/parse.ts'
import { selectorCondition } from '../selectors/compile.ts'
import { target, targetGroup } from '../targets/targets.sql.ts'
import { nextFireTimes } from './cron.ts'
import { maintenanceWindow, type MaintenanceWindowRow, type Weekday } from './maintenance.sql.ts'

/*
 * Maintenance windows: when is a window open (pure, DST-correct through Intl), and which open
 * windows cover a run's targets (the database: groups and selectors resolved now).
 */

export interface OpenWindow {
  start: Date
  end: Date
}

const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const satisfies readonly Weekday[]
const DAY_MS = 86_400_000
/** How many cron openings are walked through to find the one containing an instant. */
const MAX_CRON_STEPS = 10_000

const FORMATS = new Map<string, Intl.DateTimeFormat>()
function format(timezone: string): Intl.DateTimeFormat {
  let f = FORMATS.get(timezone)
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: timezone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' })
    FORMATS.set(timezone, f)
  }
  return f
}

/** The wall clock in the zone at an instant, as if it were UTC (ms). */
function wallMs(at: number, timezone: string): number {
  const p: Record<string, number> = {}
  for (const part of format(timezone).formatToParts(new Date(at))) if (part.type !== 'literal') p[part.type] = Number(part.value)
  return Date.UTC(p.year!, p.month! - 1, p.day!, p.hour! % 24, p.minute!, p.second!)
}

const offsetAt = (at: number, timezone: string) => wallMs(at, timezone) - Math.floor(at / 1000) * 1000

/**
 * The instant a wall-clock time (given as if UTC) names in the zone, like Temporal's `compatible`:
 * a time that occurs twice is its first occurrence; a time in a spring-forward gap is read with the
 * offset before the gap (02:30 on the New York spring-forward day → 03:30 EDT).
 */
function zonedInstant(wall: number, timezone: string): number {
  const before = offsetAt(wall - DAY_MS, timezone)
  const after = offsetAt(wall + DAY_MS, timezone)
  const valid = [wall - before, wall - after].filter((c) => wallMs(c, timezone) === wall)
  return valid.length ? Math.min(...valid) : wall - before
}

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5))

/** The weekly ranges that start on one wall-clock day (midnight as wall-clock ms), as instants; an end at or before the start is the next day's. */
function rangesStartingOn(w: MaintenanceWindowRow, day: number): [start: number, end: number][] {
  const weekday = WEEKDAYS[new Date(day).getUTCDay()]!
  return (w.ranges ?? [])
    .filter((r) => r.days.includes(weekday))
    .map((r) => {
      const startMin = minutesOf(r.start)
      const endMin = minutesOf(r.end)
      return [zonedInstant(day + startMin * 60_000, w.timezone), zonedInstant(day + (endMin <= startMin ? DAY_MS : 0) + endMin * 60_000, w.timezone)]
    })
}

function weeklyOpening(w: MaintenanceWindowRow, at: number): OpenWindow | null {
  const today = Math.floor(wallMs(at, w.timezone) / DAY_MS) * DAY_MS
  let best: OpenWindow | null = null
  // A range that started yesterday may still be open (it ends past midnight).
  for (const day of [today - DAY_MS, today]) {
    for (const [start, end] of rangesStartingOn(w, day)) {
      if (start <= at && at < end && (!best || end > best.end.getTime())) best = { start: new Date(start), end: new Date(end) }
    }
  }
  return best
}

function cronOpening(w: MaintenanceWindowRow, at: number): OpenWindow | null {
  if (!w.cron || !w.durationSec) return null
  const duration = w.durationSec * 1000
  // Openings strictly after at - duration still open at `at`; the latest one ends last.
  let from = new Date(at - duration)
  let open: number | null = null
  for (let steps = 0; steps < MAX_CRON_STEPS; steps += 64) {
    const fires = nextFireTimes({ cron: w.cron, timezone: w.timezone }, from, 64)
    for (const f of fires) {
      if (f.getTime() > at) return open === null ? null : { start: new Date(open), end: new Date(open + duration) }
      open = f.getTime()
    }
    if (fires.length < 64) break
    from = fires.at(-1)!
  }
  return open === null ? null : { start: new Date(open), end: new Date(open + duration) }
}

/** The opening of the window that contains `at` (start inclusive, end exclusive), or null. Ignores enabled/deleted. */
export function activeWindowAt(w: MaintenanceWindowRow, at: Date): OpenWindow | null {
  const t = at.getTime()
  switch (w.kind) {
    case 'one_off':
      return w.startsAt && w.endsAt && w.startsAt.getTime() <= t && t < w.endsAt.getTime() ? { start: w.startsAt, end: w.endsAt } : null
    case 'cron':
      return cronOpening(w, t)
    case 'weekly':
      return weeklyOpening(w, t)
  }
}

/** At most this many openings of one window in one listing (a every-minute cron window over a month is 44,640). */
export const MAX_OPENINGS = 1000

export interface Openings {
  openings: OpenWindow[]
  /** More openings fall in the range than MAX_OPENINGS. */
  truncated: boolean
}

/**
 * Every opening of the window that overlaps [from, to), in order of start — what a calendar
 * shows. The same rules as activeWindowAt (DST through Intl, `compatible` wall-clock reading),
 * so a day drawn open is a day the scheduler treats as open. Ignores enabled/deleted.
 */
export function openingsBetween(w: MaintenanceWindowRow, from: Date, to: Date, max = MAX_OPENINGS): Openings {
  const lo = from.getTime()
  const hi = to.getTime()
  const out: OpenWindow[] = []
  const add = (start: number, end: number) => {
    if (start < hi && end > lo) out.push({ start: new Date(start), end: new Date(end) })
  }
  switch (w.kind) {
    case 'one_off':
      if (w.startsAt && w.endsAt) add(w.startsAt.getTime(), w.endsAt.getTime())
      break
    case 'cron': {
      if (!w.cron || !w.durationSec) break
      const duration = w.durationSec * 1000
      // An opening that started up to `duration` before `from` still overlaps it.
      let after = new Date(lo - duration)
      for (;;) {
        const fires = nextFireTimes({ cron: w.cron, timezone: w.timezone }, after, 128)
        for (const f of fires) {
          if (f.getTime() >= hi) return { openings: out, truncated: false }
          add(f.getTime(), f.getTime() + duration)
          if (out.length > max) return { openings: out.slice(0, max), truncated: true }
        }
        if (fires.length < 128) break
        after = fires.at(-1)!
      }
      break
    }
    case 'weekly': {
      // Wall-clock days from the day before `from` (a range may run past midnight) to the day of `to`.
      const first = Math.floor(wallMs(lo, w.timezone) / DAY_MS) * DAY_MS - DAY_MS
      const last = Math.floor(wallMs(hi, w.timezone) / DAY_MS) * DAY_MS
      for (let day = first; day <= last; day += DAY_MS) {
        for (const [start, end] of rangesStartingOn(w, day)) add(start, end)
        if (out.length > max) break
      }
      out.sort((a, b) => a.start.getTime() - b.start.getTime())
      if (out.length > max) return { openings: out.slice(0, max), truncated: true }
      break
    }
  }
  return { openings: out, truncated: false }
}

export interface ActiveWindow {
  window: MaintenanceWindowRow
  open: OpenWindow
}

/** Enabled, live windows open at `at`. */
export async function activeWindows(db: Db, at: Date): Promise<ActiveWindow[]> {
  const rows = await db
    .select()
    .from(maintenanceWindow)
    .where(and(eq(maintenanceWindow.enabled, true), isNull(maintenanceWindow.deletedAt)))
  const out: ActiveWindow[] = []
  for (const window of rows) {
    const open = activeWindowAt(window, at)
    if (open) out.push({ window, open })
  }
  return out
}

/** Whether a window's applies_to selects any of the ids (groups and selectors resolved now, disabled targets included). */
async function coversAny(db: Db, w: MaintenanceWindowRow, ids: string[]): Promise<boolean> {
  const scope = w.appliesTo
  if (scope === 'all') return true
  if (!ids.length) return false
  if (scope.target_ids?.some((id) => ids.includes(id.toLowerCase()))) return true
  const selectors: string[] = []
  if (scope.groups?.length) {
    const groups = await db.select({ name: targetGroup.name }).from(targetGroup).where(sql`${targetGroup.id} = any(${uuidArray(scope.groups)})`)
    selectors.push(...groups.map((g) => `group:${JSON.stringify(g.name)}`))
  }
  if (scope.selector) selectors.push(scope.selector)
  for (const selector of selectors) {
    const where = await selectorCondition(db, parseSelector(selector), { includeDisabled: true })
    const [hit] = await db
      .select({ id: target.id })
      .from(target)
      .where(and(where, sql`${target.id} = any(${uuidArray(ids)})`))
      .limit(1)
    if (hit) return true
  }
  return false
}

/**
 * The windows open at `at` that cover a run on these targets: those applying to all targets, or
 * to any of them. `'all'` stands for a run on every target, which every open window covers.
 * `open` may be given when the caller already listed the open windows.
 */
export async function windowsCovering(ctx: Pick<AppContext, 'db'>, targetIds: string[] | 'all', at: Date, open?: ActiveWindow[]): Promise<ActiveWindow[]> {
  const candidates = open ?? (await activeWindows(ctx.db, at))
  if (targetIds === 'all') return candidates
  const ids = targetIds.map((id) => id.toLowerCase())
  const out: ActiveWindow[] = []
  for (const c of candidates) {
    try {
      if (await coversAny(ctx.db, c.window, ids)) out.push(c)
    } catch (err) {
      // A selector naming a group deleted since covers nothing; anything else is real trouble.
      if (!(err instanceof ValidationError)) throw err
    }
  }
  return out
}
