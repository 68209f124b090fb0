import { and, eq, isNull, lte, sql } from 'drizzle-orm'
import type { AppContext } from '../context.ts'
import { uuidArray, type Db } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'
import { notifyMissedFires, type MissedFire } from '../notify/system-events.ts'
import { emptyCounts, type FireCounts, type FireOptions } from './counts.ts'
import { nextFireTimes, type CronSpec } from './cron.ts'
import { activeRunCounts, ScheduledLaunches } from './launch-scheduled.ts'
import { MaintenanceCheck } from './maintenance-fire.ts'
import { schedule, scheduleFire, type FireStatus, type ScheduleRow } from './scheduler.sql.ts'

/*
 * Firing due schedules: every due occurrence of a batch of schedules is decided and recorded in
 * ONE transaction with the runs it launches and each schedule's next fire time. Fire rows are
 * inserted `ON CONFLICT DO NOTHING`: an occurrence whose (schedule, fire time) row exists was
 * handled before (a take-over, a restart, a clock step), so it is counted a duplicate and nothing
 * is launched for it — without aborting the rest of the batch.
 */

/** Occurrences recorded per schedule and pass; older ones of a very long outage are counted on the first row. */
const MAX_RECORDED = 1000
/** Rows per multi-row statement. */
const CHUNK = 1000

export interface OccurrencePlan {
  fireAt: Date
  run: boolean
  /** Why an occurrence does not run: `misfire` (too late) or `collapsed` (run_once ran a later one). */
  reason?: 'misfire' | 'collapsed'
}

/**
 * The misfire policy, pure: which due occurrences run. Later than the max lateness never runs;
 * `run_all` runs the rest, `run_once` only the latest of them, `skip` only those on time (within
 * the grace the tick needs to notice them).
 */
export function planOccurrences(policy: Pick<ScheduleRow, 'misfirePolicy' | 'misfireMaxLatenessSec'>, due: Date[], now: Date, graceMs: number): OccurrencePlan[] {
  const maxLate = policy.misfireMaxLatenessSec * 1000
  const lateness = (at: Date) => now.getTime() - at.getTime()
  const inTime = due.filter((at) => lateness(at) <= maxLate)
  let runs: Date[]
  switch (policy.misfirePolicy) {
    case 'run_all':
      runs = inTime
      break
    case 'run_once':
      runs = inTime.slice(-1)
      break
    case 'skip':
      runs = inTime.filter((at) => lateness(at) <= graceMs)
      break
  }
  const chosen = new Set(runs.map((d) => d.getTime()))
  return due.map((fireAt) => {
    if (chosen.has(fireAt.getTime())) return { fireAt, run: true }
    const collapsed = policy.misfirePolicy === 'run_once' && lateness(fireAt) <= maxLate
    return { fireAt, run: false, reason: collapsed ? 'collapsed' : 'misfire' }
  })
}

const specOf = (s: ScheduleRow): CronSpec => ({ cron: s.cron, timezone: s.timezone, startAt: s.startAt, endAt: s.endAt })

/** The due occurrences (oldest first, at most MAX_RECORDED kept), how many older ones were dropped, and the next one after now. */
export function dueOccurrences(spec: CronSpec, first: Date, now: Date): { due: Date[]; dropped: number; next: Date | null } {
  const due: Date[] = [first]
  let dropped = 0
  // Mostly one occurrence is due and the next one is the first after it: ask for more only when catching up.
  let batch = 1
  for (;;) {
    const more = nextFireTimes(spec, due.at(-1)!, batch)
    for (const at of more) {
      if (at.getTime() > now.getTime()) return { due, dropped, next: at }
      due.push(at)
      if (due.length > MAX_RECORDED) {
        due.shift()
        dropped++
      }
    }
    if (more.length < batch) return { due, dropped, next: null }
    batch = Math.min(batch * 8, 4096)
  }
}

const keyOf = (scheduleId: string, at: Date) => `${scheduleId}@${at.getTime()}`
const timestamps = (dates: Date[]) => `{${dates.map((d) => d.toISOString()).join(',')}}`

