import { Cron } from 'croner'

/*
 * Cron expressions in an IANA time zone: the one place that turns (cron, zone, start, end) into
 * instants. The API (previews, next_fire_at) and the scheduler engine both call nextFireTimes,
 * so what an operator previews is what fires. DST rules are in ./README.md.
 */

export interface CronSpec {
  cron: string
  timezone: string
  /** First instant a fire may happen at (inclusive). */
  startAt?: Date | null
  /** Last instant a fire may happen at (inclusive). */
  endAt?: Date | null
}

export interface CronProblem {
  path: 'cron' | 'timezone'
  message: string
}

export const PRESETS = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'] as const

/**
 * Croner options shared by validation and evaluation. `no-wildcard` makes every expression without
 * `*` or a step in its second/minute/hour fields a fixed-time job (`30 2,14 * * *` as well as
 * `30 2 * * *`), as Vixie cron does: a fixed time in a DST gap fires once right after the gap,
 * and a fixed time that occurs twice fires once, at its first occurrence.
 */
const OPTIONS = { mode: '5-or-6-parts', fixedTimeRule: 'no-wildcard', paused: true } as const

/** The zone's canonical IANA name (`america/new_york` → `America/New_York`), or undefined if it is not a zone. */
export function canonicalZone(timezone: string): string | undefined {
  if (!timezone || timezone.length > 64) return undefined
  try {
    return new Intl.DateTimeFormat(undefined, { timeZone: timezone }).resolvedOptions().timeZone
  } catch {
    return undefined
  }
}

// The leader computes next fires for many schedules each tick; most share a few expressions. A
// paused Cron given an explicit reference time keeps no state between calls, so sharing is safe.
const COMPILED = new Map<string, Cron>()
const MAX_COMPILED = 2000

function compile(cron: string, timezone: string): Cron {
  const key = `${timezone}\0${cron.trim()}`
  let job = COMPILED.get(key)
  if (!job) {
    job = new Cron(cron.trim(), { ...OPTIONS, timezone })
    if (COMPILED.size >= MAX_COMPILED) COMPILED.delete(COMPILED.keys().next().value!)
    COMPILED.set(key, job)
  }
  return job
}

/** Every problem with a cron expression and a zone (empty: both are good, and the expression fires at least once). */
export function validateCron(cron: string, timezone: string): CronProblem[] {
  const problems: CronProblem[] = []
  const zone = canonicalZone(timezone)
  if (!zone) problems.push({ path: 'timezone', message: `"${timezone}" is not an IANA time zone (e.g. UTC, Europe/Berlin, America/New_York)` })
  const text = cron.trim()
  if (text === '') {
    problems.push({ path: 'cron', message: 'required' })
    return problems
  }
  if (text.length > 200) {
    problems.push({ path: 'cron', message: 'longer than 200 characters' })
    return problems
  }
  // Croner reads anything with a ':' as a one-off date; a schedule is always a recurring expression.
  if (text.includes(':')) {
    problems.push({ path: 'cron', message: 'a cron expression has 5 fields (minute hour day month weekday), 6 with seconds first, or is a preset such as @daily' })
    return problems
  }
  if (text.startsWith('@') && !(PRESETS as readonly string[]).includes(text.toLowerCase())) {
    problems.push({ path: 'cron', message: `unknown preset ${text}; use one of ${PRESETS.join(', ')}` })
    return problems
  }
  let job: Cron
  try {
    job = compile(text, zone ?? 'UTC')
  } catch (err) {
    problems.push({ path: 'cron', message: cronMessage(err) })
    return problems
  }
  // `0 0 30 2 *` parses but never happens: a schedule that can never fire is a mistake.
  if (job.nextRuns(1, new Date()).length === 0) problems.push({ path: 'cron', message: 'this expression never matches a date' })
  return problems
}

function cronMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  return message.replace(/^CronPattern:\s*/, '')
}

/**
 * The next `count` fire times strictly after `after`, within [startAt, endAt], in order.
 * Fewer (or none) when the schedule ends. Throws on an expression or zone validateCron rejects.
 */
export function nextFireTimes(spec: CronSpec, after: Date, count: number): Date[] {
  if (count <= 0) return []
  const job = compile(spec.cron, spec.timezone)
  let from = after
  // Croner's own search is strictly-after; to include a fire exactly at startAt, search from just before it.
  if (spec.startAt && spec.startAt.getTime() > after.getTime()) from = new Date(spec.startAt.getTime() - 1)
  if (spec.endAt && from.getTime() >= spec.endAt.getTime()) return []
  const out: Date[] = []
  for (const at of job.nextRuns(count, from)) {
    if (spec.endAt && at.getTime() > spec.endAt.getTime()) break
    out.push(at)
  }
  return out
}

export interface LocalTime {
  /** `2026-03-08T03:00:00-04:00` */
  local: string
  /** `-04:00` */
  offset: string
  offsetMinutes: number
}

const FORMATS = new Map<string, Intl.DateTimeFormat>()

/** The wall-clock time of an instant in a zone, with its UTC offset. */
export function localTime(at: Date, timezone: string): LocalTime {
  let format = FORMATS.get(timezone)
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone: timezone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
    FORMATS.set(timezone, format)
  }
  const parts: Record<string, string> = {}
  for (const p of format.formatToParts(at)) parts[p.type] = p.value
  const wall = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second))
  const offsetMinutes = Math.round((wall - Math.floor(at.getTime() / 1000) * 1000) / 60_000)
  const abs = Math.abs(offsetMinutes)
  const offset = `${offsetMinutes < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`
  const year = parts.year!.padStart(4, '0')
  return { local: `${year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${offset}`, offset, offsetMinutes }
}

export interface PreviewFire {
  at_utc: string
  at_local: string
  offset: string
}

export function previewFires(spec: CronSpec, after: Date, count: number): PreviewFire[] {
  return nextFireTimes(spec, after, count).map((at) => {
    const local = localTime(at, spec.timezone)
    return { at_utc: at.toISOString(), at_local: local.local, offset: local.offset }
  })
}
