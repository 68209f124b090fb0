import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { z } from 'zod'
import { actorOf, type Actor, type Principal } from '../auth/principal.ts'
import type { AppContext } from '../context.ts'
import { sealSecret } from '../crypto/secret-box.ts'
import { isUuid, uuidArray, type Db } from '../db/client.ts'
import { stepType } from '../executors/registry.ts'
import { AppError, ValidationError } from '../errors.ts'
import { resolveParameters, type JobDefinition, type StepDef } from '../jobs/definition.ts'
import type { JobRow } from '../jobs/jobs.sql.ts'
import { getJobRow, getJobVersion } from '../jobs/service.ts'
import { hasTemplate, renderTemplate } from '../jobs/template.ts'
import { windowsCovering } from '../scheduler/maintenance.ts'
import { resolveSelector } from '../selectors/compile.ts'
import { target, type TargetRow } from '../targets/targets.sql.ts'
import { advanceRun } from './coordinator.ts'
import { run, runParamsAad, runTarget, stepRun, type RunTrigger, type TargetSnapshot, type Transport } from './runs.sql.ts'

/*
 * Starting a run: parameters checked, targets resolved and frozen, one step run per (step,
 * target) written in one transaction — so the run's whole shape exists before anything executes
 * and every piece of work is accounted for from the start.
 */

export const MAX_RUN_TARGETS = 20_000

export const RunRequest = z
  .object({
    parameters: z.record(z.string(), z.unknown()).default({}),
    /** A selector, or a list of target ids/names; default: the job's target selection. */
    targets: z.union([z.string().trim().min(1).max(4096), z.array(z.string().trim().min(1).max(300)).min(1).max(MAX_RUN_TARGETS)]).optional(),
  })
  .strict()
export type RunRequest = z.output<typeof RunRequest>

export interface ResolvedStep {
  step: StepDef
  index: number
  /** Target ids in fan-out order, or [null] for a step that runs once without a target. */
  targets: (string | null)[]
}

export interface ResolvedRun {
  definition: JobDefinition
  parameters: Record<string, string | number | boolean>
  selector: string | null
  steps: ResolvedStep[]
  targets: TargetRow[]
}

/**
 * A request's explicit target list (ids or names), in the order given: every entry must name an
 * enabled target. A list is not turned into a selector — selectors are capped at 100 terms, and a
 * retry names every target that did not succeed.
 */
async function explicitTargets(db: Db, refs: string[]): Promise<string[]> {
  const ids = refs.filter(isUuid).map((r) => r.toLowerCase())
  const names = refs.filter((r) => !isUuid(r)).map((r) => r.toLowerCase())
  const rows = await db
    .select({ id: target.id, name: target.name, enabled: target.enabled })
    .from(target)
    .where(sql`${target.id} = any(${uuidArray(ids)}) or lower(${target.name}) in (select jsonb_array_elements_text(${JSON.stringify(names)}::jsonb))`)
  const byRef = new Map<string, (typeof rows)[number]>()
  for (const r of rows) {
    byRef.set(r.id, r)
    byRef.set(r.name.toLowerCase(), r)
  }
  const problems: { path: string; message: string }[] = []
  const out: string[] = []
  refs.forEach((ref, i) => {
    const row = byRef.get(ref.toLowerCase())
    if (!row) problems.push({ path: `targets[${i}]`, message: `no target "${ref}"` })
    else if (!row.enabled) problems.push({ path: `targets[${i}]`, message: `target ${row.name} is disabled` })
    else if (!out.includes(row.id)) out.push(row.id)
  })
  if (problems.length) throw new ValidationError(`cannot run: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems)
  return out
}

function renderSelector(selector: string, params: Record<string, unknown>, path: string): string {
  if (!hasTemplate(selector)) return selector
  try {
    return renderTemplate(selector, { params, target: null, steps: {}, secrets: {} })
  } catch (err) {
    throw new ValidationError(`${path}: ${(err as Error).message}`, [{ path, message: (err as Error).message }])
  }
}

/**
 * Parameters and targets of a run, before anything is written (also what a plan shows). `cache`
 * (selector → target ids) may be shared by the runs of one batch, resolved in one transaction.
 */
export async function resolveRun(ctx: AppContext, definition: JobDefinition, request: RunRequest, cache = new Map<string, string[]>()): Promise<ResolvedRun> {
  const parameters = resolveParameters(definition.parameters, request.parameters)
  const explicit = Array.isArray(request.targets) ? await explicitTargets(ctx.db, request.targets) : undefined
  const runSelector = typeof request.targets === 'string' ? request.targets : explicit ? null : definition.targets ? renderSelector(definition.targets, parameters, 'targets') : null
  const resolve = async (selector: string, path: string): Promise<string[]> => {
    const cached = cache.get(selector)
    if (cached) return cached
    try {
      const { ids } = await resolveSelector(ctx.db, selector)
      cache.set(selector, ids)
      return ids
    } catch (err) {
      if (err instanceof ValidationError) throw new ValidationError(`${path}: ${err.message}`, [{ path, message: err.message }])
      throw err
    }
  }
  const steps: ResolvedStep[] = []
  const problems: { path: string; message: string }[] = []
  for (const [index, step] of definition.steps.entries()) {
    const path = `steps[${index}]`
    const info = stepType(step.type)
    const selector = step.target ? renderSelector(step.target, parameters, `${path}.target`) : runSelector
    const ids = step.target || !explicit ? (selector ? await resolve(selector, step.target ? `${path}.target` : 'targets') : []) : explicit
    if (ids.length === 0 && info?.needsTarget) {
      problems.push({ path, message: selector ? `the selection "${selector}" matches no enabled target` : `step "${step.id}" (${step.type}) needs targets: give the run targets or the job a target selection` })
    }
    steps.push({ step, index, targets: ids.length ? ids : [null] })
  }
  if (problems.length) throw new ValidationError(`cannot run: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems)
  const ids = [...new Set(steps.flatMap((s) => s.targets).filter((t): t is string => t !== null))]
  if (ids.length > MAX_RUN_TARGETS) throw new ValidationError(`a run is limited to ${MAX_RUN_TARGETS} targets; the selection has ${ids.length}`)
  const rows = ids.length ? await ctx.db.select().from(target).where(sql`${target.id} = any(${uuidArray(ids)})`) : []
  const byId = new Map(rows.map((r) => [r.id, r]))
  // A target deleted since it was selected is left out (never a step run without its frozen target).
  for (const s of steps) if (s.targets[0] !== null) s.targets = s.targets.filter((id) => id !== null && byId.has(id))
  return { definition, parameters, selector: runSelector, steps, targets: ids.map((id) => byId.get(id)).filter((r): r is TargetRow => r !== undefined) }
}

