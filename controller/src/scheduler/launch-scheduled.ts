import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import type { Actor } from '../auth/principal.ts'
import type { AppContext } from '../context.ts'
import { describeCause, uuidArray, type Db } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'
import type { JobDefinition } from '../jobs/definition.ts'
import type { JobRow } from '../jobs/jobs.sql.ts'
import { getJobRow, getJobVersion } from '../jobs/service.ts'
import { plannedSteps, WORK_CHANNEL } from '../runs/coordinator.ts'
import { assertLaunchable, resolveRun, runRows, type ResolvedRun, type RunRows } from '../runs/launch.ts'
import { isFinal, planRun, type Attempt } from '../runs/planner.ts'
import { run, runTarget, stepRun, type RunStatus } from '../runs/runs.sql.ts'
import type { ScheduleRow } from './scheduler.sql.ts'
import { scheduleRunRequest } from './service.ts'

/*
 * Launching scheduled runs in batches: the runs of one transaction (a batch of fires, of queued or
 * deferred occurrences, of retries) are checked first — each distinct job read once, each distinct
 * run request resolved once — so a refusal is that occurrence's failure and never aborts the
 * others; then they are written together (multi-row inserts) and started in the same transaction.
 */

/** Rows per multi-row INSERT (well under Postgres' 65,535 bind parameters). */
const INSERT_CHUNK = 1000

export const scheduleActor = (s: Pick<ScheduleRow, 'id' | 'name'>): Actor => ({ type: 'system', id: s.id, name: `schedule:${s.name}` })

interface Prepared {
  version: number
  /** Set when the run can be resolved (also for a disabled job: maintenance windows look at its targets). */
  resolved?: ResolvedRun
  /** Why the run cannot launch now. */
  error?: string
}

interface Job {
  row: JobRow
  version: number
  definition: JobDefinition
}

export interface ScheduledLaunch {
  s: ScheduleRow
  /** A retry of this run of the occurrence. */
  retryOf?: string | undefined
}

