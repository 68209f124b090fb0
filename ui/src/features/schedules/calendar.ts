import type { Opening } from './types.ts'
import { wallToInstant, zonedParts } from './time.ts'

/*
 * The month grid's arithmetic: six weeks from the Monday on or before the 1st, each day's bounds
 * as instants in the display zone (so a 23- or 25-hour DST day is drawn as the day it is), and
 * which openings overlap each day.
 */

export interface Day {
  /** `2026-05-04` on the zone's calendar. */
  date: string
  dayOfMonth: number
  inMonth: boolean
  start: number
  end: number
}

const pad = (n: number) => String(n).padStart(2, '0')
const DAY = 86_400_000

/** The 42 days of the grid for a month (1–12) of a year, Monday first. */
export function monthGrid(year: number, month: number, zone: string): Day[] {
  const first = Date.UTC(year, month - 1, 1)
  const mondayOffset = (new Date(first).getUTCDay() + 6) % 7
  const days: Day[] = []
  for (let i = 0; i < 42; i++) {
    const d = new Date(first + (i - mondayOffset) * DAY)
    const next = new Date(d.getTime() + DAY)
    const date = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`
    const nextDate = `${next.getUTCFullYear()}-${pad(next.getUTCMonth() + 1)}-${pad(next.getUTCDate())}`
    const start = wallToInstant(`${date}T00:00`, zone)?.getTime() ?? d.getTime()
    const end = wallToInstant(`${nextDate}T00:00`, zone)?.getTime() ?? next.getTime()
    days.push({ date, dayOfMonth: d.getUTCDate(), inMonth: d.getUTCMonth() === month - 1, start, end })
  }
  return days
}

export interface DayEntry {
  opening: Opening
  /** What part of the opening falls in the day: `22:00–24:00`, `00:00–02:00`, `all day`. */
  span: string
  startsBefore: boolean
  endsAfter: boolean
}

/** The openings overlapping a day, each with the slice of it that falls in the day, in the zone. */
export function entriesFor(day: Day, openings: Opening[], zone: string): DayEntry[] {
  const out: DayEntry[] = []
  for (const o of openings) {
    const s = new Date(o.start).getTime()
    const e = new Date(o.end).getTime()
    if (s >= day.end || e <= day.start) continue
    const startsBefore = s < day.start
    const endsAfter = e > day.end
    const from = startsBefore ? '00:00' : zonedParts(o.start, zone).time
    const to = endsAfter ? '24:00' : zonedParts(o.end, zone).time
    out.push({ opening: o, span: startsBefore && endsAfter ? 'all day' : `${from}–${to}`, startsBefore, endsAfter })
  }
  return out
}

/** Today's date on the zone's calendar. */
export function todayIn(zone: string): string {
  return zonedParts(new Date(), zone).date
}

export const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'] as const
