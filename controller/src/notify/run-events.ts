import { hostname } from 'node:os'
import { and, eq, isNull, sql } from 'drizzle-orm'
import type { AppContext } from '../context.ts'
import { uuidArray, type Db } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'
import { FAILURE_STATUSES } from '../runs/planner.ts'
import { readOutputText } from '../runs/output.ts'
import { definitionOf } from '../runs/coordinator.ts'
import { run, type RunRow, type RunStatus } from '../runs/runs.sql.ts'
import { resolveSelector } from '../selectors/compile.ts'
import { notificationEscalation, notificationRule, type NotificationRuleRow } from './notify.sql.ts'
import { deliverToRule, forRule } from './dispatch.ts'
import type { Message } from './channels/types.ts'
import type { MessageFields } from './templates.ts'

/*
 * Run events → rules → outbox, inside the transaction that ends the run (or the step): a crash
 * after commit finds the messages in the outbox, a crash before it finds neither the end nor them.
 */

export const RUN_EVENTS = ['run.succeeded', 'run.failed', 'run.finished', 'run.timed_out', 'step.failed'] as const

/** The events a run that ended with `status` raises. */
export function runEventsFor(status: RunStatus): string[] {
  const events = ['run.finished']
  if (status === 'succeeded') events.push('run.succeeded')
  else if (status === 'timed_out') events.push('run.timed_out', 'run.failed')
  else if (FAILURE_STATUSES.includes(status) && status !== 'cancelled') events.push('run.failed')
  return events
}

const outcome = (s: RunStatus) => (s === 'succeeded' ? 'success' : FAILURE_STATUSES.includes(s) && s !== 'cancelled' ? 'failure' : 'other')

export function publicUrl(ctx: AppContext): string {
  return (ctx.config.OPSC_PUBLIC_URL ?? `https://${hostname()}:${ctx.config.OPSC_HTTP_PORT}`).replace(/\/+$/, '')
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
}

/** Enabled, not deleted rules naming any of these events. */
export async function activeRules(db: Db, events: string[]): Promise<NotificationRuleRow[]> {
  return db
    .select()
    .from(notificationRule)
    .where(and(eq(notificationRule.enabled, true), isNull(notificationRule.deletedAt), sql`${notificationRule.events} ?| string_to_array(${events.join(',')}, ',')`))
}

/** The run's facts every template and card shows. */
async function runFields(ctx: AppContext, db: Db, r: RunRow, status: RunStatus): Promise<MessageFields> {
  const failed = rowsOf<{ id: string; target_name: string | null; step_id: string; error: string | null }>(
    await db.execute(sql`
      select distinct on (coalesce(target_name, ''), step_index) id, target_name, step_id, error from step_run
      where run_id = ${r.id} and status = any(string_to_array(${FAILURE_STATUSES.join(',')}, ','))
      order by coalesce(target_name, ''), step_index, attempt desc`),
  )
  const targets = [...new Set(failed.map((f) => f.target_name).filter((n): n is string => !!n))]
  const tails: string[] = []
  for (const f of failed.slice(0, 3)) {
    const lines = await outputTail(db, f.id)
    if (lines) tails.push(`--- ${f.step_id}${f.target_name ? ` on ${f.target_name}` : ''}\n${lines}`)
  }
  const finished = r.finishedAt ?? ctx.clock()
  const durationMs = r.startedAt ? finished.getTime() - r.startedAt.getTime() : 0
  return {
    job_name: r.jobName,
    job_id: r.jobId,
    run_id: r.id,
    status,
    trigger: r.trigger,
    requested_by: r.requestedByName ?? '',
    started_at: r.startedAt?.toISOString() ?? '',
    finished_at: finished.toISOString(),
    duration: formatDuration(durationMs),
    duration_sec: String(Math.round(durationMs / 1000)),
    target_count: String(r.targetCount),
    failed_count: String(targets.length),
    failed_targets: targets.slice(0, 20).join(', ') + (targets.length > 20 ? ` and ${targets.length - 20} more` : ''),
    error: r.error ?? failed.find((f) => f.error)?.error ?? '',
    output_tail: tails.join('\n'),
    link: `${publicUrl(ctx)}/runs/${r.id}`,
  }
}

