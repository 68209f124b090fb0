import { and, eq, lt, sql } from 'drizzle-orm'
import type { AppContext } from '../context.ts'
import { credential } from '../credentials/credentials.sql.ts'
import { openCredential, type OpenedCredential } from '../credentials/service.ts'
import { SECRET_FIELDS } from '../credentials/types.ts'
import { openSecret } from '../crypto/secret-box.ts'
import { isUuid } from '../db/client.ts'
import { ValidationError } from '../errors.ts'
import type { CopyInput, ExecInput } from '../executors/exec-input.ts'
import { stepType, type StepRoute } from '../executors/registry.ts'
import { sshCopy, sshExec } from '../executors/ssh/index.ts'
import { winrmCopy, winrmExec } from '../executors/winrm/index.ts'
import { parseWith } from '../http/validate.ts'
import type { ExecutionContext, StepOutcome } from '../executors/types.ts'
import type { JobDefinition, StepDef } from '../jobs/definition.ts'
import { renderDeep, secretForms, templateReferences, type TemplateScope } from '../jobs/template.ts'
import type { TargetRow } from '../targets/targets.sql.ts'
import { agentStep } from './agent-step.ts'
import { SecretMasker } from '../../../proto/src/masking.ts'
import { OutputRows, StepOutputWriter } from './output-sink.ts'
import { readOutputText } from './output.ts'
import { runParamsAad, stepRun, type RunRow, type StepRunRow, type TargetSnapshot } from './runs.sql.ts'

/*
 * Runs one claimed step run: renders its inputs for its target (parameters, earlier steps on
 * that target, credential references), records them with secrets masked, and hands them to the
 * transport or executor. Every secret value it touches is added to the run's masker first.
 */

export interface ExecuteDeps {
  ctx: AppContext
  rows: OutputRows
}

export type Outcome = StepOutcome & { outputBytes?: number; truncated?: boolean; rendered?: unknown }

const STEP_REF_OUTPUT_BYTES = 1024 * 1024

/** `takenOver`: the step run was claimed by a controller that stopped; its agent assignment may exist already. */
export async function executeStepRun(deps: ExecuteDeps, row: StepRunRow, snapshot: TargetSnapshot | null, definition: JobDefinition, runRow: RunRow, signal: AbortSignal, takenOver = false): Promise<Outcome> {
  const { ctx } = deps
  const step = definition.steps[row.stepIndex]
  const info = stepType(row.stepType)
  if (!step || !info) return { status: 'system_error', error: `step ${row.stepId} (${row.stepType}) is not known to this controller` }
  const masker = new SecretMasker()
  const params: Record<string, unknown> = { ...runRow.parameters }
  if (runRow.secretParams) {
    const secrets = JSON.parse(openSecret(ctx.keyring, runRow.secretParams, runParamsAad(runRow.id)).toString('utf8')) as Record<string, string>
    for (const [name, value] of Object.entries(secrets)) {
      params[name] = value
      addSecret(masker, value)
    }
  }
  const target = snapshot ? frozenTarget(snapshot) : null
  const credentials = new Map<string, OpenedCredential>()
  const openCred = async (ref: string): Promise<OpenedCredential> => {
    const key = ref.toLowerCase()
    let opened = credentials.get(key)
    if (!opened) {
      const id = isUuid(ref) ? ref : (await ctx.db.select({ id: credential.id }).from(credential).where(sql`lower(${credential.name}) = ${key}`))[0]?.id
      if (!id) throw new ValidationError(`credential "${ref}" does not exist`)
      opened = await openCredential(ctx, id)
      for (const field of SECRET_FIELDS[opened.type]) addSecret(masker, (opened as Record<string, unknown>)[field])
      credentials.set(key, opened)
    }
    return opened
  }

  let input: unknown
  try {
    const scope = await templateScope(ctx, row, step, params, snapshot, openCred)
    input = parseWith(info.input, renderDeep(step.with, scope), `step ${step.id} input`)
  } catch (err) {
    return { status: 'failed', error: maskText(describe(err), masker) }
  }
  const rendered = maskValue(input, masker)

  const x: ExecutionContext = {
    ctx,
    log: ctx.log.child({ runId: row.runId, stepRunId: row.id }),
    signal,
    timeoutMs: step.timeout_sec * 1000,
    output: new StepOutputWriter(deps.rows, row.id, masker, ctx.config.OPSC_OUTPUT_CAP_BYTES),
    target,
    credential: openCred,
    remember: (handle) => void ctx.db.update(stepRun).set({ remote: handle }).where(eq(stepRun.id, row.id)).catch(() => {}),
  }
  const writer = x.output as StepOutputWriter
  let outcome: Outcome
  try {
    outcome = await route(deps, info.route, row, step, input, x, masker, takenOver)
  } catch (err) {
    outcome = { status: 'system_error', error: describe(err) }
  }
  if (row.transport !== 'agent') Object.assign(outcome, await writer.close())
  // What is stored about the step goes through the same masker as its output (a server may echo a secret back).
  return { ...outcome, error: outcome.error ? maskText(outcome.error, masker) : outcome.error, result: maskValue(outcome.result, masker), rendered }
}

