import { and, eq, sql } from 'drizzle-orm'
import type { AppContext } from '../context.ts'
import { uuidArray, type Db } from '../db/client.ts'
import { notifyMissedFires, type MissedFire } from '../notify/system-events.ts'
import { emptyCounts, type FireCounts, type FireOptions } from './counts.ts'
import { activeRunCounts, ScheduledLaunches } from './launch-scheduled.ts'
import { MaintenanceCheck } from './maintenance-fire.ts'
import { schedule, scheduleFire, type ScheduleFireRow } from './scheduler.sql.ts'

/*
 * `queue` concurrency: a schedule's queued occurrences launch, oldest first, while it has
 * capacity; one that has waited past the max lateness is missed instead.
 */

/**
 * Launches the queued occurrences of these schedules that have capacity again, in one
 * transaction. The schedule rows are locked `SKIP LOCKED` (a concurrent tick leaves them alone).
 * Capacity coming back inside a maintenance window: the window decides, as for a new fire.
 */
export async function launchQueued(ctx: AppContext, scheduleIds: string[], opts: FireOptions): Promise<FireCounts> {
  const counts = emptyCounts()
  if (!scheduleIds.length) return counts
  await ctx.db.transaction(async (t) => {
    const tx = t as unknown as Db
    const now = ctx.clock()
    const locked = await tx
      .select()
      .from(schedule)
      .where(sql`${schedule.id} = any(${uuidArray(scheduleIds)})`)
      .for('update', { skipLocked: true })
    if (!locked.length) return
    const queued = await tx
      .select()
      .from(scheduleFire)
      .where(and(sql`${scheduleFire.scheduleId} = any(${uuidArray(locked.map((s) => s.id))})`, eq(scheduleFire.status, 'queued')))
      .orderBy(scheduleFire.fireAt)
    const bySchedule = new Map<string, ScheduleFireRow[]>()
    for (const f of queued) bySchedule.set(f.scheduleId, [...(bySchedule.get(f.scheduleId) ?? []), f])
    const live = locked.filter((s) => s.enabled && !s.deletedAt && bySchedule.has(s.id))
    const active = await activeRunCounts(tx, live.map((s) => s.id))
    const launches = new ScheduledLaunches(ctx, tx)
    const windows = new MaintenanceCheck(tx)
    const decided = { decidedAt: now, decidedBy: opts.node }
    const set = (f: ScheduleFireRow, values: Partial<typeof scheduleFire.$inferInsert>) => tx.update(scheduleFire).set({ ...values, ...decided }).where(eq(scheduleFire.id, f.id))
    const toLaunch: { f: ScheduleFireRow; s: (typeof locked)[number]; lagMs: number }[] = []
    const missed: MissedFire[] = []
    for (const s of locked) {
      const fires = bySchedule.get(s.id) ?? []
      if (!s.enabled || s.deletedAt) {
        if (fires.length) {
          await tx.update(scheduleFire).set({ status: 'skipped', reason: 'schedule_disabled', ...decided }).where(and(eq(scheduleFire.scheduleId, s.id), eq(scheduleFire.status, 'queued')))
          counts.skipped += fires.length
        }
        counts.drainedSchedules.push(s.id)
        continue
      }
      let activeRuns = active.get(s.id) ?? 0
      let left = fires.length
      for (const f of fires) {
        const lagMs = now.getTime() - f.fireAt.getTime()
        if (lagMs > s.misfireMaxLatenessSec * 1000) {
          await set(f, { status: 'missed', reason: 'misfire' })
          missed.push({ fireId: f.id, s, fireAt: f.fireAt, why: 'queue' })
          counts.missed++
          left--
          continue
        }
        if (activeRuns >= s.maxConcurrentRuns) break
        const maintenance = await windows.decide(now, () => launches.targetIds(s))
        if (maintenance) {
          await set(f, { status: maintenance.status, reason: 'maintenance', detail: { ...f.detail, ...maintenance.detail } })
          counts[maintenance.status]++
          left--
          continue
        }
        left--
        const { error } = await launches.prepare(s)
        if (error) {
          await set(f, { status: 'failed', reason: error.slice(0, 500) })
          counts.failed++
          continue
        }
        toLaunch.push({ f, s, lagMs })
        activeRuns++
      }
      if (left === 0) counts.drainedSchedules.push(s.id)
    }
    const { runIds, toStart } = await launches.write(toLaunch.map(({ s }) => ({ s })))
    for (const [i, { f, lagMs }] of toLaunch.entries()) {
      await set(f, { status: 'fired', reason: null, runId: runIds[i]!, lagMs })
      counts.maxLagMs = Math.max(counts.maxLagMs, lagMs)
    }
    counts.fired += toLaunch.length
    counts.toStart.push(...toStart)
    await notifyMissedFires(ctx, tx, missed, (s) => launches.targetIds(s))
  })
  return counts
}
