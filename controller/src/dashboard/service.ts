import { and, asc, desc, gt, inArray, lte, sql } from 'drizzle-orm'
import { z } from 'zod'
import type { AppContext } from '../context.ts'
import { uuidArray } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'
import { job } from '../jobs/jobs.sql.ts'
import { run, RUN_STATUSES, type RunStatus, type RunTrigger } from '../runs/runs.sql.ts'

/*
 * What the dashboard shows, each in one query so a wall screen polling every few seconds stays
 * cheap with a big history: counts of recent runs, the runs in flight with their progress, and
 * the jobs whose latest run failed.
 */

/** Outcomes that mean the work did not get done (cancelled and skipped are someone's choice). */
export const FAILED_RUN_STATUSES = ['failed', 'timed_out', 'agent_lost', 'system_error', 'interrupted'] as const satisfies readonly RunStatus[]
const ACTIVE: readonly RunStatus[] = ['queued', 'running']
const HOUR_MS = 3_600_000

export const RunStatsQuery = z.object({ hours: z.coerce.number().int().min(1).max(168).default(24) })

export interface RunStatsBucket {
  /** Start of the hour-long bucket (buckets end at `until`, newest last). */
  start: string
  total: number
  succeeded: number
  failed: number
  /** Queued, running, cancelled, skipped. */
  other: number
}

export interface RunStatsDto {
  since: string
  until: string
  hours: number
  total: number
  /** Every run status, zero when none: runs created in the window by their current status. */
  by_status: Record<RunStatus, number>
  hourly: RunStatsBucket[]
}

/** Runs created in the last `hours`, by status and by hour. */
export async function runStats(ctx: AppContext, hours: number): Promise<RunStatsDto> {
  const until = ctx.clock()
  const since = new Date(until.getTime() - hours * HOUR_MS)
  const ago = sql<number>`floor(extract(epoch from (${until.toISOString()}::timestamptz - ${run.createdAt})) / 3600)::int`
  const rows = await ctx.db
    .select({ status: run.status, ago, n: sql<number>`count(*)::int` })
    .from(run)
    .where(and(gt(run.createdAt, since), lte(run.createdAt, until)))
    .groupBy(sql.raw('1'), sql.raw('2'))
  const byStatus = Object.fromEntries(RUN_STATUSES.map((s) => [s, 0])) as Record<RunStatus, number>
  const hourly: RunStatsBucket[] = Array.from({ length: hours }, (_, i) => ({
    start: new Date(until.getTime() - (hours - i) * HOUR_MS).toISOString(),
    total: 0,
    succeeded: 0,
    failed: 0,
    other: 0,
  }))
  let total = 0
  for (const r of rows) {
    const n = Number(r.n)
    total += n
    byStatus[r.status] = (byStatus[r.status] ?? 0) + n
    const bucket = hourly[Math.min(hours - 1, Math.max(0, hours - 1 - Number(r.ago)))]!
    bucket.total += n
    if (r.status === 'succeeded') bucket.succeeded += n
    else if ((FAILED_RUN_STATUSES as readonly string[]).includes(r.status)) bucket.failed += n
    else bucket.other += n
  }
  return { since: since.toISOString(), until: until.toISOString(), hours, total, by_status: byStatus, hourly }
}

export const ActiveRunsQuery = z.object({ limit: z.coerce.number().int().min(1).max(100).default(20) })

export interface ActiveRunDto {
  id: string
  job_id: string
  job_name: string
  status: RunStatus
  trigger: RunTrigger
  /** `job_concurrency` or `target_lock` while a queued run waits for its turn. */
  waiting_for: string | null
  requested_by: string | null
  created_at: string
  started_at: string | null
  target_count: number
  /** Steps × targets of the run (each counted once, whatever its attempts). */
  steps_total: number
  /** Of those, how many have ended (their latest attempt), and how many of them ended badly. */
  steps_done: number
  steps_failed: number
  steps_running: number
}

export interface ActiveRunsDto {
  running: number
  queued: number
  /** Running runs (newest start first), then queued ones (oldest first), up to `limit`. */
  items: ActiveRunDto[]
}