export function transportOf(t: TargetRow): { transport: Transport; agentId: string | null } {
  const c = t.connection
  if (c.type === 'agent') return { transport: 'agent', agentId: c.agent_id }
  return { transport: c.type, agentId: null }
}

/** The transport a step uses on a target: controller-side steps run in the controller whatever the target. */
export function stepTransport(step: StepDef, t: TargetRow | undefined): { transport: Transport; agentId: string | null } {
  const route = stepType(step.type)?.route
  if (route?.kind === 'controller' && route.transport && t) return { transport: route.transport, agentId: null }
  if (!t || !route || route.kind === 'controller') return { transport: 'controller', agentId: null }
  if (route.kind === 'transport') return { transport: route.transport, agentId: null }
  return transportOf(t)
}

export function targetSnapshot(t: TargetRow): TargetSnapshot {
  return { id: t.id, name: t.name, address: t.address, os_type: t.osType, tags: t.tags, facts: t.facts ?? {}, connection: t.connection }
}

export interface LaunchOptions {
  trigger: RunTrigger
  retryOf?: string
  /** A dependency's run: the upstream run that started it. */
  triggeredByRun?: string
  /** Overrides the job's `timeout_sec` (a dependency's own timeout). */
  timeoutSec?: number
  /** For a retry: the exact (step, target) pairs to run instead of resolving selectors again. */
  only?: { stepIndex: number; targetId: string | null }[]
  version?: number
  /** Who the run is recorded as requested by, when not the principal (a schedule). */
  requestedBy?: Actor
  /**
   * Write the run in this (caller's) transaction, so it commits together with the caller's rows
   * (a schedule's fire). The run is not advanced: after commit the caller calls `advanceRun`.
   */
  tx?: Db
  /**
   * A manual run: `check` refuses (409) a run whose targets an open maintenance window covers;
   * `override` runs anyway and reports the windows overridden (for the audit record).
   */
  maintenance?: 'check' | 'override'
}

/** Creates a run (202 material): everything is written at once, then the coordinator starts it. */
export async function launchRun(
  outer: AppContext,
  principal: Principal | undefined,
  jobId: string,
  request: RunRequest,
  opts: LaunchOptions,
): Promise<{ runId: string; targetCount: number; maintenanceOverridden?: { id: string; name: string }[] }> {
  // In the caller's transaction every read goes through it too (PGlite has one connection).
  const ctx = opts.tx ? { ...outer, db: opts.tx } : outer
  const jobRow = await getJobRow(ctx.db, jobId)
  const version = opts.version ?? jobRow.currentVersion
  const definition = (await getJobVersion(ctx.db, jobId, version)).definition
  assertLaunchable(jobRow, opts.trigger)
  const resolved = await resolveRun(ctx, definition, request)
  const overridden = opts.maintenance ? await checkMaintenance(ctx, resolved, opts.maintenance) : undefined
  if (opts.only) {
    const wanted = new Set(opts.only.map((o) => `${o.stepIndex}:${o.targetId ?? ''}`))
    for (const s of resolved.steps) s.targets = s.targets.filter((t) => wanted.has(`${s.index}:${t ?? ''}`))
  }
  const runId = randomUUID()
  const rows = runRows(ctx, resolved, { runId, jobId, version, trigger: opts.trigger, retryOf: opts.retryOf, triggeredByRun: opts.triggeredByRun, timeoutSec: opts.timeoutSec, actor: opts.requestedBy ?? actorOf(principal), now: ctx.clock() })
  const write = async (db: Db) => {
    await db.insert(run).values(rows.run)
    for (let i = 0; i < rows.targets.length; i += 1000) await db.insert(runTarget).values(rows.targets.slice(i, i + 1000))
    for (let i = 0; i < rows.steps.length; i += 1000) await db.insert(stepRun).values(rows.steps.slice(i, i + 1000))
  }
  if (opts.tx) {
    await write(opts.tx)
    return { runId, targetCount: resolved.targets.length }
  }
  await ctx.db.transaction((tx) => write(tx as unknown as Db))
  await advanceRun(ctx, runId)
  return { runId, targetCount: resolved.targets.length, ...(overridden?.length ? { maintenanceOverridden: overridden } : {}) }
}

