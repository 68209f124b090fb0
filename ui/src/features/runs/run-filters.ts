// The runs list's filters: kept in the URL (so a link or a reload shows the same list) and turned
// into the API's query. No Solid, no DOM.
import { RUN_STATUS_OPTIONS, RUN_TRIGGER_OPTIONS, type RunStatus, type RunTrigger } from './status.ts'

export const RANGES = ['1h', '24h', '7d', '30d', 'custom'] as const
export type Range = (typeof RANGES)[number]
const RANGE_MS: Record<Exclude<Range, 'custom'>, number> = { '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000, '30d': 30 * 86_400_000 }
export const RANGE_LABELS: Record<Range, string> = { '1h': 'Last hour', '24h': 'Last 24 hours', '7d': 'Last 7 days', '30d': 'Last 30 days', custom: 'Custom range' }

export interface RunFilters {
  status?: RunStatus
  job_id?: string
  trigger?: RunTrigger
  requested_by?: string
  range?: Range
  /** `datetime-local` values (local time) for a custom range. */
  from?: string
  to?: string
}

type Params = Partial<Record<string, string | string[] | undefined>>

const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v) || undefined
const pick = <T extends string>(allowed: readonly T[], v: string | undefined) => (v && (allowed as readonly string[]).includes(v) ? (v as T) : undefined)
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const LOCAL_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/

/** The filters a URL names; anything malformed is ignored rather than sent to the API. */
export function filtersFromParams(p: Params): RunFilters {
  const f: RunFilters = {}
  const status = pick(RUN_STATUS_OPTIONS, one(p.status))
  if (status) f.status = status
  const job = one(p.job_id)
  if (job && UUID.test(job)) f.job_id = job
  const trigger = pick(RUN_TRIGGER_OPTIONS, one(p.trigger))
  if (trigger) f.trigger = trigger
  const who = one(p.requested_by)?.trim()
  if (who) f.requested_by = who
  const range = pick(RANGES, one(p.range))
  if (range) f.range = range
  if (range === 'custom') {
    const from = one(p.from)
    const to = one(p.to)
    if (from && LOCAL_TIME.test(from)) f.from = from
    if (to && LOCAL_TIME.test(to)) f.to = to
  }
  return f
}

/** Search params for the router: every key present, unset ones as undefined (so they are removed). */
export function filtersToParams(f: RunFilters): Record<string, string | undefined> {
  return {
    status: f.status,
    job_id: f.job_id,
    trigger: f.trigger,
    requested_by: f.requested_by,
    range: f.range,
    from: f.range === 'custom' ? f.from : undefined,
    to: f.range === 'custom' ? f.to : undefined,
  }
}

export const hasFilters = (f: RunFilters) => Object.values(filtersToParams(f)).some((v) => v !== undefined)

/** The API's query for GET /runs (`since`/`until` as ISO instants). */
export function listQuery(f: RunFilters, now: number): Record<string, string> {
  const q: Record<string, string> = {}
  if (f.status) q.status = f.status
  if (f.job_id) q.job_id = f.job_id
  if (f.trigger) q.trigger = f.trigger
  if (f.requested_by) q.requested_by = f.requested_by
  if (f.range && f.range !== 'custom') q.since = new Date(now - RANGE_MS[f.range]).toISOString()
  if (f.range === 'custom') {
    const from = f.from ? new Date(f.from) : undefined
    const to = f.to ? new Date(f.to) : undefined
    if (from && !Number.isNaN(from.getTime())) q.since = from.toISOString()
    if (to && !Number.isNaN(to.getTime())) q.until = to.toISOString()
  }
  return q
}

/** Whether a run that appeared after the list was loaded belongs in it. */
export function matchesFilters(r: { status: RunStatus; job_id: string; trigger: RunTrigger; requested_by: string | null; created_at: string }, f: RunFilters): boolean {
  if (f.status && r.status !== f.status) return false
  if (f.job_id && r.job_id !== f.job_id) return false
  if (f.trigger && r.trigger !== f.trigger) return false
  if (f.requested_by && r.requested_by !== f.requested_by) return false
  if (f.range === 'custom' && f.to && Date.parse(r.created_at) > new Date(f.to).getTime()) return false
  return true
}
