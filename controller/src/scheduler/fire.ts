import { and, asc, eq, gte, isNull, lte, sql } from 'drizzle-orm'
import type { Actor } from '../auth/principal.ts'
import type { AppContext } from '../context.ts'
import { openSecret } from '../crypto/secret-box.ts'
import { describeCause, type Db } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'
import { advanceRun } from '../runs/coordinator.ts'
import { getJobRow, getJobVersion } from '../jobs/service.ts'
import { launchRun, resolveRun } from '../runs/launch.ts'
import { nextFireTimes, type CronSpec } from './cron.ts'
import { activeWindows, windowsCovering } from './maintenance.ts'
import { schedule, scheduleFire, type FireStatus, type ScheduleRow } from './scheduler.sql.ts'
import { scheduleParamsAad, scheduleRunRequest } from './service.ts'

/*
 * Firing one schedule: every due occurrence is decided and recorded in ONE transaction with the
 * run it launches and the schedule's next fire time. The fire row is inserted `ON CONFLICT DO
 * NOTHING` first: if the (schedule, fire time) row exists, the occurrence was handled before (a
 * take-over, a restart, a clock step) and nothing is launched.
 */

/** Occurrences recorded per schedule and pass; older ones of a very long outage are counted on the first row. */
const MAX_RECORDED = 1000
const ACTIVE_RUN = sql.raw(`('queued', 'running')`)


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

export interface FireCounts {
  fired: number
  missed: number
  skipped: number
  queued: number
  /** Occurrences deferred to the end of a maintenance window. */
  deferred: number
  failed: number
  /** Occurrences already recorded (by a previous leader, or a concurrent tick): nothing launched. */
  duplicate: number
  /** Largest lateness of an occurrence launched in this pass. */
  maxLagMs: number
  /** Runs committed in this pass, to be advanced (started) by the caller: see startRuns. */
  launched: string[]
  /** After launchQueued: occurrences of the schedule still waiting. */
  stillQueued?: number
}

export const emptyCounts = (): FireCounts => ({ fired: 0, missed: 0, skipped: 0, queued: 0, deferred: 0, failed: 0, duplicate: 0, maxLagMs: 0, launched: [] })

export function addCounts(into: FireCounts, from: FireCounts): void {
  for (const k of ['fired', 'missed', 'skipped', 'queued', 'deferred', 'failed', 'duplicate'] as const) into[k] += from[k]
  into.maxLagMs = Math.max(into.maxLagMs, from.maxLagMs)
  into.launched.push(...from.launched)
}

export interface FireOptions {
  /** The controller deciding (recorded on every fire row). */
  node: string
  /** How late a `skip`-policy occurrence may be and still count as on time. */
  graceMs: number
}

const specOf = (s: ScheduleRow): CronSpec => ({ cron: s.cron, timezone: s.timezone, startAt: s.startAt, endAt: s.endAt })

