import { randomUUID } from 'node:crypto'
import { and, eq, sql } from 'drizzle-orm'
import type { AppContext } from '../context.ts'
import { uuidArray, type Db } from '../db/client.ts'
import type { JobDefinition } from '../jobs/definition.ts'
import { jobVersion } from '../jobs/jobs.sql.ts'
import { isFinal, planRun, type Attempt, type Decision, type PlannedStep } from './planner.ts'
import { admit, nextWaiting } from './admission.ts'
import { ensureLockRows, giveUp, heldTargets, lockRows, releaseAll, take } from './target-locks.ts'
import { triggerDependents } from '../jobs/dependencies.ts'
import { notifyRunEnded } from '../notify/run-events.ts'
import { run, runTarget, stepRun, type RunStatus, type StepRunRow } from './runs.sql.ts'

export const WORK_CHANNEL = 'opsc_work'

const definitions = new Map<string, JobDefinition>()

/** Job versions never change: each is read once per process. */
export async function definitionOf(db: Db, jobId: string, version: number): Promise<JobDefinition> {
  const key = `${jobId}:${version}`
  const cached = definitions.get(key)
  if (cached) return cached
  const [row] = await db
    .select({ definition: jobVersion.definition })
    .from(jobVersion)
    .where(and(eq(jobVersion.jobId, jobId), eq(jobVersion.version, version)))
  if (!row) throw new Error(`job version ${key} is missing`)
  if (definitions.size > 1000) definitions.clear()
  definitions.set(key, row.definition)
  return row.definition
}

const runPositions = new Map<string, Map<string, number>>()

/** A run's frozen target order never changes: read once per process (advances are frequent in a big fan-out). */
async function positionsOf(db: Db, runId: string): Promise<Map<string, number>> {
  const cached = runPositions.get(runId)
  if (cached) return cached
  const rows = await db.select({ targetId: runTarget.targetId, position: runTarget.position }).from(runTarget).where(eq(runTarget.runId, runId))
  const positions = new Map(rows.map((t) => [t.targetId, t.position]))
  if (runPositions.size > 1000) runPositions.clear()
  runPositions.set(runId, positions)
  return positions
}

export function plannedSteps(definition: JobDefinition): PlannedStep[] {
  return definition.steps.map((s, index) => ({ index, runIf: s.run_if, continueOnError: s.continue_on_error, retries: s.retries, retryBackoffSec: s.retry_backoff_sec }))
}

export interface Advanced {
  ready: number
  status: RunStatus
  /** Other runs this advance let go on (a target lock handed over, a concurrency slot freed, a dependency triggered). */
  wake: string[]
}

/**
 * Applies the planner to one run under its row lock: readies what may start, ends what is skipped
 * or stopped, adds retry attempts, and moves the run's status. One UPDATE for all step runs, so
 * the event trigger's counter lock is taken once and last (no lock-order deadlocks with claims).
 * The runs it let go on are advanced after commit.
 */
export async function advanceRun(ctx: AppContext, runId: string): Promise<Advanced | undefined> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const result = await ctx.db.transaction((tx) => advanceInTx(ctx, tx as unknown as Db, runId))
    if (result && 'missingLockRows' in result) {
      await ensureLockRows(ctx.db, result.missingLockRows)
      continue
    }
    if (result?.wake.length) {
      const engine = ctx.runEngine
      for (const id of new Set(result.wake)) {
        if (engine) void engine.advance(id)
        else await advanceRun(ctx, id).catch((err) => ctx.log.warn({ err, runId: id }, 'runs.advance_failed'))
      }
    }
    return result
  }
  throw new Error(`run ${runId}: target lock rows keep disappearing`)
}