const maskText = (text: string, masker: SecretMasker) => masker.maskAll(Buffer.from(text, 'utf8')).toString('utf8')

async function route(deps: ExecuteDeps, r: StepRoute, row: StepRunRow, step: StepDef, input: unknown, x: ExecutionContext, masker: SecretMasker, takenOver: boolean): Promise<Outcome> {
  if (r.kind === 'controller') return r.executor.run(row.stepType, input, x)
  const action = r.action
  if (row.transport === 'agent') return agentStep(deps.ctx, row, step, action, input as ExecInput | CopyInput, x, masker, takenOver)
  if (row.transport === 'ssh') return action === 'exec' ? sshExec.run('ssh.exec', input as ExecInput, x) : sshCopy.run('ssh.copy', input as CopyInput, x)
  if (row.transport === 'winrm') return action === 'exec' ? winrmExec.run('winrm.exec', input as ExecInput, x) : winrmCopy.run('winrm.copy', input as CopyInput, x)
  return { status: 'system_error', error: `step type ${row.stepType} has no transport for this target` }
}

/** A secret and the forms templates can turn it into (shell- or PowerShell-quoted, JSON-escaped…). */
export function addSecret(masker: SecretMasker, value: unknown): void {
  if (typeof value === 'string') for (const form of secretForms(value)) masker.add(form)
  else if (value && typeof value === 'object') for (const v of Object.values(value)) addSecret(masker, v)
}

/** Every string inside a JSON-like value masked (walking it, so JSON escaping cannot hide a secret). */
export function maskValue(value: unknown, masker: SecretMasker): unknown {
  if (typeof value === 'string') return maskText(value, masker)
  if (Array.isArray(value)) return value.map((v) => maskValue(v, masker))
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskValue(v, masker)]))
  return value
}

export function describe(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  return message.length > 2000 ? `${message.slice(0, 2000)}…` : message
}

/** The target as the run froze it, in the shape executors take. */
function frozenTarget(s: TargetSnapshot): TargetRow {
  return {
    id: s.id,
    name: s.name,
    address: s.address,
    osType: s.os_type,
    description: null,
    enabled: true,
    tags: s.tags ?? {},
    connection: s.connection,
    facts: s.facts ?? {},
    factsUpdatedAt: null,
    lastSeenAt: null,
    createdAt: new Date(0),
    updatedAt: new Date(0),
  }
}

/** What the step's templates can see: parameters, its target, earlier steps on the target, referenced credentials. */
async function templateScope(
  ctx: AppContext,
  row: StepRunRow,
  step: StepDef,
  params: Record<string, unknown>,
  target: TargetSnapshot | null,
  openCred: (ref: string) => Promise<OpenedCredential>,
): Promise<TemplateScope> {
  const refs = [...strings(step.with)].flatMap((s) => templateReferences(s))
  const secrets: Record<string, Record<string, string>> = {}
  for (const ref of refs) {
    if (ref.kind !== 'secret') continue
    const opened = (await openCred(ref.credential)) as unknown as Record<string, unknown>
    const value = opened[ref.field]
    if (value === undefined) continue
    ;(secrets[ref.credential] ??= {})[ref.field] = typeof value === 'string' ? value : JSON.stringify(value)
  }
  const steps: TemplateScope['steps'] = {}
  const wanted = new Set(refs.filter((r) => r.kind === 'step').map((r) => (r as { stepId: string }).stepId))
  if (wanted.size) {
    const earlier = await ctx.db
      .select()
      .from(stepRun)
      .where(and(eq(stepRun.runId, row.runId), lt(stepRun.stepIndex, row.stepIndex), row.targetId ? eq(stepRun.targetId, row.targetId) : sql`${stepRun.targetId} is null`))
      .orderBy(stepRun.stepIndex, stepRun.attempt)
    const latest = new Map<string, StepRunRow>()
    for (const e of earlier) latest.set(e.stepId, e)
    for (const [id, e] of latest) {
      if (!wanted.has(id)) continue
      steps[id] = {
        stdout: await readOutputText(ctx.db, e.id, 'stdout', STEP_REF_OUTPUT_BYTES),
        stderr: await readOutputText(ctx.db, e.id, 'stderr', STEP_REF_OUTPUT_BYTES),
        exit_code: e.exitCode,
        status: e.status,
        result: e.result ?? undefined,
      }
    }
  }
  return { params, target, steps, secrets }
}

function* strings(value: unknown): Generator<string> {
  if (typeof value === 'string') yield value
  else if (Array.isArray(value)) for (const v of value) yield* strings(v)
  else if (value && typeof value === 'object') for (const v of Object.values(value)) yield* strings(v)
}