/** The due occurrences (oldest first, at most MAX_RECORDED kept), how many older ones were dropped, and the next one after now. */
export function dueOccurrences(spec: CronSpec, first: Date, now: Date): { due: Date[]; dropped: number; next: Date | null } {
  const due: Date[] = [first]
  let dropped = 0
  let batch = 8
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

/** Counts the runs of a schedule still queued or running (its runs are requested by the schedule). */
async function activeRuns(db: Db, scheduleId: string): Promise<number> {
  const rows = rowsOf<{ n: number }>(await db.execute(sql`select count(*)::int as n from run where status in ${ACTIVE_RUN} and trigger = 'schedule' and requested_by = ${scheduleId}`))
  return Number(rows[0]?.n ?? 0)
}

export const scheduleActor = (s: Pick<ScheduleRow, 'id' | 'name'>): Actor => ({ type: 'system', id: s.id, name: `schedule:${s.name}` })

/**
 * Launches a run of the schedule in the caller's transaction, inside a savepoint so a refusal
 * (job disabled or deleted, no targets, a secret that no longer opens) rolls back only the run.
 */
export async function launchScheduled(ctx: AppContext, tx: Db, s: ScheduleRow, retryOf?: string): Promise<{ runId: string } | { error: string }> {
  try {
    return await tx.transaction(async (sp) => {
      const parameters: Record<string, unknown> = { ...s.parameters }
      if (s.secretParams) Object.assign(parameters, JSON.parse(openSecret(ctx.keyring, s.secretParams, scheduleParamsAad(s.id)).toString('utf8')) as Record<string, unknown>)
      const request = { parameters, ...(s.targets ? { targets: s.targets } : {}) }
      const { runId } = await launchRun(ctx, undefined, s.jobId, request, {
        trigger: 'schedule',
        tx: sp as unknown as Db,
        requestedBy: scheduleActor(s),
        ...(retryOf ? { retryOf } : {}),
      })
      return { runId }
    })
  } catch (err) {
    return { error: describeCause(err) }
  }
}

/**
 * Advances freshly committed runs so their first steps start now rather than at the engine's next
 * sweep. Done after a whole pass, so one schedule's run start does not delay the next one's fire.
 */
export async function startRuns(ctx: AppContext, runIds: string[], parallel = 1): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < runIds.length) {
      const runId = runIds[next++]!
      await advanceRun(ctx, runId).catch((err) => ctx.log.warn({ err, runId }, 'scheduler.advance_failed'))
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, runIds.length)) }, worker))
}

/**
 * Decides every due occurrence of one schedule. The schedule row is locked `SKIP LOCKED`: a
 * concurrent tick leaves it alone (and would find its occurrences recorded afterwards anyway).
 */
export async function fireSchedule(ctx: AppContext, scheduleId: string, opts: FireOptions): Promise<FireCounts> {
  const counts = emptyCounts()
  await ctx.db.transaction(async (t) => {
    const tx = t as unknown as Db
    const now = ctx.clock()
    const [s] = await tx
      .select()
      .from(schedule)
      .where(and(eq(schedule.id, scheduleId), eq(schedule.enabled, true), isNull(schedule.deletedAt), lte(schedule.nextFireAt, now)))
      .for('update', { skipLocked: true })
    if (!s?.nextFireAt) return
    let occurrences: { due: Date[]; dropped: number; next: Date | null }
    try {
      occurrences = dueOccurrences(specOf(s), s.nextFireAt, now)
    } catch (err) {
      // An expression the API let through but croner refuses now: stop firing it, say why, no crash loop.
      ctx.log.error({ err, scheduleId }, 'scheduler.bad_expression')
      await tx.update(schedule).set({ nextFireAt: null }).where(eq(schedule.id, s.id))
      return
    }
    const plans = planOccurrences(s, occurrences.due, now, opts.graceMs)
    const runsAny = plans.some((p) => p.run)
    let active = runsAny ? await activeRuns(tx, s.id) : 0
    let queueWaiting = runsAny && s.concurrencyPolicy === 'queue' && (await hasQueued(tx, s, now))
    const targets = lazyTargets(ctx, tx, s)
    for (const [i, plan] of plans.entries()) {
      const lagMs = now.getTime() - plan.fireAt.getTime()
      let status: FireStatus
      let reason: string | null = null
      const maintenance = plan.run ? await maintenanceDecision(ctx, tx, plan.fireAt, targets) : null
      if (!plan.run) [status, reason] = ['missed', plan.reason ?? 'misfire']
      else if (maintenance) [status, reason] = [maintenance.status, 'maintenance']
      else if (active < s.maxConcurrentRuns && !queueWaiting) status = 'fired'
      else if (s.concurrencyPolicy === 'queue') [status, reason] = ['queued', 'concurrency']
      else [status, reason] = ['skipped', s.concurrencyPolicy === 'skip' ? 'concurrency' : 'max_concurrent_runs']
      const detail = i === 0 && occurrences.dropped ? { earlier_missed_unrecorded: occurrences.dropped, ...maintenance?.detail } : (maintenance?.detail ?? null)
      const inserted = await tx
        .insert(scheduleFire)
        .values({ scheduleId: s.id, fireAt: plan.fireAt, status, reason, decidedAt: now, decidedBy: opts.node, lagMs: status === 'fired' ? lagMs : null, detail })
        .onConflictDoNothing()
        .returning({ id: scheduleFire.id })
      if (!inserted[0]) {
        counts.duplicate++
        continue
      }
      if (status === 'queued') queueWaiting = true
      if (status !== 'fired') {
        counts[status === 'missed' || status === 'queued' || status === 'deferred' ? status : 'skipped']++
        continue
      }
      const result = await launchScheduled(ctx, tx, s)
      if ('error' in result) {
        await tx.update(scheduleFire).set({ status: 'failed', reason: result.error.slice(0, 500), lagMs: null }).where(eq(scheduleFire.id, inserted[0].id))
        counts.failed++
        continue
      }
      await tx.update(scheduleFire).set({ runId: result.runId }).where(eq(scheduleFire.id, inserted[0].id))
      counts.launched.push(result.runId)
      active++
      counts.fired++
      counts.maxLagMs = Math.max(counts.maxLagMs, lagMs)
    }
    await tx
      .update(schedule)
      .set({ nextFireAt: occurrences.next, lastFireAt: occurrences.due.at(-1)! })
      .where(eq(schedule.id, s.id))
  })
  return counts
}

