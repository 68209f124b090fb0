import { and, eq, isNull, lte, sql } from 'drizzle-orm'
import type { AppContext } from '../context.ts'
import { rowsOf } from '../db/migrate.ts'
import { advanceRun } from '../runs/coordinator.ts'
import { addCounts, emptyCounts, type FireCounts, type FireOptions } from './counts.ts'
import { fireSchedules } from './fire.ts'
import { createLeadership, type Leadership } from './leader.ts'
import { deferredDue, launchDeferred } from './maintenance-fire.ts'
import { launchQueued } from './queued.ts'
import { retriesDue, retryFailedRuns } from './retry.ts'
import { schedule, schedulerState } from './scheduler.sql.ts'
import { settledWithin } from '../wait.ts'

const STOP_WAIT_MS = 5_000

/*
 * The scheduler loop every controller runs: followers try for the leadership every few seconds;
 * the leader ticks. A tick fires every due schedule, launches queued occurrences that have
 * capacity again and deferred ones whose maintenance window has ended, retries failed scheduled
 * runs, then records what it saw in scheduler_state. While the cluster is paused a tick only
 * counts what is due. Each step works in batches: one transaction decides and launches up to
 * `fireBatch` schedules (or occurrences), `parallel` batches at a time.
 */

/** Schedules (or occurrences) per transaction, unless TickOptions says otherwise. */
const FIRE_BATCH = 100
/** Deferred occurrences and retries looked at per tick. */
const WAITING_PER_TICK = 500

export interface TickOptions extends FireOptions {
  /** Due schedules read per query. */
  batchSize: number
  /** Batches fired at once (each in its own transaction). */
  parallel: number
  /** Schedules decided and launched per transaction (default 100). */
  fireBatch?: number
  /**
   * The schedules with queued occurrences, kept by the leader between ticks (seeded by
   * queuedSchedules when it takes over) so a tick does not search every fire for them.
   */
  queuedHint?: Set<string>
}

export interface TickResult extends Omit<FireCounts, 'toStart' | 'queuedSchedules' | 'drainedSchedules'> {
  paused: boolean
  /** Schedules due when the tick began. */
  due: number
  durationMs: number
}

async function countDue(ctx: AppContext, now: Date): Promise<number> {
  const [row] = await ctx.db
    .select({ n: sql<number>`count(*)::int` })
    .from(schedule)
    .where(and(eq(schedule.enabled, true), isNull(schedule.deletedAt), lte(schedule.nextFireAt, now)))
  return Number(row?.n ?? 0)
}

/** Due schedule ids after a (next_fire_at, id) cursor: one locked by a racing tick is passed over, not spun on. */
async function dueBatch(ctx: AppContext, now: Date, after: { at: Date; id: string } | undefined, limit: number): Promise<{ id: string; at: Date }[]> {
  const rows = rowsOf<{ id: string; at: Date | string }>(
    await ctx.db.execute(sql`
      select id, next_fire_at as at from schedule
      where enabled and deleted_at is null and next_fire_at <= ${now.toISOString()}::timestamptz
        ${after ? sql`and (next_fire_at, id) > (${after.at.toISOString()}::timestamptz, ${after.id}::uuid)` : sql``}
      order by next_fire_at, id limit ${limit}`),
  )
  return rows.map((r) => ({ id: r.id, at: new Date(r.at) }))
}

/** Every schedule with an occurrence waiting for capacity (one scan, when a controller starts leading). */
export async function queuedSchedules(ctx: AppContext): Promise<Set<string>> {
  const rows = rowsOf<{ id: string }>(await ctx.db.execute(sql`select distinct schedule_id as id from schedule_fire where status = 'queued'`))
  return new Set(rows.map((r) => r.id))
}

async function inParallel<T>(items: T[], parallel: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, items.length)) }, worker))
}

/** Splits ids into at most `size` per batch, and into at least `parallel` batches when there are enough. */
function batchesOf(ids: string[], size: number, parallel: number): string[][] {
  const per = Math.max(1, Math.min(size, Math.ceil(ids.length / Math.max(1, parallel))))
  const out: string[][] = []
  for (let i = 0; i < ids.length; i += per) out.push(ids.slice(i, i + per))
  return out
}

type BatchFn = (ctx: AppContext, ids: string[], opts: FireOptions) => Promise<FireCounts>

/**
 * Runs one batch; if its transaction fails (a lost connection, a bug), each of its ids is tried
 * again on its own, so one schedule's trouble never stops the others firing.
 */
async function runBatch(ctx: AppContext, fn: BatchFn, ids: string[], opts: FireOptions, into: FireCounts): Promise<void> {
  try {
    addCounts(into, await fn(ctx, ids, opts))
  } catch (err) {
    if (ids.length === 1) {
      ctx.log.error({ err, id: ids[0], step: fn.name }, 'scheduler.fire_failed')
      return
    }
    ctx.log.warn({ err, count: ids.length, step: fn.name }, 'scheduler.batch_failed')
    for (const id of ids) await runBatch(ctx, fn, [id], opts, into)
  }
}

/**
 * Advances runs after their launch committed, for those their launch did not start (see
 * ScheduledLaunches.write): their first steps start now rather than at the engine's next sweep.
 */
async function startRuns(ctx: AppContext, runIds: string[], parallel: number): Promise<void> {
  await inParallel(runIds, parallel, (runId) => advanceRun(ctx, runId).then(
    () => {},
    (err) => ctx.log.warn({ err, runId }, 'scheduler.advance_failed'),
  ))
}