async function advanceInTx(ctx: AppContext, db: Db, runId: string): Promise<Advanced | { missingLockRows: string[] } | undefined> {
  const [r] = await db.select().from(run).where(eq(run.id, runId)).for('no key update')
  if (!r || isFinal(r.status)) return undefined
  const definition = await definitionOf(db, r.jobId, r.jobVersion)
  const now = ctx.clock()
  const stopping = r.cancelRequestedAt ? 'cancelled' : r.deadline && r.deadline.getTime() <= now.getTime() ? 'timed_out' : undefined
  const cap = definition.max_concurrent_runs ?? null
  if (!r.admitted && !stopping && cap !== null) {
    if (!(await admit(db, r, cap))) return { ready: 0, status: r.status, wake: [] }
    Object.assign(r, { admitted: true, waitingFor: null })
  }
  const attempts = (await db
    .select({ id: stepRun.id, stepIndex: stepRun.stepIndex, targetId: stepRun.targetId, attempt: stepRun.attempt, status: stepRun.status, ready: stepRun.ready, finishedAt: stepRun.finishedAt })
    .from(stepRun)
    .where(eq(stepRun.runId, runId))) as Attempt[]
  const locking = definition.lock === 'target' && !stopping
  let held = new Set<string>()
  let blocked: Set<string> | undefined
  if (locking) {
    const pending = new Set(attempts.filter((a) => a.targetId !== null && !isFinal(a.status)).map((a) => a.targetId!))
    const missing = await lockRows(db, [...pending, ...(await heldTargets(db, runId))])
    if (missing.length) return { missingLockRows: missing }
    held = await heldTargets(db, runId)
    for (const t of await take(db, runId, [...pending].filter((t) => !held.has(t)))) held.add(t)
    blocked = new Set([...pending].filter((t) => !held.has(t)))
  }
  const positions = await positionsOf(db, runId)
  const fan = definition.fan_out
  const decision = planRun(
    plannedSteps(definition),
    attempts,
    positions,
    { strategy: fan.strategy, maxParallel: fan.max_parallel, failureCount: fan.failure_count, failurePercent: fan.failure_percent, backoffMultiplier: definition.retry.backoff_multiplier, stopping, blocked },
    now,
    r.status,
  )
  const changes = [
    ...decision.ready.map((id) => sql`(${id}::uuid, 'queued'::text, true, null::text)`),
    ...decision.end.map((e) => sql`(${e.id}::uuid, ${e.status}::text, false, ${e.reason}::text)`),
  ]
  if (changes.length) {
    await db.execute(sql`
      update ${stepRun} s set status = v.status, ready = v.ready, error = coalesce(v.error, s.error),
        finished_at = case when v.status <> 'queued' then ${now.toISOString()}::timestamptz else s.finished_at end
      from (values ${sql.join(changes, sql`, `)}) as v(id, status, ready, error)
      where s.id = v.id and s.status = 'queued'`)
  }
  if (decision.retry.length) {
    const template = new Map(attempts.map((a) => [`${a.targetId ?? ''}:${a.stepIndex}`, a.id]))
    const sources = await db
      .select()
      .from(stepRun)
      .where(sql`${stepRun.id} = any(${uuidArray(decision.retry.map((x) => template.get(`${x.targetId ?? ''}:${x.stepIndex}`)!))})`)
    const byKey = new Map(sources.map((s) => [`${s.targetId ?? ''}:${s.stepIndex}`, s]))
    await db.insert(stepRun).values(
      decision.retry.map((x) => {
        const src = byKey.get(`${x.targetId ?? ''}:${x.stepIndex}`)!
        return retryRow(src, x.attempt, x.availableAt)
      }),
    )
  }
  const status = decision.runStatus ?? r.status
  const final = isFinal(status)
  const wake: string[] = []
  if (locking && !final) wake.push(...(await giveUp(db, runId, targetsDone(attempts, decision, held))))
  const waitingFor = blocked?.size && !final ? 'target_lock' : r.admitted || final ? null : r.waitingFor
  if (decision.runStatus || waitingFor !== r.waitingFor) {
    await db
      .update(run)
      .set({
        waitingFor,
        ...(decision.runStatus ? { status: decision.runStatus } : {}),
        ...(decision.runStatus === 'running' && !r.startedAt ? { startedAt: now } : {}),
        ...(final ? { finishedAt: now } : {}),
      })
      .where(eq(run.id, runId))
  }
  if (final) {
    if (definition.lock === 'target') wake.push(...(await releaseAll(db, runId)))
    if (cap !== null && r.admitted) wake.push(...(await nextWaiting(db, r.jobId, cap)))
    wake.push(...(await triggerDependents(ctx, db, { ...r, status, finishedAt: now })))
    await notifyRunEnded(ctx, db, { ...r, status, finishedAt: now }, status)
  }
  if (decision.ready.length || decision.retry.length) await db.execute(sql`select pg_notify(${WORK_CHANNEL}, '')`)
  return { ready: decision.ready.length, status, wake }
}

/** Held targets whose steps in this run are all over after the decision (no retry coming): free for the next run. */
function targetsDone(attempts: Attempt[], decision: Decision, held: Set<string>): string[] {
  if (held.size === 0) return []
  const ended = new Map(decision.end.map((e) => [e.id, e.status]))
  const busy = new Set<string>()
  for (const a of attempts) {
    if (a.targetId === null) continue
    const status = ended.get(a.id) ?? a.status
    if (!isFinal(status)) busy.add(a.targetId)
  }
  for (const x of decision.retry) if (x.targetId !== null) busy.add(x.targetId)
  return [...held].filter((t) => !busy.has(t))
}

function retryRow(src: StepRunRow, attempt: number, availableAt: Date): typeof stepRun.$inferInsert {
  return {
    id: randomUUID(),
    runId: src.runId,
    stepIndex: src.stepIndex,
    stepId: src.stepId,
    stepType: src.stepType,
    targetId: src.targetId,
    targetName: src.targetName,
    attempt,
    status: 'queued',
    ready: true,
    availableAt,
    transport: src.transport,
    agentId: src.agentId,
  }
}
