import { eq, sql } from 'drizzle-orm'
import type { AppContext } from '../context.ts'
import { uuidArray, type Db } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'
import { notifyMissedFires, type MissedFire } from '../notify/system-events.ts'
import { emptyCounts, type FireCounts, type FireOptions } from './counts.ts'
import { ScheduledLaunches } from './launch-scheduled.ts'
import { activeWindows, windowsCovering, type ActiveWindow } from './maintenance.ts'
import { schedule, scheduleFire, type ScheduleFireRow } from './scheduler.sql.ts'

/*
 * Maintenance windows and scheduled runs: whether a window skips or defers a run about to launch
 * (a fire, a queued occurrence, a retry), and launching deferred occurrences once their window
 * has ended.
 */

export interface MaintenanceDecision {
  status: 'skipped' | 'deferred'
  until: Date
  detail: { window_id: string; window_name: string; until?: string }
}

/** Detail a deferred retry carries: the failed run it retries when its window ends. */
export interface DeferredRetryDetail {
  retry_of?: string
}

/**
 * The maintenance decisions of one transaction: the windows open at an instant are read once per
 * instant, however many runs are decided for it.
 */
export class MaintenanceCheck {
  private readonly open = new Map<number, Promise<ActiveWindow[]>>()

  constructor(private readonly tx: Db) {}

  /**
   * Whether windows open at `at` cover the run: any covering `skip` window skips it; otherwise it
   * is deferred to the latest end of the covering `defer` windows. `targets` is only asked for
   * when a window is open.
   */
  async decide(at: Date, targets: () => Promise<string[]>): Promise<MaintenanceDecision | null> {
    let open = this.open.get(at.getTime())
    if (!open) {
      open = activeWindows(this.tx, at)
      this.open.set(at.getTime(), open)
    }
    const windows = await open
    if (!windows.length) return null
    const covering = await windowsCovering({ db: this.tx }, await targets(), at, windows)
    if (!covering.length) return null
    const skip = covering.find((c) => c.window.action === 'skip')
    if (skip) return { status: 'skipped', until: skip.open.end, detail: { window_id: skip.window.id, window_name: skip.window.name } }
    const last = covering.reduce((a, b) => (b.open.end > a.open.end ? b : a))
    return { status: 'deferred', until: last.open.end, detail: { window_id: last.window.id, window_name: last.window.name, until: last.open.end.toISOString() } }
  }
}

/** When a deferred occurrence may launch: the end of its window. */
const untilOf = (f: ScheduleFireRow) => {
  const until = (f.detail as { until?: string } | null)?.until
  return until ? new Date(until) : f.fireAt
}

/** Deferred occurrences whose window has ended, oldest first. */
export async function deferredDue(ctx: AppContext, now: Date, limit: number): Promise<string[]> {
  const rows = rowsOf<{ id: string }>(
    await ctx.db.execute(sql`
      select id from schedule_fire
      where status = 'deferred' and coalesce((detail->>'until')::timestamptz, fire_at) <= ${now.toISOString()}::timestamptz
      order by fire_at limit ${limit}`),
  )
  return rows.map((r) => r.id)
}

/**
 * Launches deferred occurrences whose window has ended, in one transaction. Each fire row is
 * locked (`SKIP LOCKED`) and its status checked again, so a racing leader cannot launch it twice;
 * the runs and the rows' move to `fired` commit together. A window still (or newly) covering it
 * defers it again, or skips it. Once its window has ended an occurrence is due like any other:
 * one the scheduler reaches more than the schedule's misfire max lateness after the window's end
 * is missed. A deferred retry (detail `retry_of`) launches as the occurrence's next attempt.
 */
export async function launchDeferred(ctx: AppContext, fireIds: string[], opts: FireOptions): Promise<FireCounts> {
  const counts = emptyCounts()
  if (!fireIds.length) return counts
  await ctx.db.transaction(async (t) => {
    const tx = t as unknown as Db
    const now = ctx.clock()
    const fires = (
      await tx
        .select()
        .from(scheduleFire)
        .where(sql`${scheduleFire.id} = any(${uuidArray(fireIds)})`)
        .orderBy(scheduleFire.fireAt)
        .for('update', { skipLocked: true })
    ).filter((f) => f.status === 'deferred')
    if (!fires.length) return
    const schedules = new Map((await tx.select().from(schedule).where(sql`${schedule.id} = any(${uuidArray([...new Set(fires.map((f) => f.scheduleId))])})`)).map((s) => [s.id, s]))
    const launches = new ScheduledLaunches(ctx, tx)
    const windows = new MaintenanceCheck(tx)
    const decided = { decidedAt: now, decidedBy: opts.node }
    const set = (f: ScheduleFireRow, values: Partial<typeof scheduleFire.$inferInsert>) => tx.update(scheduleFire).set({ ...values, ...decided }).where(eq(scheduleFire.id, f.id))
    const toLaunch: { f: ScheduleFireRow; retryOf: string | undefined }[] = []
    const missed: MissedFire[] = []
    for (const f of fires) {
      const s = schedules.get(f.scheduleId)
      if (!s?.enabled || s.deletedAt) {
        await set(f, { status: 'skipped', reason: 'schedule_disabled' })
        counts.skipped++
        continue
      }
      if (now.getTime() - untilOf(f).getTime() > s.misfireMaxLatenessSec * 1000) {
        await set(f, { status: 'missed', reason: 'misfire' })
        missed.push({ fireId: f.id, s, fireAt: f.fireAt, why: 'maintenance' })
        counts.missed++
        continue
      }
      const again = await windows.decide(now, () => launches.targetIds(s))
      if (again) {
        await set(f, { status: again.status, detail: { ...f.detail, ...again.detail, until: again.until.toISOString() } })
        if (again.status === 'skipped') counts.skipped++
        continue
      }
      const { retry_of: retryOf } = (f.detail ?? {}) as DeferredRetryDetail
      const prepared = await launches.prepare(s)
      if (prepared.error) {
        await set(f, { status: 'failed', reason: (retryOf ? `retry ${f.attempt + 1}: ${prepared.error}` : prepared.error).slice(0, 500) })
        counts.failed++
        continue
      }
      toLaunch.push({ f, retryOf })
    }
    const { runIds, toStart } = await launches.write(toLaunch.map(({ f, retryOf }) => ({ s: schedules.get(f.scheduleId)!, retryOf })))
    for (const [i, { f, retryOf }] of toLaunch.entries()) {
      const runId = runIds[i]!
      if (retryOf) {
        const { retry_of: _, ...detail } = (f.detail ?? {}) as DeferredRetryDetail & Record<string, unknown>
        const previous = [...((detail as { previous_runs?: string[] }).previous_runs ?? []), retryOf]
        await set(f, { status: 'fired', runId, attempt: f.attempt + 1, detail: { ...detail, previous_runs: previous } })
      } else {
        const lagMs = now.getTime() - f.fireAt.getTime()
        await set(f, { status: 'fired', runId, lagMs })
        counts.maxLagMs = Math.max(counts.maxLagMs, lagMs)
      }
      counts.fired++
    }
    counts.toStart.push(...toStart)
    await notifyMissedFires(ctx, tx, missed, (s) => launches.targetIds(s))
  })
  return counts
}
