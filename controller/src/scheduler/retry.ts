import { eq, sql } from 'drizzle-orm'
import type { AppContext } from '../context.ts'
import { uuidArray, type Db } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'
import { emptyCounts, type FireCounts, type FireOptions } from './counts.ts'
import { ScheduledLaunches } from './launch-scheduled.ts'
import { MaintenanceCheck, type DeferredRetryDetail } from './maintenance-fire.ts'
import { schedule, scheduleFire, type ScheduleFireRow } from './scheduler.sql.ts'

/*
 * Retries of failed scheduled runs: an occurrence whose run failed gets a new run once
 * delay × backoff^(attempt-1) has passed since it ended, while its schedule allows more attempts.
 * The fire row keeps the occurrence; its run_id moves to the newest run and `attempt` counts up.
 * A retry is a launch like a fire: a maintenance window covering its targets skips it (the
 * occurrence is `skipped`, reason `maintenance`: no more retries) or defers it to the window's end
 * (`deferred`, detail `retry_of`), where launchDeferred launches it as the next attempt; the detail
 * names the window and the attempt (`retry_attempt`) it held back.
 */

/** Run outcomes a schedule's retry policy retries (a cancelled run was stopped on purpose). */
const RETRIED = sql.raw(`('failed', 'timed_out', 'agent_lost', 'interrupted', 'system_error')`)

/** Fired occurrences whose failed run is due for a retry, oldest end first. */
export async function retriesDue(ctx: AppContext, now: Date, limit: number): Promise<string[]> {
  // Driven from the runs that ended recently (run_finished_idx), not from every fire ever recorded:
  // recent enough means within the longest retry delay any schedule asks for, plus an hour.
  const rows = rowsOf<{ id: string }>(
    await ctx.db.execute(sql`
      with w as (select max(retry_delay_sec * power(retry_backoff, greatest(retry_count - 1, 0))) + 3600 as secs
                 from schedule where retry_count > 0 and enabled and deleted_at is null)
      select f.id from run r
      join schedule s on s.id::text = r.requested_by and s.retry_count > 0 and s.enabled and s.deleted_at is null
      join schedule_fire f on f.schedule_id = s.id and f.run_id = r.id and f.status = 'fired' and f.attempt <= s.retry_count
        and f.decided_at between r.created_at - interval '10 minutes' and r.created_at + interval '10 minutes'
      where r.trigger = 'schedule' and r.status in ${RETRIED}
        and r.finished_at >= ${now.toISOString()}::timestamptz - make_interval(secs => (select secs from w))
        and r.finished_at + make_interval(secs => s.retry_delay_sec * power(s.retry_backoff, f.attempt - 1)) <= ${now.toISOString()}::timestamptz
      order by r.finished_at limit ${limit}`),
  )
  return rows.map((r) => r.id)
}

/**
 * Retries the runs of these occurrences in one transaction. Each fire row is locked (`SKIP
 * LOCKED`) and re-checked under the lock — still `fired`, its run still failed, attempts left —
 * since another leader may have retried it a moment ago.
 */
export async function retryFailedRuns(ctx: AppContext, fireIds: string[], opts: FireOptions): Promise<FireCounts> {
  const counts = emptyCounts()
  if (!fireIds.length) return counts
  await ctx.db.transaction(async (t) => {
    const tx = t as unknown as Db
    const now = ctx.clock()
    const locked = await tx
      .select()
      .from(scheduleFire)
      .where(sql`${scheduleFire.id} = any(${uuidArray(fireIds)})`)
      .orderBy(scheduleFire.fireAt)
      .for('update', { skipLocked: true })
    const candidates = locked.filter((f): f is ScheduleFireRow & { runId: string } => f.status === 'fired' && f.runId !== null)
    if (!candidates.length) return
    const failed = new Set(
      rowsOf<{ id: string }>(await tx.execute(sql`select id from run where id = any(${uuidArray(candidates.map((f) => f.runId))}) and status in ${RETRIED}`)).map((r) => r.id),
    )
    const schedules = new Map((await tx.select().from(schedule).where(sql`${schedule.id} = any(${uuidArray([...new Set(candidates.map((f) => f.scheduleId))])})`)).map((s) => [s.id, s]))
    const launches = new ScheduledLaunches(ctx, tx)
    const windows = new MaintenanceCheck(tx)
    const set = (f: ScheduleFireRow, values: Partial<typeof scheduleFire.$inferInsert>) => tx.update(scheduleFire).set(values).where(eq(scheduleFire.id, f.id))
    const previousRuns = (f: ScheduleFireRow & { runId: string }) => [...(((f.detail ?? {}) as { previous_runs?: string[] }).previous_runs ?? []), f.runId]
    const toLaunch: (ScheduleFireRow & { runId: string })[] = []
    for (const f of candidates) {
      const s = schedules.get(f.scheduleId)
      if (!failed.has(f.runId) || !s || f.attempt > s.retryCount) continue
      const maintenance = await windows.decide(now, () => launches.targetIds(s))
      if (maintenance) {
        const detail: Record<string, unknown> & DeferredRetryDetail = { ...f.detail, ...maintenance.detail, retry_attempt: f.attempt + 1 }
        if (maintenance.status === 'deferred') detail.retry_of = f.runId
        await set(f, { status: maintenance.status, reason: 'maintenance', detail, decidedAt: now, decidedBy: opts.node })
        counts[maintenance.status]++
        continue
      }
      const prepared = await launches.prepare(s)
      if (prepared.error) {
        await set(f, { status: 'failed', reason: `retry ${f.attempt + 1}: ${prepared.error}`.slice(0, 500), detail: { ...f.detail, previous_runs: previousRuns(f) } })
        counts.failed++
        continue
      }
      toLaunch.push(f)
    }
    const { runIds, toStart } = await launches.write(toLaunch.map((f) => ({ s: schedules.get(f.scheduleId)!, retryOf: f.runId })))
    for (const [i, f] of toLaunch.entries()) {
      await set(f, { runId: runIds[i]!, attempt: f.attempt + 1, decidedAt: now, decidedBy: opts.node, detail: { ...f.detail, previous_runs: previousRuns(f) } })
      counts.fired++
    }
    counts.toStart.push(...toStart)
  })
  return counts
}