/** Which of these occurrences are recorded already. */
async function recordedOccurrences(tx: Db, occurrences: { scheduleId: string; fireAt: Date }[]): Promise<Set<string>> {
  const out = new Set<string>()
  for (let i = 0; i < occurrences.length; i += CHUNK) {
    const chunk = occurrences.slice(i, i + CHUNK)
    const rows = rowsOf<{ schedule_id: string; fire_at: Date | string }>(
      await tx.execute(sql`
        select f.schedule_id, f.fire_at from schedule_fire f
        join unnest(${uuidArray(chunk.map((o) => o.scheduleId))}, ${timestamps(chunk.map((o) => o.fireAt))}::timestamptz[]) as d(schedule_id, fire_at)
          on f.schedule_id = d.schedule_id and f.fire_at = d.fire_at`),
    )
    for (const r of rows) out.add(keyOf(r.schedule_id, new Date(r.fire_at)))
  }
  return out
}

/** Of these `queue`-policy schedules, those with occurrences waiting. Only recent fires are read: one queued past the max lateness is missed by launchQueued. */
async function schedulesWithQueued(tx: Db, ids: string[], now: Date): Promise<Set<string>> {
  if (!ids.length) return new Set()
  const rows = rowsOf<{ id: string }>(
    await tx.execute(sql`
      select distinct f.schedule_id as id from schedule_fire f join schedule s on s.id = f.schedule_id
      where f.schedule_id = any(${uuidArray(ids)}) and f.status = 'queued'
        and f.decided_at >= ${now.toISOString()}::timestamptz - make_interval(secs => s.misfire_max_lateness_sec + 86400)`),
  )
  return new Set(rows.map((r) => r.id))
}

interface Decided {
  s: ScheduleRow
  row: typeof scheduleFire.$inferInsert & { status: FireStatus; fireAt: Date }
  lagMs: number
}

/**
 * Decides every due occurrence of these schedules in one transaction. The schedule rows are
 * locked `SKIP LOCKED`: one a concurrent tick holds is left to it (it would find its occurrences
 * recorded afterwards anyway). Per schedule, in order: the misfire policy, then maintenance
 * windows, then the concurrency policy; a run the job refuses (disabled, no targets, a secret that
 * no longer opens) is that occurrence's `failed` fire and does not affect the others.
 */