/** Whether the rule's conditions hold for this run. */
async function conditionsHold(ctx: AppContext, db: Db, rule: NotificationRuleRow, r: RunRow, status: RunStatus): Promise<boolean> {
  const c = rule.conditions
  if (c.job_ids?.length && !c.job_ids.includes(r.jobId)) return false
  if (c.schedule_ids?.length && !(r.trigger === 'schedule' && r.requestedBy && c.schedule_ids.includes(r.requestedBy))) return false
  if (c.min_duration_sec !== undefined) {
    const ms = r.startedAt ? (r.finishedAt ?? ctx.clock()).getTime() - r.startedAt.getTime() : 0
    if (ms < c.min_duration_sec * 1000) return false
  }
  if (c.job_tags?.length) {
    const tags = (await definitionOf(db, r.jobId, r.jobVersion)).tags
    if (!c.job_tags.some((t) => tags.includes(t))) return false
  }
  if (c.target_selector) {
    const { ids } = await resolveSelector(db, c.target_selector)
    if (!ids.length) return false
    const hit = rowsOf<{ n: number }>(await db.execute(sql`select count(*)::int as n from run_target where run_id = ${r.id} and target_id = any(${uuidArray(ids)})`))
    if (!Number(hit[0]?.n)) return false
  }
  if (c.only_on_change) {
    const [prev] = rowsOf<{ status: RunStatus }>(
      await db.execute(sql`
        select status from run where job_id = ${r.jobId} and id <> ${r.id} and finished_at is not null and status <> 'cancelled'
        order by finished_at desc limit 1`),
    )
    const now = outcome(status)
    // The first failure, and the recovery after one; never a success after a success.
    if (prev ? outcome(prev.status) === now : now !== 'failure') return false
  }
  return true
}

const severityOf = (status: RunStatus): Message['severity'] => (status === 'succeeded' ? 'success' : status === 'cancelled' || status === 'skipped' ? 'info' : 'error')

/** A run ended (called in the transaction that ends it): its events go through the rules into the outbox. */
export async function notifyRunEnded(ctx: AppContext, db: Db, r: RunRow, status: RunStatus): Promise<number> {
  const ended = { ...r, status, finishedAt: r.finishedAt ?? ctx.clock() }
  // A success settles the job's waiting escalations.
  if (status === 'succeeded') {
    await db
      .update(notificationEscalation)
      .set({ status: 'resolved', doneAt: ctx.clock() })
      .where(and(eq(notificationEscalation.jobId, r.jobId), eq(notificationEscalation.status, 'waiting')))
  }
  const events = runEventsFor(status).filter((e) => e !== 'step.failed')
  const rules = await activeRules(db, events)
  if (!rules.length) return 0
  let fields: MessageFields | undefined
  let queued = 0
  for (const rule of rules) {
    // One message per rule: the most specific of its events that this end raised.
    const event = events.filter((e) => rule.events.includes(e)).sort((a, b) => (a === 'run.finished' ? 1 : b === 'run.finished' ? -1 : 0))[0]!
    queued += await forRule(ctx, db, rule, event, `run:${r.id}`, async (tx) => {
      if (!(await conditionsHold(ctx, tx, rule, ended, status))) return 0
      fields ??= await runFields(ctx, tx, ended, status)
      const n = await deliverToRule(ctx, tx, rule, { ...fields, event, severity: severityOf(status) }, { key: `run:${r.id}:${event}`, runId: r.id })
      if (rule.escalation && outcome(status) === 'failure') {
        await tx
          .insert(notificationEscalation)
          .values({ ruleId: rule.id, runId: r.id, jobId: r.jobId, dueAt: new Date(ctx.clock().getTime() + rule.escalation.after_sec * 1000) })
          .onConflictDoNothing()
      }
      return n
    })
  }
  return queued
}

/** Step verdicts just written (in their transaction): the failed ones raise `step.failed`. */
export async function notifyStepsEnded(ctx: AppContext, db: Db, ended: { id: string; run_id: string; status: RunStatus }[]): Promise<number> {
  const failed = ended.filter((e) => FAILURE_STATUSES.includes(e.status) && e.status !== 'cancelled')
  if (!failed.length) return 0
  let queued = 0
  for (const runId of new Set(failed.map((f) => f.run_id))) {
    const [r] = await db.select().from(run).where(eq(run.id, runId))
    if (r) queued += await notifyStepsFailed(ctx, db, r, failed.filter((f) => f.run_id === runId).map((f) => f.id))
  }
  return queued
}