export async function activeRuns(ctx: AppContext, limit: number): Promise<ActiveRunsDto> {
  const [counts] = await ctx.db
    .select({
      running: sql<number>`count(*) filter (where ${run.status} = 'running')::int`,
      queued: sql<number>`count(*) filter (where ${run.status} = 'queued')::int`,
    })
    .from(run)
    .where(inArray(run.status, ACTIVE as RunStatus[]))
  const running = await ctx.db.select().from(run).where(sql`${run.status} = 'running'`).orderBy(desc(run.startedAt), desc(run.id)).limit(limit)
  const queued =
    running.length < limit ? await ctx.db.select().from(run).where(sql`${run.status} = 'queued'`).orderBy(asc(run.createdAt), asc(run.id)).limit(limit - running.length) : []
  const rows = [...running, ...queued]
  const progress = new Map<string, { total: number; done: number; failed: number; running: number }>()
  if (rows.length > 0) {
    const failed = sql.raw(FAILED_RUN_STATUSES.map((s) => `'${s}'`).join(', '))
    // The latest attempt of every (target, step) lane; DISTINCT ON groups a null target as one lane.
    const result = await ctx.db.execute(sql`
      select run_id,
        count(*)::int as total,
        count(*) filter (where status not in ('queued', 'running'))::int as done,
        count(*) filter (where status in (${failed}))::int as failed,
        count(*) filter (where status = 'running')::int as running
      from (
        select distinct on (run_id, target_id, step_index) run_id, status
        from step_run
        where run_id = any(${uuidArray(rows.map((r) => r.id))})
        order by run_id, target_id, step_index, attempt desc
      ) lanes
      group by run_id`)
    for (const p of rowsOf<{ run_id: string; total: number; done: number; failed: number; running: number }>(result)) {
      progress.set(p.run_id, { total: Number(p.total), done: Number(p.done), failed: Number(p.failed), running: Number(p.running) })
    }
  }
  return {
    running: Number(counts?.running ?? 0),
    queued: Number(counts?.queued ?? 0),
    items: rows.map((r) => {
      const p = progress.get(r.id) ?? { total: 0, done: 0, failed: 0, running: 0 }
      return {
        id: r.id,
        job_id: r.jobId,
        job_name: r.jobName,
        status: r.status,
        trigger: r.trigger,
        waiting_for: r.waitingFor,
        requested_by: r.requestedByName,
        created_at: r.createdAt.toISOString(),
        started_at: r.startedAt?.toISOString() ?? null,
        target_count: r.targetCount,
        steps_total: p.total,
        steps_done: p.done,
        steps_failed: p.failed,
        steps_running: p.running,
      }
    }),
  }
}

export const FailingJobsQuery = z.object({ limit: z.coerce.number().int().min(1).max(100).default(20) })

export interface FailingJobDto {
  job_id: string
  job_name: string
  /** The job's latest finished run, which failed. */
  run_id: string
  status: RunStatus
  finished_at: string | null
  /** Why: the run's own error, or else its first failed step's. */
  error: string | null
}

export interface FailingJobsDto {
  /** Jobs (not deleted) whose latest finished run failed. */
  total: number
  /** The most recently failed first, up to `limit`. */
  items: FailingJobDto[]
}

/**
 * A job is failing when its latest finished run (queued, running and skipped runs do not count)
 * ended in a failure. One index probe per job on (job_id, created_at).
 */
export async function failingJobs(ctx: AppContext, limit: number): Promise<FailingJobsDto> {
  const failed = sql.raw(FAILED_RUN_STATUSES.map((s) => `'${s}'`).join(', '))
  const result = await ctx.db.execute(sql`
    select ${job.id} as job_id, ${job.name} as job_name, latest.id as run_id, latest.status, latest.finished_at,
      coalesce(latest.error, (
        select s.error from step_run s
        where s.run_id = latest.id and s.status in (${failed}) and s.error is not null
        order by s.step_index, s.attempt desc
        limit 1
      )) as error,
      count(*) over ()::int as total
    from ${job}
    cross join lateral (
      select r.id, r.status, r.finished_at, r.error
      from run r
      where r.job_id = ${job.id} and r.status not in ('queued', 'running', 'skipped')
      order by r.created_at desc
      limit 1
    ) latest
    where ${job.deletedAt} is null and latest.status in (${failed})
    order by latest.finished_at desc nulls last, ${job.id}
    limit ${limit}`)
  const rows = rowsOf<{ job_id: string; job_name: string; run_id: string; status: RunStatus; finished_at: Date | string | null; error: string | null; total: number }>(result)
  const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString())
  return {
    total: Number(rows[0]?.total ?? 0),
    items: rows.map((r) => ({ job_id: r.job_id, job_name: r.job_name, run_id: r.run_id, status: r.status, finished_at: iso(r.finished_at), error: r.error })),
  }
}