/** A disabled job launches nothing but retries of its runs. */
export function assertLaunchable(jobRow: Pick<JobRow, 'name' | 'enabled'>, trigger: LaunchOptions['trigger']): void {
  if (!jobRow.enabled && trigger !== 'retry') throw new AppError('CONFLICT', `job ${jobRow.name} is disabled`)
}

export interface RunIdentity {
  runId: string
  jobId: string
  version: number
  trigger: LaunchOptions['trigger']
  retryOf?: string | undefined
  triggeredByRun?: string | undefined
  timeoutSec?: number | undefined
  actor: Actor
  now: Date
}

export interface RunRows {
  run: typeof run.$inferInsert
  targets: (typeof runTarget.$inferInsert)[]
  steps: (typeof stepRun.$inferInsert)[]
}

/** The rows a resolved run is written as (run, frozen targets, one queued step run per step and target); secret parameters sealed. */
const timeoutSec = (definition: JobDefinition, id: RunIdentity) => id.timeoutSec ?? definition.timeout_sec

export function runRows(ctx: Pick<AppContext, 'keyring'>, resolved: ResolvedRun, id: RunIdentity): RunRows {
  const { runId, now, actor } = id
  const definition = resolved.definition
  const secretNames = definition.parameters.filter((p) => p.type === 'secret').map((p) => p.name)
  const shown = { ...resolved.parameters }
  const secrets: Record<string, unknown> = {}
  for (const name of secretNames) {
    if (shown[name] !== undefined && shown[name] !== '') secrets[name] = shown[name]
    if (shown[name] !== undefined) shown[name] = '****'
  }
  const byId = new Map(resolved.targets.map((t) => [t.id, t]))
  return {
    run: {
      id: runId,
      jobId: id.jobId,
      jobVersion: id.version,
      jobName: definition.name,
      status: 'queued',
      parameters: shown,
      secretParams: Object.keys(secrets).length ? sealSecret(ctx.keyring, JSON.stringify(secrets), runParamsAad(runId)) : null,
      selector: resolved.selector,
      trigger: id.trigger,
      retryOf: id.retryOf ?? null,
      triggeredByRun: id.triggeredByRun ?? null,
      // A job with a concurrency cap admits its runs one by one in the coordinator.
      admitted: !definition.max_concurrent_runs,
      requestedBy: actor.id,
      requestedByName: actor.name,
      createdAt: now,
      deadline: timeoutSec(definition, id) ? new Date(now.getTime() + timeoutSec(definition, id)! * 1000) : null,
      targetCount: resolved.targets.length,
    },
    targets: resolved.targets.map((t, position) => ({ runId, targetId: t.id, position, name: t.name, snapshot: targetSnapshot(t), ...transportOf(t) })),
    steps: resolved.steps.flatMap((s) =>
      s.targets.map((targetId) => {
        const t = targetId ? byId.get(targetId) : undefined
        return {
          id: randomUUID(),
          runId,
          stepIndex: s.index,
          stepId: s.step.id,
          stepType: s.step.type,
          targetId,
          targetName: t?.name ?? null,
          status: 'queued' as const,
          availableAt: now,
          ...stepTransport(s.step, t),
        }
      }),
    ),
  }
}

/** Open maintenance windows covering the run's targets: a 409 naming them, unless overridden. */
async function checkMaintenance(ctx: AppContext, resolved: ResolvedRun, mode: 'check' | 'override'): Promise<{ id: string; name: string }[]> {
  const covering = await windowsCovering(ctx, resolved.targets.map((t) => t.id), ctx.clock())
  const windows = covering.map((c) => ({ id: c.window.id, name: c.window.name, ends_at: c.open.end.toISOString() }))
  if (windows.length && mode === 'check') {
    throw new AppError('CONFLICT', `maintenance window ${windows.map((w) => `"${w.name}"`).join(', ')} covers this run's targets; send "override_maintenance": true to run anyway`, [
      { path: 'override_maintenance', message: 'required to run inside a maintenance window', windows },
    ])
  }
  return windows.map(({ id, name }) => ({ id, name }))
}