/** One pass of the leader. Safe to run concurrently with another (the fire key and row locks keep it exactly once). */
export async function tickScheduler(ctx: AppContext, opts: TickOptions): Promise<TickResult> {
  const started = performance.now()
  const now = ctx.clock()
  const [state] = await ctx.db.select({ paused: schedulerState.paused }).from(schedulerState).where(eq(schedulerState.id, 1))
  const due = await countDue(ctx, now)
  const counts = emptyCounts()
  const paused = Boolean(state?.paused)
  if (!paused) {
    const queued = opts.queuedHint ?? (await queuedSchedules(ctx))
    const size = opts.fireBatch ?? FIRE_BATCH
    const step = async (fn: BatchFn, ids: string[]) => {
      const part = emptyCounts()
      await inParallel(batchesOf(ids, size, opts.parallel), opts.parallel, (batch) => runBatch(ctx, fn, batch, opts, part))
      addCounts(counts, part)
      return part
    }
    let cursor: { at: Date; id: string } | undefined
    for (;;) {
      const batch = await dueBatch(ctx, now, cursor, opts.batchSize)
      await step(fireSchedules, batch.map((b) => b.id))
      if (batch.length < opts.batchSize) break
      cursor = batch.at(-1)
    }
    for (const id of counts.queuedSchedules) queued.add(id)
    const drained = await step(launchQueued, [...queued])
    for (const id of drained.drainedSchedules) queued.delete(id)
    for (const [find, fn] of [[deferredDue, launchDeferred], [retriesDue, retryFailedRuns]] as const) {
      try {
        await step(fn, await find(ctx, now, WAITING_PER_TICK))
      } catch (err) {
        ctx.log.error({ err, step: fn.name }, 'scheduler.step_failed')
      }
    }
    await startRuns(ctx, counts.toStart, opts.parallel)
  }
  await ctx.db
    .update(schedulerState)
    .set({ lastTickAt: now, dueCount: due, lagMs: counts.fired ? counts.maxLagMs : 0 })
    .where(eq(schedulerState.id, 1))
  const { toStart: _s, queuedSchedules: _q, drainedSchedules: _d, ...totals } = counts
  return { ...totals, paused, due, durationMs: performance.now() - started }
}

export interface SchedulerOptions extends Omit<TickOptions, 'node'> {
  tickMs: number
  /** How often a follower tries to become the leader. */
  leaderRetryMs: number
}

/** The per-controller scheduler: leadership plus the leader's tick loop. */
export class Scheduler {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private stopped = false
  private leading = false
  private queued: Set<string> | undefined
  private readonly leadership: Leadership
  private readonly log: AppContext['log']

  constructor(
    private readonly ctx: AppContext,
    private readonly opts: SchedulerOptions,
    leadership?: Leadership,
  ) {
    this.log = ctx.log.child({ component: 'scheduler' })
    this.leadership = leadership ?? createLeadership(ctx.database, this.log)
  }

  get isLeader(): boolean {
    return this.leading
  }

  start(): void {
    this.schedule(0)
  }

  private schedule(ms: number): void {
    if (this.stopped) return
    this.timer = setTimeout(() => {
      this.running = this.step().finally(() => (this.running = undefined))
    }, ms)
    this.timer.unref()
  }

  private async step(): Promise<void> {
    const started = Date.now()
    try {
      if (!(await this.lead())) return this.schedule(this.opts.leaderRetryMs)
      // Seeded once per leadership: another leader may have queued occurrences meanwhile.
      this.queued ??= await queuedSchedules(this.ctx)
      const result = await tickScheduler(this.ctx, { ...this.opts, node: this.ctx.nodeId, queuedHint: this.queued })
      if (result.fired + result.missed + result.skipped + result.queued + result.deferred + result.failed + result.duplicate > 0) {
        this.log.info({ ...result, durationMs: Math.round(result.durationMs) }, 'scheduler.tick')
      }
    } catch (err) {
      this.log.warn({ err }, 'scheduler.tick_failed')
    }
    this.schedule(Math.max(0, this.opts.tickMs - (Date.now() - started)))
  }

  /** True while this controller leads: takes the lock when free, notices when it was lost. */
  private async lead(): Promise<boolean> {
    if (this.leading) {
      if (await this.leadership.holds()) return true
      this.leading = false
      this.log.warn('scheduler.leadership_lost')
    }
    if (this.stopped || !(await this.leadership.acquire())) return false
    this.leading = true
    this.queued = undefined
    const now = this.ctx.clock()
    await this.ctx.db.update(schedulerState).set({ leaderNode: this.ctx.nodeId, leaderSince: now }).where(eq(schedulerState.id, 1))
    this.log.info({ node: this.ctx.nodeId }, 'scheduler.leading')
    return true
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    // A tick stuck on a vanished database is abandoned: fires are exactly-once whoever finishes them.
    if (!(await settledWithin(STOP_WAIT_MS, this.running))) this.log.warn({ waitedMs: STOP_WAIT_MS }, 'scheduler.stop_abandoned_tick')
    if (this.leading) {
      this.leading = false
      await this.ctx.db
        .update(schedulerState)
        .set({ leaderNode: null, leaderSince: null })
        .where(and(eq(schedulerState.id, 1), eq(schedulerState.leaderNode, this.ctx.nodeId)))
        .catch((err) => this.log.warn({ err }, 'scheduler.release_failed'))
    }
    await this.leadership.release()
  }
}