/** Failed step runs, for rules on `step.failed`: once per step run. */
async function notifyStepsFailed(ctx: AppContext, db: Db, r: RunRow, stepRunIds: string[]): Promise<number> {
  if (!stepRunIds.length) return 0
  const rules = await activeRules(db, ['step.failed'])
  if (!rules.length) return 0
  const steps = rowsOf<{ id: string; step_id: string; target_name: string | null; status: RunStatus; error: string | null }>(
    await db.execute(sql`select id, step_id, target_name, status, error from step_run where id = any(${uuidArray(stepRunIds)})`),
  )
  // Each step's fields (its output read once), only when some rule wants them.
  const fieldsOf = new Map<string, Promise<MessageFields>>()
  const stepFields = (s: (typeof steps)[number]) => {
    let f = fieldsOf.get(s.id)
    if (!f) {
      f = outputTail(db, s.id).then((tail) => ({
        event: 'step.failed',
        severity: 'error',
        job_name: r.jobName,
        job_id: r.jobId,
        run_id: r.id,
        status: s.status,
        step_name: ` (step ${s.step_id}${s.target_name ? ` on ${s.target_name}` : ''})`,
        target_name: s.target_name ?? '',
        error: s.error ?? '',
        output_tail: tail,
        link: `${publicUrl(ctx)}/runs/${r.id}`,
      }))
      fieldsOf.set(s.id, f)
    }
    return f
  }
  let queued = 0
  for (const rule of rules) {
    queued += await forRule(ctx, db, rule, 'step.failed', `run:${r.id}`, async (tx) => {
      if (!(await conditionsHold(ctx, tx, { ...rule, conditions: { ...rule.conditions, only_on_change: false, min_duration_sec: undefined } }, r, r.status))) return 0
      let n = 0
      for (const s of steps) n += await deliverToRule(ctx, tx, rule, await stepFields(s), { key: `step:${s.id}:step.failed`, runId: r.id })
      return n
    })
  }
  return queued
}

/** The last lines a failed step wrote (stderr, else stdout), as stored: secrets already masked. */
async function outputTail(db: Db, stepRunId: string): Promise<string> {
  const text = (await readOutputText(db, stepRunId, 'stderr', 16_384)) || (await readOutputText(db, stepRunId, 'stdout', 16_384))
  return text.trimEnd().split('\n').slice(-10).join('\n')
}

/** Escalations whose time came with no success since: sent once, by whichever controller gets them. */
export async function sendDueEscalations(ctx: AppContext, limit = 100): Promise<number> {
  return ctx.db.transaction(async (tx) => {
    const db = tx as unknown as Db
    const due = rowsOf<{ rule_id: string; run_id: string }>(
      await db.execute(sql`
        select rule_id, run_id from notification_escalation where status = 'waiting' and due_at <= ${ctx.clock().toISOString()}::timestamptz
        order by due_at for update skip locked limit ${limit}`),
    )
    let queued = 0
    for (const e of due) {
      await db
        .update(notificationEscalation)
        .set({ status: 'sent', doneAt: ctx.clock() })
        .where(and(eq(notificationEscalation.ruleId, e.rule_id), eq(notificationEscalation.runId, e.run_id)))
      const [rule] = await db.select().from(notificationRule).where(eq(notificationRule.id, e.rule_id))
      const [r] = await db.select().from(run).where(eq(run.id, e.run_id))
      if (!rule?.escalation || !r) continue
      const fields = { ...(await runFields(ctx, db, r, r.status)), event: 'run.failed', severity: 'critical' as const, escalation: `Escalation (no success within ${formatDuration(rule.escalation.after_sec * 1000)}): ` }
      const target = { ...rule, channelIds: rule.escalation.channel_ids, userIds: rule.escalation.user_ids }
      queued += await deliverToRule(ctx, db, target, fields, { key: `escalation:${e.run_id}`, runId: e.run_id })
    }
    return queued
  })
}

/** The fields a run's end would give templates (for the rule preview). */
export async function previewFields(ctx: AppContext, r: RunRow, event?: string): Promise<MessageFields> {
  const fields = await runFields(ctx, ctx.db, r, r.status)
  return { ...fields, event: event ?? runEventsFor(r.status).at(-1)!, severity: severityOf(r.status) }
}