/** Whether occurrences wait ahead of this one. Only recent fires are read: one queued past the max lateness is missed by launchQueued. */
async function hasQueued(db: Db, s: ScheduleRow, now: Date): Promise<boolean> {
  const since = new Date(now.getTime() - (s.misfireMaxLatenessSec + 86_400) * 1000)
  const [row] = await db
    .select({ id: scheduleFire.id })
    .from(scheduleFire)
    .where(and(eq(scheduleFire.scheduleId, s.id), eq(scheduleFire.status, 'queued'), gte(scheduleFire.decidedAt, since)))
    .limit(1)
  return Boolean(row)
}

/**
 * `queue` concurrency: launches a schedule's queued occurrences, oldest first, while it has
 * capacity; one that has waited past the max lateness is missed instead.
 */
export async function launchQueued(ctx: AppContext, scheduleId: string, opts: FireOptions): Promise<FireCounts> {
  const counts = emptyCounts()
  await ctx.db.transaction(async (t) => {
    const tx = t as unknown as Db
    const now = ctx.clock()
    const [s] = await tx.select().from(schedule).where(eq(schedule.id, scheduleId)).for('update', { skipLocked: true })
    if (!s) return
    const queued = await tx
      .select()
      .from(scheduleFire)
      .where(and(eq(scheduleFire.scheduleId, s.id), eq(scheduleFire.status, 'queued')))
      .orderBy(asc(scheduleFire.fireAt))
    counts.stillQueued = queued.length
    if (!queued.length) return
    if (!s.enabled || s.deletedAt) {
      await tx.update(scheduleFire).set({ status: 'skipped', reason: 'schedule_disabled', decidedAt: now, decidedBy: opts.node }).where(and(eq(scheduleFire.scheduleId, s.id), eq(scheduleFire.status, 'queued')))
      counts.skipped += queued.length
      counts.stillQueued = 0
      return
    }
    let active = await activeRuns(tx, s.id)
    const targets = lazyTargets(ctx, tx, s)
    for (const f of queued) {
      const lagMs = now.getTime() - f.fireAt.getTime()
      if (lagMs > s.misfireMaxLatenessSec * 1000) {
        await tx.update(scheduleFire).set({ status: 'missed', reason: 'misfire', decidedAt: now, decidedBy: opts.node }).where(eq(scheduleFire.id, f.id))
        counts.missed++
        counts.stillQueued--
        continue
      }
      if (active >= s.maxConcurrentRuns) break
      // Capacity came back inside a maintenance window: the window decides, as for a new fire.
      const maintenance = await maintenanceDecision(ctx, tx, now, targets)
      if (maintenance) {
        await tx
          .update(scheduleFire)
          .set({ status: maintenance.status, reason: 'maintenance', detail: { ...f.detail, ...maintenance.detail }, decidedAt: now, decidedBy: opts.node })
          .where(eq(scheduleFire.id, f.id))
        counts[maintenance.status]++
        counts.stillQueued--
        continue
      }
      const result = await launchScheduled(ctx, tx, s)
      const set = 'error' in result ? { status: 'failed' as const, reason: result.error.slice(0, 500) } : { status: 'fired' as const, reason: null, runId: result.runId, lagMs }
      await tx
        .update(scheduleFire)
        .set({ ...set, decidedAt: now, decidedBy: opts.node })
        .where(eq(scheduleFire.id, f.id))
      counts.stillQueued--
      if ('error' in result) {
        counts.failed++
        continue
      }
      counts.launched.push(result.runId)
      active++
      counts.fired++
      counts.maxLagMs = Math.max(counts.maxLagMs, lagMs)
    }
  })
  return counts
}