export async function fireSchedules(ctx: AppContext, scheduleIds: string[], opts: FireOptions): Promise<FireCounts> {
  const counts = emptyCounts()
  if (!scheduleIds.length) return counts
  await ctx.db.transaction(async (t) => {
    const tx = t as unknown as Db
    const now = ctx.clock()
    const locked = await tx
      .select()
      .from(schedule)
      .where(and(sql`${schedule.id} = any(${uuidArray(scheduleIds)})`, eq(schedule.enabled, true), isNull(schedule.deletedAt), lte(schedule.nextFireAt, now)))
      .for('update', { skipLocked: true })
    const firing: { s: ScheduleRow; due: Date[]; dropped: number; next: Date | null }[] = []
    const broken: string[] = []
    for (const s of locked) {
      try {
        firing.push({ s, ...dueOccurrences(specOf(s), s.nextFireAt!, now) })
      } catch (err) {
        // An expression the API let through but croner refuses now: stop firing it, say why, no crash loop.
        ctx.log.error({ err, scheduleId: s.id }, 'scheduler.bad_expression')
        broken.push(s.id)
      }
    }
    if (broken.length) await tx.update(schedule).set({ nextFireAt: null }).where(sql`${schedule.id} = any(${uuidArray(broken)})`)
    if (!firing.length) return

    const plans = new Map(firing.map((f) => [f.s.id, planOccurrences(f.s, f.due, now, opts.graceMs)]))
    const running = firing.filter((f) => plans.get(f.s.id)!.some((p) => p.run)).map((f) => f.s)
    const active = await activeRunCounts(tx, running.map((s) => s.id))
    const waiting = await schedulesWithQueued(tx, running.filter((s) => s.concurrencyPolicy === 'queue').map((s) => s.id), now)
    const recorded = await recordedOccurrences(tx, firing.flatMap((f) => f.due.map((fireAt) => ({ scheduleId: f.s.id, fireAt }))))
    const launches = new ScheduledLaunches(ctx, tx)
    const windows = new MaintenanceCheck(tx)

    const decided: Decided[] = []
    for (const { s, dropped } of firing) {
      let activeRuns = active.get(s.id) ?? 0
      let queueWaiting = waiting.has(s.id)
      for (const [i, plan] of plans.get(s.id)!.entries()) {
        if (recorded.has(keyOf(s.id, plan.fireAt))) {
          counts.duplicate++
          continue
        }
        const lagMs = now.getTime() - plan.fireAt.getTime()
        let status: FireStatus
        let reason: string | null = null
        const maintenance = plan.run ? await windows.decide(plan.fireAt, () => launches.targetIds(s)) : null
        if (!plan.run) [status, reason] = ['missed', plan.reason ?? 'misfire']
        else if (maintenance) [status, reason] = [maintenance.status, 'maintenance']
        else if (activeRuns < s.maxConcurrentRuns && !queueWaiting) status = 'fired'
        else if (s.concurrencyPolicy === 'queue') [status, reason] = ['queued', 'concurrency']
        else [status, reason] = ['skipped', s.concurrencyPolicy === 'skip' ? 'concurrency' : 'max_concurrent_runs']
        if (status === 'fired') {
          const { error } = await launches.prepare(s)
          if (error) [status, reason] = ['failed', error.slice(0, 500)]
          else activeRuns++
        }
        if (status === 'queued') queueWaiting = true
        const detail = i === 0 && dropped ? { earlier_missed_unrecorded: dropped, ...maintenance?.detail } : (maintenance?.detail ?? null)
        decided.push({ s, lagMs, row: { scheduleId: s.id, fireAt: plan.fireAt, status, reason, decidedAt: now, decidedBy: opts.node, lagMs: status === 'fired' ? lagMs : null, detail } })
      }
    }

    // The fire rows first: one that conflicts (recorded meanwhile) launches nothing.
    const ids = new Map<string, string>()
    for (let i = 0; i < decided.length; i += CHUNK) {
      const inserted = await tx
        .insert(scheduleFire)
        .values(decided.slice(i, i + CHUNK).map((d) => d.row))
        .onConflictDoNothing()
        .returning({ id: scheduleFire.id, scheduleId: scheduleFire.scheduleId, fireAt: scheduleFire.fireAt })
      for (const r of inserted) ids.set(keyOf(r.scheduleId, r.fireAt), r.id)
    }
    const toLaunch: (Decided & { fireId: string })[] = []
    for (const d of decided) {
      const fireId = ids.get(keyOf(d.s.id, d.row.fireAt))
      if (!fireId) counts.duplicate++
      else if (d.row.status === 'fired') toLaunch.push({ ...d, fireId })
      else counts[d.row.status]++
    }
    const { runIds, toStart } = await launches.write(toLaunch.map((d) => ({ s: d.s })))
    for (let i = 0; i < toLaunch.length; i += CHUNK) {
      const values = toLaunch.slice(i, i + CHUNK).map((d, k) => sql`(${d.fireId}::uuid, ${runIds[i + k]!}::uuid)`)
      await tx.execute(sql`update schedule_fire f set run_id = v.run_id from (values ${sql.join(values, sql`, `)}) as v(id, run_id) where f.id = v.id`)
    }
    for (const d of toLaunch) counts.maxLagMs = Math.max(counts.maxLagMs, d.lagMs)
    counts.fired += toLaunch.length
    counts.toStart.push(...toStart)
    counts.queuedSchedules.push(...new Set(decided.filter((d) => d.row.status === 'queued' && ids.has(keyOf(d.s.id, d.row.fireAt))).map((d) => d.s.id)))
    // A missed occurrence's message commits with its row (a collapsed one is not missed: a later occurrence ran).
    const missed = decided.flatMap((d): MissedFire[] => {
      const fireId = ids.get(keyOf(d.s.id, d.row.fireAt))
      const unrecorded = Number((d.row.detail as { earlier_missed_unrecorded?: number } | null)?.earlier_missed_unrecorded ?? 0)
      return fireId && d.row.status === 'missed' && d.row.reason === 'misfire' ? [{ fireId, s: d.s, fireAt: d.row.fireAt, why: 'late', unrecorded }] : []
    })
    await notifyMissedFires(ctx, tx, missed, (s) => launches.targetIds(s))

    for (let i = 0; i < firing.length; i += CHUNK) {
      const values = firing.slice(i, i + CHUNK).map((f) => sql`(${f.s.id}::uuid, ${f.next?.toISOString() ?? null}::timestamptz, ${f.due.at(-1)!.toISOString()}::timestamptz)`)
      await tx.execute(sql`update schedule s set next_fire_at = v.next, last_fire_at = v.last from (values ${sql.join(values, sql`, `)}) as v(id, next, last) where s.id = v.id`)
    }
  })
  return counts
}