/** Inserts rows in chunks; `values` takes a chunk. */
async function insertChunks<T>(rows: T[], insert: (chunk: T[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) await insert(rows.slice(i, i + INSERT_CHUNK))
}

/**
 * One transaction's scheduled launches. Use it from one async flow at a time (its reads share the
 * transaction's connection, and each resolution runs in a savepoint).
 */
export class ScheduledLaunches {
  private readonly jobs = new Map<string, Promise<Job>>()
  private readonly prepared = new Map<string, Promise<Prepared>>()
  /** Selector → target ids, shared by every resolution of the batch. */
  private readonly selectors = new Map<string, string[]>()

  constructor(
    private readonly ctx: AppContext,
    private readonly tx: Db,
  ) {}

  private job(jobId: string): Promise<Job> {
    let job = this.jobs.get(jobId)
    if (!job) {
      job = (async () => {
        const row = await getJobRow(this.tx, jobId)
        return { row, version: row.currentVersion, definition: (await getJobVersion(this.tx, jobId, row.currentVersion)).definition }
      })()
      this.jobs.set(jobId, job)
    }
    return job
  }

  /**
   * The schedule's run as it would launch now (the job's current version, its parameters checked,
   * targets resolved), or why it cannot: the job is deleted or disabled, the parameters or the
   * selection are refused, a sealed parameter no longer opens.
   */
  prepare(s: ScheduleRow): Promise<Prepared> {
    let request: ReturnType<typeof scheduleRunRequest>
    try {
      request = scheduleRunRequest(this.ctx, s)
    } catch (err) {
      return Promise.resolve({ version: 0, error: describeCause(err) })
    }
    const key = `${s.jobId}\n${JSON.stringify(request)}`
    let prepared = this.prepared.get(key)
    if (!prepared) {
      prepared = this.resolve(s.jobId, request)
      this.prepared.set(key, prepared)
    }
    return prepared
  }

  private async resolve(jobId: string, request: ReturnType<typeof scheduleRunRequest>): Promise<Prepared> {
    let job: Job
    try {
      job = await this.job(jobId)
    } catch (err) {
      return { version: 0, error: describeCause(err) }
    }
    let refused: string | undefined
    try {
      assertLaunchable(job.row, 'schedule')
    } catch (err) {
      refused = describeCause(err)
    }
    try {
      // A savepoint: a statement the database refuses must not abort the batch's transaction.
      const resolved = await this.tx.transaction((sp) => resolveRun({ ...this.ctx, db: sp as unknown as Db }, job.definition, request, this.selectors))
      return { version: job.version, resolved, ...(refused ? { error: refused } : {}) }
    } catch (err) {
      return { version: job.version, error: refused ?? describeCause(err) }
    }
  }

  /** The target ids a run of the schedule would touch now ([] when it cannot be resolved: only windows for all targets apply). */
  async targetIds(s: ScheduleRow): Promise<string[]> {
    return (await this.prepare(s)).resolved?.targets.map((t) => t.id) ?? []
  }

  /**
   * Writes runs of prepared schedules (each must have prepared without error) and starts them:
   * the first advance — which step runs are ready, the run `running` — is planned by the run
   * planner as `advanceRun` would, and written with the rows, so the work is claimable at commit.
   * Returns the run ids in order, and those left for the caller to advance after commit.
   */
  async write(launches: ScheduledLaunch[]): Promise<{ runIds: string[]; toStart: string[] }> {
    if (!launches.length) return { runIds: [], toStart: [] }
    const now = this.ctx.clock()
    const all: RunRows[] = []
    const toStart: string[] = []
    const ends: { id: string; status: RunStatus; reason: string }[] = []
    const statuses = new Map<RunStatus, string[]>()
    for (const { s, retryOf } of launches) {
      const p = await this.prepare(s)
      if (!p.resolved || p.error) throw new Error(`schedule ${s.id}: a run that cannot launch was written (${p.error ?? 'unresolved'})`)
      const runId = randomUUID()
      const rows = runRows(this.ctx, p.resolved, { runId, jobId: s.jobId, version: p.version, trigger: 'schedule', retryOf, actor: scheduleActor(s), now })
      all.push(rows)
      // Left to the coordinator: a run its job's concurrency cap holds back, one that must take
      // target locks first, and one that ends at once (its end triggers dependent jobs).
      const decision = firstAdvance(p.resolved.definition, rows, now)
      if (rows.run.admitted === false || p.resolved.definition.lock === 'target' || (decision.runStatus && isFinal(decision.runStatus))) {
        toStart.push(runId)
        continue
      }
      const ready = new Set(decision.ready)
      for (const step of rows.steps) if (ready.has(step.id!)) step.ready = true
      ends.push(...decision.end)
      if (decision.runStatus === 'running' && !decision.end.length) {
        // Written running: its run events start at `running` (there is no moment it was only queued).
        Object.assign(rows.run, { status: 'running', startedAt: now })
      } else if (decision.runStatus) statuses.set(decision.runStatus, [...(statuses.get(decision.runStatus) ?? []), runId])
    }
    const tx = this.tx
    await insertChunks(all.map((r) => r.run), (chunk) => tx.insert(run).values(chunk))
    await insertChunks(all.flatMap((r) => r.targets), (chunk) => tx.insert(runTarget).values(chunk))
    await insertChunks(all.flatMap((r) => r.steps), (chunk) => tx.insert(stepRun).values(chunk))
    // As advanceRun writes it: step runs that end without running, then the runs' new status.
    if (ends.length) {
      const values = ends.map((e) => sql`(${e.id}::uuid, ${e.status}::text, ${e.reason}::text)`)
      await tx.execute(sql`
        update ${stepRun} s set status = v.status, ready = false, error = coalesce(v.error, s.error), finished_at = ${now.toISOString()}::timestamptz
        from (values ${sql.join(values, sql`, `)}) as v(id, status, error)
        where s.id = v.id and s.status = 'queued'`)
    }
    for (const [status, ids] of statuses) {
      const at = sql`${now.toISOString()}::timestamptz`
      await tx.execute(sql`
        update ${run} set status = ${status}, started_at = ${status === 'running' ? at : sql`started_at`}, finished_at = ${isFinal(status) ? at : sql`finished_at`}
        where id = any(${uuidArray(ids)})`)
    }
    if (all.some((r) => r.steps.some((s) => s.ready))) await tx.execute(sql`select pg_notify(${WORK_CHANNEL}, '')`)
    return { runIds: all.map((r) => r.run.id), toStart }
  }
}

/** What advanceRun decides for a run just written: every step run queued, none ready yet. */
function firstAdvance(definition: JobDefinition, rows: RunRows, now: Date) {
  const attempts: Attempt[] = rows.steps.map((s) => ({ id: s.id!, stepIndex: s.stepIndex, targetId: s.targetId ?? null, attempt: 1, status: 'queued', ready: false, finishedAt: null }))
  const positions = new Map(rows.targets.map((t) => [t.targetId, t.position]))
  const fan = definition.fan_out
  return planRun(
    plannedSteps(definition),
    attempts,
    positions,
    { strategy: fan.strategy, maxParallel: fan.max_parallel, failureCount: fan.failure_count, failurePercent: fan.failure_percent, backoffMultiplier: definition.retry.backoff_multiplier },
    now,
    'queued',
  )
}

/** Runs of each schedule still queued or running (a schedule's runs are requested by it). */
export async function activeRunCounts(db: Db, scheduleIds: string[]): Promise<Map<string, number>> {
  if (!scheduleIds.length) return new Map()
  const rows = rowsOf<{ id: string; n: number }>(
    await db.execute(sql`
      select requested_by as id, count(*)::int as n from run
      where status in ('queued', 'running') and trigger = 'schedule' and requested_by = any(${`{${scheduleIds.join(',')}}`}::text[])
      group by requested_by`),
  )
  return new Map(rows.map((r) => [r.id, Number(r.n)]))
}