/** Run outcomes a schedule's retry policy retries (a cancelled run was stopped on purpose). */
const RETRIED = sql.raw(`('failed', 'timed_out', 'agent_lost', 'interrupted', 'system_error')`)

/**
 * Retries of failed scheduled runs: an occurrence whose run failed gets a new run once
 * delay × backoff^(attempt-1) has passed since it ended, while its schedule allows more attempts.
 * The fire row keeps the occurrence; its run_id moves to the newest run and `attempt` counts up.
 */
export async function retryFailedRuns(ctx: AppContext, opts: FireOptions, limit = 100): Promise<FireCounts> {
  const counts = emptyCounts()
  const now = ctx.clock()
  // Driven from the runs that ended recently (run_finished_idx), not from every fire ever recorded:
  // recent enough means within the longest retry delay any schedule asks for, plus an hour.
  const due = rowsOf<{ id: string }>(
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
  for (const { id } of due) {
      await ctx.db.transaction(async (t) => {
      const tx = t as unknown as Db
      const [f] = await tx.select().from(scheduleFire).where(eq(scheduleFire.id, id)).for('update', { skipLocked: true })
      if (!f?.runId || f.status !== 'fired') return
      // Re-checked under the lock: another leader may have retried it a moment ago.
      const [still] = rowsOf<{ ok: boolean }>(await tx.execute(sql`select status in ${RETRIED} as ok from run where id = ${f.runId}`))
      const [s] = await tx.select().from(schedule).where(eq(schedule.id, f.scheduleId))
      if (!still?.ok || !s || f.attempt > s.retryCount) return
      const result = await launchScheduled(ctx, tx, s, f.runId)
      const previous = [...(((f.detail ?? {}) as { previous_runs?: string[] }).previous_runs ?? []), f.runId]
      if ('error' in result) {
        await tx.update(scheduleFire).set({ status: 'failed', reason: `retry ${f.attempt + 1}: ${result.error}`.slice(0, 500), detail: { ...f.detail, previous_runs: previous } }).where(eq(scheduleFire.id, f.id))
        counts.failed++
        return
      }
      await tx
        .update(scheduleFire)
        .set({ runId: result.runId, attempt: f.attempt + 1, decidedAt: now, decidedBy: opts.node, detail: { ...f.detail, previous_runs: previous } })
        .where(eq(scheduleFire.id, f.id))
      counts.launched.push(result.runId)
      counts.fired++
    })
    }
  return counts
}

/** A schedule's run targets, resolved at most once per pass and only when a window is open. */
function lazyTargets(ctx: AppContext, tx: Db, s: ScheduleRow): () => Promise<string[]> {
  let ids: Promise<string[]> | undefined
  return () => (ids ??= scheduleTargetIds(ctx, tx, s))
}

/**
 * The target ids a run of the schedule would touch now: its target override, else the job's
 * selection (and per-step targets), as the launch resolves them. A schedule whose run cannot be
 * resolved covers no target (only windows for all targets apply); its launch then fails and says why.
 */
export async function scheduleTargetIds(ctx: AppContext, tx: Db, s: ScheduleRow): Promise<string[]> {
  try {
    return await tx.transaction(async (sp) => {
      const db = sp as unknown as Db
      const jobRow = await getJobRow(db, s.jobId)
      const { definition } = await getJobVersion(db, s.jobId, jobRow.currentVersion)
      const resolved = await resolveRun({ ...ctx, db }, definition, scheduleRunRequest(ctx, s))
      return resolved.targets.map((t) => t.id)
    })
  } catch {
    return []
  }
}

export interface MaintenanceDecision {
  status: 'skipped' | 'deferred'
  until: Date
  detail: { window_id: string; window_name: string; until?: string }
}

/**
 * Whether maintenance windows open at `at` cover the run: any covering `skip` window skips it;
 * otherwise it is deferred to the latest end of the covering `defer` windows.
 */
export async function maintenanceDecision(ctx: AppContext, tx: Db, at: Date, targets: () => Promise<string[]>): Promise<MaintenanceDecision | null> {
  const open = await activeWindows(tx, at)
  if (!open.length) return null
  const covering = await windowsCovering({ db: tx }, await targets(), at, open)
  if (!covering.length) return null
  const skip = covering.find((c) => c.window.action === 'skip')
  if (skip) return { status: 'skipped', until: skip.open.end, detail: { window_id: skip.window.id, window_name: skip.window.name } }
  const last = covering.reduce((a, b) => (b.open.end > a.open.end ? b : a))
  return { status: 'deferred', until: last.open.end, detail: { window_id: last.window.id, window_name: last.window.name, until: last.open.end.toISOString() } }
}

/**
 * Launches deferred occurrences whose window has ended. Each fire row is locked and its status
 * checked again, so a racing leader cannot launch it twice; the run and the row's move to `fired`
 * commit together. A window still (or newly) covering it defers it again, or skips it.
 */
export async function launchDeferred(ctx: AppContext, opts: FireOptions, limit = 100): Promise<FireCounts> {
  const counts = emptyCounts()
  const now = ctx.clock()
  const due = rowsOf<{ id: string }>(
    await ctx.db.execute(sql`
      select id from schedule_fire
      where status = 'deferred' and coalesce((detail->>'until')::timestamptz, fire_at) <= ${now.toISOString()}::timestamptz
      order by fire_at limit ${limit}`),
  )
  for (const { id } of due) {
    await ctx.db.transaction(async (t) => {
      const tx = t as unknown as Db
      const [f] = await tx.select().from(scheduleFire).where(eq(scheduleFire.id, id)).for('update', { skipLocked: true })
      if (f?.status !== 'deferred') return
      const [s] = await tx.select().from(schedule).where(eq(schedule.id, f.scheduleId))
      if (!s?.enabled || s.deletedAt) {
        await tx.update(scheduleFire).set({ status: 'skipped', reason: 'schedule_disabled', decidedAt: now, decidedBy: opts.node }).where(eq(scheduleFire.id, f.id))
        counts.skipped++
        return
      }
      const again = await maintenanceDecision(ctx, tx, now, lazyTargets(ctx, tx, s))
      if (again) {
        await tx
          .update(scheduleFire)
          .set({ status: again.status, detail: { ...f.detail, ...again.detail, until: again.until.toISOString() }, decidedAt: now, decidedBy: opts.node })
          .where(eq(scheduleFire.id, f.id))
        if (again.status === 'skipped') counts.skipped++
        return
      }
      const result = await launchScheduled(ctx, tx, s)
      if ('error' in result) {
        await tx.update(scheduleFire).set({ status: 'failed', reason: result.error.slice(0, 500), decidedAt: now, decidedBy: opts.node }).where(eq(scheduleFire.id, f.id))
        counts.failed++
        return
      }
      const lagMs = now.getTime() - f.fireAt.getTime()
      await tx.update(scheduleFire).set({ status: 'fired', runId: result.runId, lagMs, decidedAt: now, decidedBy: opts.node }).where(eq(scheduleFire.id, f.id))
      counts.launched.push(result.runId)
      counts.fired++
      counts.maxLagMs = Math.max(counts.maxLagMs, lagMs)
    })
  }
  return counts
}
