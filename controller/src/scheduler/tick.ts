import { and, eq, isNull, lte, sql } from 'drizzle-orm'
import type { AppContext } from '../context.ts'
import { rowsOf } from '../db/migrate.ts'
import { addCounts, emptyCounts, fireSchedule, launchDeferred, launchQueued, retryFailedRuns, startRuns, type FireCounts, type FireOptions } from './fire.ts'
import { createLeadership, type Leadership } from './leader.ts'
import { schedule, schedulerState } from './scheduler.sql.ts'

/*
 * The scheduler loop every controller runs: followers try for the leadership every few seconds;
 * the leader ticks. A tick fires every due schedule (batches, a few at a time), launches queued
 * occurrences that have capacity again and retries failed scheduled runs, then records what it
 * saw in scheduler_state. While the cluster is paused a tick only counts what is due.
 */

export interface TickOptions extends FireOptions {
  /** Due schedules read per query. */
  batchSize: number
  /** Schedules fired at once (each in its own transaction). */
  parallel: number
  /**
   * The schedules with queued occurrences, kept by the leader between ticks (seeded by
   * queuedSchedules when it takes over) so a tick does not search every fire for them.
   */
  queuedHint?: Set<string>
}

export interface TickResult extends Omit<FireCounts, 'launched'> {
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
    const fire = async (scheduleId: string, fn: typeof fireSchedule) => {
      try {
        const result = await fn(ctx, scheduleId, opts)
        if (result.queued) queued.add(scheduleId)
        if (result.stillQueued === 0) queued.delete(scheduleId)
        addCounts(counts, result)
      } catch (err) {
        // One schedule's trouble (a lost connection, a bug) must not stop the others firing.
        ctx.log.error({ err, scheduleId }, 'scheduler.fire_failed')
      }
    }
    let cursor: { at: Date; id: string } | undefined
    for (;;) {
      const batch = await dueBatch(ctx, now, cursor, opts.batchSize)
      await inParallel(batch, opts.parallel, (b) => fire(b.id, fireSchedule))
      if (batch.length < opts.batchSize) break
      cursor = batch.at(-1)
    }
    await inParallel([...queued], opts.parallel, (id) => fire(id, launchQueued))
    try {
      addCounts(counts, await launchDeferred(ctx, opts))
    } catch (err) {
      ctx.log.error({ err }, 'scheduler.deferred_failed')
    }
    try {
      addCounts(counts, await retryFailedRuns(ctx, opts))
    } catch (err) {
      ctx.log.error({ err }, 'scheduler.retry_failed')
    }
    await startRuns(ctx, counts.launched, opts.parallel)
  }
  await ctx.db
    .update(schedulerState)
    .set({ lastTickAt: now, dueCount: due, lagMs: counts.fired ? counts.maxLagMs : 0 })
    .where(eq(schedulerState.id, 1))
  const { launched: _, ...totals } = counts
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
    await this.running
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
