import { and, asc, eq, isNull, ne, or, sql } from 'drizzle-orm'
import { appendAudit } from '../audit/service.ts'
import type { Actor } from '../auth/principal.ts'
import type { AppContext } from '../context.ts'
import { openSecret } from '../crypto/secret-box.ts'
import { describeCause, isUuid, uuidArray, type Db } from '../db/client.ts'
import { AppError, ValidationError } from '../errors.ts'
import { assertLaunchable, launchRun } from '../runs/launch.ts'
import { isFinal } from '../runs/planner.ts'
import { run, runParamsAad, type RunRow, type RunStatus } from '../runs/runs.sql.ts'
import { upstreamReads, type DependencyTrigger, type JobDefinition, type ParameterDef, type Problem } from './definition.ts'
import { dependencyFire, jobDependency } from './dependencies.sql.ts'
import { job, jobVersion } from './jobs.sql.ts'
import { getJobRow, getJobVersion } from './service.ts'
import { hasTemplate, renderTemplate } from './template.ts'
import { LOCK } from '../db/locks.ts'

/*
 * Job dependencies: a job's `triggered_by` names upstream jobs whose runs, on ending, start a run
 * of it. Saving a job rewrites its rows of the graph (`job_dependency`, by job id) and refuses
 * cycles; an upstream run's end launches the dependants in the transaction that ends it, once
 * (`dependency_fire`), each in a savepoint so a refused launch is recorded and nothing else fails.
 */

/**
 * `failure` is every way a run can fail — failed, timed_out, agent_lost, interrupted,
 * system_error — but not `cancelled`: an operator stopping a run is not a failure to react to.
 * `any` is every final status, cancelled and skipped included (clean-up after whatever happened).
 */
const FAILURE_OUTCOMES: readonly RunStatus[] = ['failed', 'timed_out', 'agent_lost', 'interrupted', 'system_error']

export function matchesOutcome(on: DependencyTrigger['on'], status: RunStatus): boolean {
  switch (on) {
    case 'success':
      return status === 'succeeded'
    case 'failure':
      return FAILURE_OUTCOMES.includes(status)
    case 'any':
      return isFinal(status)
  }
}

