// Pure presentation rules for the dashboard: no Solid, no DOM, so node:test can cover them.

import type { RunStatus } from '../../../../controller/src/runs/runs.sql.ts'
import type { Tone } from '../../components/badge.tsx'

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

// ---- runs -------------------------------------------------------------------------------------


const RUN_STATUS_VIEW: Record<RunStatus, { label: string; tone: Tone }> = {
  running: { label: 'Running', tone: 'active' },
  queued: { label: 'Queued', tone: 'neutral' },
  succeeded: { label: 'Succeeded', tone: 'good' },
  failed: { label: 'Failed', tone: 'bad' },
  timed_out: { label: 'Timed out', tone: 'bad' },
  agent_lost: { label: 'Agent lost', tone: 'bad' },
  system_error: { label: 'System error', tone: 'bad' },
  interrupted: { label: 'Interrupted', tone: 'bad' },
  cancelled: { label: 'Cancelled', tone: 'neutral' },
  skipped: { label: 'Skipped', tone: 'neutral' },
}

/** The order the dashboard lists statuses in: what is happening, then outcomes good to bad to neutral. */
export const RUN_STATUS_ORDER = Object.keys(RUN_STATUS_VIEW) as RunStatus[]

export function runStatusView(status: RunStatus): { label: string; tone: Tone } {
  return RUN_STATUS_VIEW[status] ?? { label: status, tone: 'neutral' }
}

export interface StatusBar {
  status: RunStatus
  label: string
  tone: Tone
  count: number
  /** Bar length as a percentage of the largest count (a non-zero count shows at least a sliver). */
  width: number
}

/**
 * One bar per status to show: succeeded and failed always (a zero is news too), the others when
 * they happened.
 */
export function statusBars(byStatus: Partial<Record<RunStatus, number>>): StatusBar[] {
  const max = Math.max(0, ...RUN_STATUS_ORDER.map((s) => byStatus[s] ?? 0))
  return RUN_STATUS_ORDER.filter((s) => (byStatus[s] ?? 0) > 0 || s === 'succeeded' || s === 'failed').map((status) => {
    const count = byStatus[status] ?? 0
    const { label, tone } = runStatusView(status)
    return { status, label, tone, count, width: max === 0 ? 0 : Math.max(count > 0 ? 2 : 0, Math.round((count / max) * 100)) }
  })
}

// ---- schedules --------------------------------------------------------------------------------

export interface NextFire {
  id: string
  name: string
  job_id: string
  job_name: string | null
  next_fire_at: string
  timezone: string
}

/** The soonest `count` fires among schedules that have one, soonest first. */
export function nextFires(items: readonly { id: string; name: string; job_id: string; job_name?: string | null; next_fire_at: string | null; timezone: string }[], count: number): NextFire[] {
  return items
    .filter((s): s is typeof s & { next_fire_at: string } => s.next_fire_at !== null)
    .map((s) => ({ id: s.id, name: s.name, job_id: s.job_id, job_name: s.job_name ?? null, next_fire_at: s.next_fire_at, timezone: s.timezone }))
    .sort((a, b) => Date.parse(a.next_fire_at) - Date.parse(b.next_fire_at) || a.name.localeCompare(b.name))
    .slice(0, count)
}
