/*
 * The cron builder's presets: a few shapes an operator picks from (every N minutes, hourly at,
 * daily at, weekly on days, monthly on a day), turned into a 5-field expression and recognised in
 * one, so editing a schedule opens the builder where it was left. Anything else is "custom": the
 * raw expression, which the server validates (the UI never second-guesses croner's syntax).
 */

export type PresetKind = 'minutes' | 'hourly' | 'daily' | 'weekly' | 'monthly' | 'custom'

export interface Preset {
  kind: PresetKind
  /** minutes: the step (1–59). */
  every: number
  /** hourly: the minute past each hour. */
  minute: number
  /** daily, weekly, monthly: HH:MM. */
  time: string
  /** weekly: 0 (Sunday) … 6 (Saturday). */
  days: number[]
  /** monthly: 1–31. */
  day: number
}

export const PRESET_LABELS: Record<PresetKind, string> = {
  minutes: 'Every N minutes',
  hourly: 'Hourly',
  daily: 'Daily',
  weekly: 'Weekly on days',
  monthly: 'Monthly on a day',
  custom: 'Custom cron expression',
}

export const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const
export const WEEKDAY_NAMES = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const

export const DEFAULT_PRESET: Preset = { kind: 'daily', every: 15, minute: 0, time: '02:00', days: [1, 2, 3, 4, 5], day: 1 }

const pad = (n: number) => String(n).padStart(2, '0')

function hhmm(time: string): [number, number] | null {
  const m = /^([01]?\d|2[0-3]):([0-5]\d)$/.exec(time.trim())
  return m ? [Number(m[1]), Number(m[2])] : null
}

/** The expression a preset stands for; null when a field is not filled in sensibly yet. */
export function presetToCron(p: Preset): string | null {
  switch (p.kind) {
    case 'minutes':
      return Number.isInteger(p.every) && p.every >= 1 && p.every <= 59 ? (p.every === 1 ? '* * * * *' : `*/${p.every} * * * *`) : null
    case 'hourly':
      return Number.isInteger(p.minute) && p.minute >= 0 && p.minute <= 59 ? `${p.minute} * * * *` : null
    case 'daily':
    case 'weekly':
    case 'monthly': {
      const t = hhmm(p.time)
      if (!t) return null
      const [h, m] = t
      if (p.kind === 'daily') return `${m} ${h} * * *`
      if (p.kind === 'weekly') return p.days.length ? `${m} ${h} * * ${[...new Set(p.days)].sort((a, b) => a - b).join(',')}` : null
      return Number.isInteger(p.day) && p.day >= 1 && p.day <= 31 ? `${m} ${h} ${p.day} * *` : null
    }
    case 'custom':
      return null
  }
}

const INT = /^\d{1,2}$/

/** Weekday field → days 0–6 (7 is Sunday too), from numbers, ranges and lists; null for anything else. */
function parseDays(field: string): number[] | null {
  const out = new Set<number>()
  for (const part of field.split(',')) {
    const range = /^(\d)-(\d)$/.exec(part)
    if (range) {
      const [a, b] = [Number(range[1]), Number(range[2])]
      if (a > b || b > 7) return null
      for (let d = a; d <= b; d++) out.add(d % 7)
    } else if (/^\d$/.test(part) && Number(part) <= 7) out.add(Number(part) % 7)
    else return null
  }
  return [...out].sort((a, b) => a - b)
}

/** The preset an expression is, or `custom` (the base carries the other fields' defaults). */
export function cronToPreset(expr: string, base: Preset = DEFAULT_PRESET): Preset {
  const custom = { ...base, kind: 'custom' as const }
  const f = expr.trim().split(/\s+/)
  if (f.length !== 5) return custom
  const [min, hour, dom, month, dow] = f as [string, string, string, string, string]
  if (month !== '*') return custom
  if (hour === '*' && dom === '*' && dow === '*') {
    if (min === '*') return { ...base, kind: 'minutes', every: 1 }
    const step = /^\*\/(\d{1,2})$/.exec(min)
    if (step && Number(step[1]) >= 1 && Number(step[1]) <= 59) return { ...base, kind: 'minutes', every: Number(step[1]) }
    if (INT.test(min) && Number(min) <= 59) return { ...base, kind: 'hourly', minute: Number(min) }
    return custom
  }
  if (!INT.test(min) || !INT.test(hour) || Number(min) > 59 || Number(hour) > 23) return custom
  const time = `${pad(Number(hour))}:${pad(Number(min))}`
  if (dom === '*' && dow === '*') return { ...base, kind: 'daily', time }
  if (dom === '*') {
    const days = parseDays(dow)
    return days ? { ...base, kind: 'weekly', time, days } : custom
  }
  if (dow === '*' && INT.test(dom) && Number(dom) >= 1 && Number(dom) <= 31) return { ...base, kind: 'monthly', time, day: Number(dom) }
  return custom
}

const ordinal = (n: number) => `${n}${n % 10 === 1 && n !== 11 ? 'st' : n % 10 === 2 && n !== 12 ? 'nd' : n % 10 === 3 && n !== 13 ? 'rd' : 'th'}`

/** Plain words for an expression the builder knows ("Every day at 02:30"); null for a custom one. */
export function describeCron(expr: string): string | null {
  const trimmed = expr.trim()
  const named: Record<string, string> = {
    '@hourly': 'Every hour',
    '@daily': 'Every day at 00:00',
    '@midnight': 'Every day at 00:00',
    '@weekly': 'Every Sunday at 00:00',
    '@monthly': 'On the 1st of every month at 00:00',
    '@yearly': 'Every 1 January at 00:00',
    '@annually': 'Every 1 January at 00:00',
  }
  if (named[trimmed.toLowerCase()]) return named[trimmed.toLowerCase()]!
  const p = cronToPreset(trimmed)
  switch (p.kind) {
    case 'minutes':
      return p.every === 1 ? 'Every minute' : `Every ${p.every} minutes`
    case 'hourly':
      return `Every hour at :${pad(p.minute)}`
    case 'daily':
      return `Every day at ${p.time}`
    case 'weekly':
      if (p.days.join() === '1,2,3,4,5') return `Weekdays at ${p.time}`
      if (p.days.length === 7) return `Every day at ${p.time}`
      return `${p.days.map((d) => WEEKDAYS[d]).join(', ')} at ${p.time}`
    case 'monthly':
      return `On the ${ordinal(p.day)} of every month at ${p.time}`
    case 'custom':
      return null
  }
}
