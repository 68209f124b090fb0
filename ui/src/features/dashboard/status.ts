// Pure presentation rules for the dashboard: no Solid, no DOM, so node:test can cover them.

export type Tone = 'good' | 'bad' | 'neutral'

export interface ReadinessInput {
  status: 'ready' | 'not_ready'
  checks: Record<string, string>
}

export interface CheckView {
  name: string
  ok: boolean
  /** `ok`, or why the check failed, as the controller worded it. */
  detail: string
}

export interface ReadinessView {
  label: string
  tone: Tone
  checks: CheckView[]
}

const CHECK_LABELS: Record<string, string> = { database: 'Database', migrations: 'Migrations' }

export function readinessView(report: ReadinessInput): ReadinessView {
  const checks = Object.entries(report.checks).map(([key, detail]) => ({
    name: CHECK_LABELS[key] ?? key,
    ok: detail === 'ok',
    detail,
  }))
  return report.status === 'ready'
    ? { label: 'Ready', tone: 'good', checks }
    : { label: 'Not ready', tone: 'bad', checks }
}

export function databaseLabel(kind: 'postgres' | 'pglite'): string {
  switch (kind) {
    case 'postgres':
      return 'PostgreSQL'
    case 'pglite':
      return 'Embedded PGlite'
    default:
      return assertNever(kind)
  }
}

const UNITS = [
  ['d', 86_400],
  ['h', 3_600],
  ['m', 60],
  ['s', 1],
] as const

/** "3d 4h", "12m 5s": the two largest non-zero units. A start time in the future (clock skew) reads "0s". */
export function formatUptime(startedAt: string | Date, now: Date): string {
  const start = typeof startedAt === 'string' ? new Date(startedAt) : startedAt
  if (Number.isNaN(start.getTime())) throw new RangeError(`not a valid start time: ${String(startedAt)}`)
  let seconds = Math.max(0, Math.floor((now.getTime() - start.getTime()) / 1000))
  const parts: string[] = []
  for (const [unit, size] of UNITS) {
    const n = Math.floor(seconds / size)
    seconds -= n * size
    if (n > 0 || parts.length > 0) parts.push(`${n}${unit}`)
    if (parts.length === 2) break
  }
  return parts.length === 0 ? '0s' : parts.join(' ')
}

function assertNever(value: never): never {
  throw new Error(`unexpected value: ${String(value)}`)
}