function invalid(problems: Problem[]): ValidationError {
  return new ValidationError(`invalid job definition: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems)
}

interface Upstream {
  id: string
  name: string
  parameters: ParameterDef[]
}

/**
 * Called in a job's save transaction (the job row written, its version not yet): resolves each
 * `triggered_by[i].job` to a live job, checks the parameters it reads, refuses cycles, and rewrites
 * the job's rows of the graph. Returns the definition to store, upstream jobs named by id.
 */
export async function saveDependencies(db: Db, jobId: string, definition: JobDefinition): Promise<JobDefinition> {
  const triggers = definition.triggered_by ?? []
  // Taken before the graph is read: two saves that each close half of a cycle cannot both pass.
  if (triggers.length) await db.execute(sql`select pg_advisory_xact_lock(${LOCK.dependencyGraph})`)
  await db.delete(jobDependency).where(eq(jobDependency.jobId, jobId))
  if (!triggers.length) return definition
  const upstreams = await resolveUpstreams(db, jobId, definition)
  await refuseCycles(db, jobId, definition.name, upstreams)
  const stored = triggers.map((t, i) => ({ ...t, job: upstreams[i]!.id }))
  await db.insert(jobDependency).values(stored.map((trigger) => ({ jobId, upstreamJobId: trigger.job, trigger })))
  return { ...definition, triggered_by: stored }
}

async function resolveUpstreams(db: Db, jobId: string, definition: JobDefinition): Promise<Upstream[]> {
  const triggers = definition.triggered_by ?? []
  const ids = triggers.map((t) => t.job).filter(isUuid)
  const names = triggers.map((t) => t.job.toLowerCase()).filter((r) => !isUuid(r))
  const rows = await db
    .select({ id: job.id, name: job.name, definition: jobVersion.definition })
    .from(job)
    .innerJoin(jobVersion, and(eq(jobVersion.jobId, job.id), eq(jobVersion.version, job.currentVersion)))
    .where(and(isNull(job.deletedAt), or(sql`${job.id} = any(${uuidArray(ids)})`, sql`lower(${job.name}) in (select jsonb_array_elements_text(${JSON.stringify(names)}::jsonb))`)))
  const byRef = new Map<string, Upstream>()
  for (const r of rows) {
    const upstream = { id: r.id, name: r.name, parameters: r.definition.parameters }
    byRef.set(r.id, upstream)
    byRef.set(r.name.toLowerCase(), upstream)
  }
  const problems: Problem[] = []
  const own = new Map(definition.parameters.map((p) => [p.name, p]))
  const seen = new Set<string>()
  const out: Upstream[] = []
  triggers.forEach((t, i) => {
    const path = `triggered_by[${i}].job`
    const ref = t.job.toLowerCase()
    const upstream = byRef.get(ref)
    if (ref === jobId || ref === definition.name.toLowerCase() || upstream?.id === jobId) {
      problems.push({ path, message: `a job cannot be triggered by itself (would make a cycle: ${definition.name} → ${definition.name})` })
    } else if (!upstream) problems.push({ path, message: `no job "${t.job}"` })
    else if (seen.has(upstream.id)) problems.push({ path, message: `job "${upstream.name}" is listed twice` })
    else {
      seen.add(upstream.id)
      out.push(upstream)
      problems.push(...readProblems(t, i, upstream, own))
    }
  })
  if (problems.length) throw invalid(problems)
  return out
}

/** The upstream parameters a trigger's templates read must exist, and a secret may only fill a secret. */
function readProblems(t: DependencyTrigger, i: number, upstream: Upstream, own: Map<string, ParameterDef>): Problem[] {
  const theirs = new Map(upstream.parameters.map((p) => [p.name, p]))
  const problems: Problem[] = []
  for (const [name, value] of Object.entries(t.parameters)) {
    for (const read of upstreamReads(value).params) {
      const path = `triggered_by[${i}].parameters.${name}`
      const source = theirs.get(read)
      if (!source) problems.push({ path, message: `job "${upstream.name}" has no parameter "${read}"` })
      else if (source.type === 'secret' && own.get(name)?.type !== 'secret') {
        problems.push({ path, message: `upstream.params.${read} is a secret parameter of job "${upstream.name}": it can only fill a secret parameter` })
      }
    }
  }
  return problems
}

/** A new edge upstream → job closes a cycle when the job already (transitively) triggers that upstream. */
async function refuseCycles(db: Db, jobId: string, jobName: string, upstreams: Upstream[]): Promise<void> {
  const edges = await db.select({ from: jobDependency.upstreamJobId, to: jobDependency.jobId }).from(jobDependency).where(ne(jobDependency.jobId, jobId))
  const downstream = new Map<string, string[]>()
  for (const e of edges) downstream.set(e.from, [...(downstream.get(e.from) ?? []), e.to])
  // Breadth first from the job, so the cycle reported is a shortest one.
  const parent = new Map<string, string | null>([[jobId, null]])
  const queue = [jobId]
  while (queue.length) {
    const at = queue.shift()!
    for (const next of downstream.get(at) ?? []) {
      if (parent.has(next)) continue
      parent.set(next, at)
      queue.push(next)
    }
  }
  const cycles: { index: number; path: string[] }[] = []
  upstreams.forEach((u, index) => {
    if (!parent.has(u.id)) return
    const path = [u.id]
    for (let p = parent.get(u.id); p; p = parent.get(p)) path.unshift(p)
    cycles.push({ index, path: [...path, jobId] })
  })
  if (!cycles.length) return
  const ids = [...new Set(cycles.flatMap((c) => c.path))]
  const names = new Map((await db.select({ id: job.id, name: job.name }).from(job).where(sql`${job.id} = any(${uuidArray(ids)})`)).map((r) => [r.id, r.name]))
  names.set(jobId, jobName)
  throw invalid(cycles.map((c) => ({ path: `triggered_by[${c.index}].job`, message: `would make a cycle: ${c.path.map((id) => names.get(id) ?? id).join(' → ')}` })))
}

/** A deleted job is never triggered: its own rows of the graph go (its runs may still trigger others). */
export async function removeDependencies(db: Db, jobId: string): Promise<void> {
  await db.delete(jobDependency).where(eq(jobDependency.jobId, jobId))
}

export interface DependencyLink {
  job_id: string
  job_name: string
  on: DependencyTrigger['on']
}

/** The jobs that trigger this one, and the live jobs it triggers. */
export async function listDependencies(db: Db, jobId: string): Promise<{ upstream: DependencyLink[]; downstream: DependencyLink[] }> {
  const link = { job_id: job.id, job_name: job.name, trigger: jobDependency.trigger }
  const toLink = (r: { job_id: string; job_name: string; trigger: DependencyTrigger }): DependencyLink => ({ job_id: r.job_id, job_name: r.job_name, on: r.trigger.on })
  const upstream = await db.select(link).from(jobDependency).innerJoin(job, eq(job.id, jobDependency.upstreamJobId)).where(eq(jobDependency.jobId, jobId)).orderBy(sql`lower(${job.name})`)
  const downstream = await db
    .select(link)
    .from(jobDependency)
    .innerJoin(job, and(eq(job.id, jobDependency.jobId), isNull(job.deletedAt)))
    .where(eq(jobDependency.upstreamJobId, jobId))
    .orderBy(sql`lower(${job.name})`)
  return { upstream: upstream.map(toLink), downstream: downstream.map(toLink) }
}

/** What a run's end triggered (run detail's `triggered`). */
export async function firesOf(db: Db, upstreamRunId: string) {
  return db
    .select({ job_id: dependencyFire.jobId, job_name: job.name, status: dependencyFire.status, run_id: dependencyFire.runId, error: dependencyFire.error })
    .from(dependencyFire)
    .innerJoin(job, eq(job.id, dependencyFire.jobId))
    .where(eq(dependencyFire.upstreamRunId, upstreamRunId))
    .orderBy(dependencyFire.createdAt, sql`lower(${job.name})`)
}

/** The upstream run's parameter values: `shown` without its secret parameters, `all` with them opened. */
interface UpstreamValues {
  shown: Record<string, unknown>
  all: Record<string, unknown>
  secretNames: Set<string>
}

const NO_VALUES: UpstreamValues = { shown: {}, all: {}, secretNames: new Set() }

async function upstreamValues(ctx: AppContext, db: Db, upstream: RunRow): Promise<UpstreamValues> {
  const definition = (await getJobVersion(db, upstream.jobId, upstream.jobVersion)).definition
  const secret = upstream.secretParams ? (JSON.parse(openSecret(ctx.keyring, upstream.secretParams, runParamsAad(upstream.id)).toString('utf8')) as Record<string, unknown>) : {}
  const secretNames = new Set([...definition.parameters.filter((p) => p.type === 'secret').map((p) => p.name), ...Object.keys(secret)])
  const shown: Record<string, unknown> = {}
  const all: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(upstream.parameters)) {
    if (secretNames.has(name)) all[name] = secret[name] ?? ''
    else shown[name] = all[name] = value
  }
  return { shown, all, secretNames }
}

/**
 * The dependent run's parameters: with `pass_parameters`, the upstream values of the names this job
 * declares (an upstream secret only into a secret parameter, where launchRun seals it again); then
 * `parameters`, rendered over the upstream run, win.
 */
function dependentParameters(trigger: DependencyTrigger, defs: ParameterDef[], upstream: RunRow, values: UpstreamValues): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const byName = new Map(defs.map((d) => [d.name, d]))
  if (trigger.pass_parameters) {
    for (const d of defs) {
      if (!Object.hasOwn(values.all, d.name) || (values.secretNames.has(d.name) && d.type !== 'secret')) continue
      out[d.name] = values.all[d.name]
    }
  }
  for (const [name, value] of Object.entries(trigger.parameters)) {
    if (typeof value !== 'string' || !hasTemplate(value)) {
      out[name] = value
      continue
    }
    const params = byName.get(name)?.type === 'secret' ? values.all : values.shown
    try {
      out[name] = renderTemplate(value, { params: { upstream: { params, status: upstream.status, run_id: upstream.id, job: upstream.jobName } }, target: null, steps: {}, secrets: {} })
    } catch (err) {
      const message = (err as Error).message
      throw new ValidationError(`parameters.${name}: ${message}`, [{ path: `parameters.${name}`, message }])
    }
  }
  return out
}

const dependencyActor = (upstream: RunRow): Actor => ({ type: 'system', id: upstream.jobId, name: `dependency:${upstream.jobName}` })

interface Due {
  jobId: string
  jobName: string
  trigger: DependencyTrigger
}

/** Launches one dependant in a savepoint: a refusal rolls back only itself and comes back as `error`. */
async function launchDependent(ctx: AppContext, tx: Db, upstream: RunRow, due: Due, values: () => Promise<UpstreamValues>): Promise<{ runId?: string; error?: string }> {
  try {
    return await tx.transaction(async (sp) => {
      const db = sp as unknown as Db
      const row = await getJobRow(db, due.jobId)
      // Checked first, so a disabled job says so rather than what its parameters lack.
      assertLaunchable(row, 'dependency')
      const { definition } = await getJobVersion(db, due.jobId, row.currentVersion)
      // The upstream's sealed values are opened only for a trigger that reads them.
      const reads = due.trigger.pass_parameters || Object.values(due.trigger.parameters).some((v) => typeof v === 'string' && hasTemplate(v))
      const parameters = dependentParameters(due.trigger, definition.parameters, upstream, reads ? await values() : NO_VALUES)
      const opts = { trigger: 'dependency' as const, triggeredByRun: upstream.id, requestedBy: dependencyActor(upstream), tx: db, maintenance: 'check' as const }
      const { runId } = await launchRun(ctx, undefined, due.jobId, { parameters }, due.trigger.timeout_sec ? { ...opts, timeoutSec: due.trigger.timeout_sec } : opts)
      return { runId }
    })
  } catch (err) {
    if (!(err instanceof AppError)) ctx.log.error({ err, upstreamRunId: upstream.id, jobId: due.jobId }, 'dependency.launch_error')
    return { error: err instanceof AppError ? err.message : describeCause(err) }
  }
}

/**
 * Runs of dependent jobs started by `upstream` ending (status final, in the transaction that
 * ends it). Returns the ids of runs launched, for the caller to advance after commit.
 */
export async function triggerDependents(ctx: AppContext, tx: Db, upstream: RunRow): Promise<string[]> {
  if (!isFinal(upstream.status)) {
    // The caller may hand over the row as it was read: its final status is in this transaction.
    const [now] = await tx.select().from(run).where(eq(run.id, upstream.id))
    if (!now || !isFinal(now.status)) return []
    upstream = now
  }
  const final = upstream
  const rows = await tx
    .select({ jobId: jobDependency.jobId, jobName: job.name, trigger: jobDependency.trigger })
    .from(jobDependency)
    .innerJoin(job, and(eq(job.id, jobDependency.jobId), isNull(job.deletedAt)))
    .where(eq(jobDependency.upstreamJobId, final.jobId))
    .orderBy(asc(sql`lower(${job.name})`))
  const due = rows.filter((r) => matchesOutcome(r.trigger.on, final.status))
  let values: Promise<UpstreamValues> | undefined
  const launched: string[] = []
  for (const d of due) {
    // The (upstream run, job) key makes the fire exactly-once: a second advance of the same end finds it taken.
    const [claimed] = await tx
      .insert(dependencyFire)
      .values({ upstreamRunId: final.id, jobId: d.jobId, status: 'failed', createdAt: ctx.clock() })
      .onConflictDoNothing()
      .returning({ jobId: dependencyFire.jobId })
    if (!claimed) continue
    const outcome = await launchDependent(ctx, tx, final, d, () => (values ??= upstreamValues(ctx, tx, final)))
    await tx
      .update(dependencyFire)
      .set({ status: outcome.runId ? 'launched' : 'failed', runId: outcome.runId ?? null, error: outcome.error ?? null })
      .where(and(eq(dependencyFire.upstreamRunId, final.id), eq(dependencyFire.jobId, d.jobId)))
    await appendAudit(
      tx,
      {
        actor: dependencyActor(final),
        action: 'jobs.dependency_trigger',
        resourceType: 'job',
        resourceId: d.jobId,
        outcome: outcome.runId ? 'success' : 'failure',
        summary: { job_name: d.jobName, upstream_job_id: final.jobId, upstream_run_id: final.id, upstream_status: final.status, on: d.trigger.on, run_id: outcome.runId ?? null, error: outcome.error ?? null },
      },
      ctx.clock(),
    )
    ctx.log.info({ upstreamRunId: final.id, jobId: d.jobId, runId: outcome.runId, error: outcome.error }, outcome.runId ? 'dependency.launched' : 'dependency.refused')
    if (outcome.runId) launched.push(outcome.runId)
  }
  return launched
}

/**
 * The order an import saves its definitions in: a job after the jobs of the same import it is
 * triggered by (by name), so they exist when it is saved. A cycle keeps the given order (and is refused).
 */
export function importOrder(definitions: JobDefinition[]): number[] {
  const byName = new Map(definitions.map((d, i) => [d.name.toLowerCase(), i]))
  const order: number[] = []
  const state = new Map<number, 'visiting' | 'done'>()
  const visit = (i: number) => {
    if (state.has(i)) return
    state.set(i, 'visiting')
    for (const t of definitions[i]!.triggered_by ?? []) {
      const j = byName.get(t.job.toLowerCase())
      if (j !== undefined && j !== i) visit(j)
    }
    state.set(i, 'done')
    order.push(i)
  }
  definitions.forEach((_, i) => visit(i))
  return order
}
