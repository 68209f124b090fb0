import { z } from 'zod'
import { stepType, stepTypeNames } from '../executors/registry.ts'
import { ValidationError } from '../errors.ts'
import { issuePath } from '../http/validate.ts'
import { parseSelector } from '../selectors/parse.ts'
import { isUuid } from '../db/client.ts'
import { checkTemplate, hasTemplate, parseTemplate, TemplateError } from './template.ts'

/*
 * A job definition in its normalised form (what GET returns and versions store), and the parser
 * that accepts it, the seed's shorter form (`parameters` as a map of defaults, camelCase step
 * fields, `target` as a target name) and anything in between, reporting every problem at once.
 */

export const PARAMETER_TYPES = ['string', 'number', 'boolean', 'choice', 'secret', 'target_selector'] as const
export type ParameterType = (typeof PARAMETER_TYPES)[number]

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/
const STEP_ID = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/
const RESERVED_PARAMS = new Set(['params', 'target', 'steps', 'secret'])

export const ParameterDef = z
  .object({
    name: z.string().regex(IDENT, 'letters, digits and _, starting with a letter or _ (max 64)').refine((n) => !RESERVED_PARAMS.has(n), 'is a reserved name'),
    type: z.enum(PARAMETER_TYPES).default('string'),
    label: z.string().trim().max(200).optional(),
    description: z.string().trim().max(2000).optional(),
    required: z.boolean().default(false),
    default: z.union([z.string().max(64 * 1024), z.number(), z.boolean()]).optional(),
    /** A regular expression the whole value must match (string, secret). */
    pattern: z.string().max(1000).optional(),
    choices: z.array(z.string().max(1000)).min(1).max(500).optional(),
    min: z.number().optional(),
    max: z.number().optional(),
  })
  .strict()
export type ParameterDef = z.output<typeof ParameterDef>

const RunIf = z.enum(['success', 'failure', 'always'])

/** Fields every step has, besides its type's own. */
const COMMON_STEP_FIELDS = ['id', 'name', 'type', 'description', 'target', 'timeout_sec', 'retries', 'retry_backoff_sec', 'continue_on_error', 'run_if'] as const

const StepCommon = z.object({
  id: z.string().regex(STEP_ID, 'letters, digits, _ and -, starting with a letter or _ (max 64)').optional(),
  name: z.string().trim().min(1).max(200).optional(),
  type: z.string().min(1, 'required'),
  description: z.string().trim().max(2000).optional(),
  /** A target name, a target id, or a selector; default: the run's targets. */
  target: z.string().trim().min(1).max(4096).optional(),
  timeout_sec: z.number().int().min(1).max(7 * 86400).optional(),
  retries: z.number().int().min(0).max(10).optional(),
  retry_backoff_sec: z.number().min(0).max(3600).optional(),
  continue_on_error: z.boolean().default(false),
  run_if: RunIf.default('success'),
})

export interface StepDef {
  id: string
  name: string
  type: string
  description?: string
  target?: string
  timeout_sec: number
  retries: number
  retry_backoff_sec: number
  continue_on_error: boolean
  run_if: z.infer<typeof RunIf>
  /** The type's own fields (command, url, query…), as validated by its input schema. */
  with: Record<string, unknown>
}

const FanOut = z
  .object({
    max_parallel: z.number().int().min(1).max(10_000).default(100),
    strategy: z.enum(['per_target', 'step_by_step']).default('per_target'),
    /** Stop starting targets after this many failed targets … */
    failure_count: z.number().int().min(1).optional(),
    /** … or this percentage of the run's targets. */
    failure_percent: z.number().min(0.01).max(100).optional(),
  })
  .strict()

const RetryPolicy = z
  .object({
    retries: z.number().int().min(0).max(10).default(0),
    backoff_sec: z.number().min(0).max(3600).default(10),
    backoff_multiplier: z.number().min(1).max(10).default(2),
  })
  .strict()

/** Another job whose runs, on finishing with the given outcome, start a run of this job. */
export const DependencyTrigger = z
  .object({
    /** The upstream job: its name or id (stored by id once saved, see jobs/dependencies). */
    job: z.string().trim().min(1, 'required').max(200),
    on: z.enum(['success', 'failure', 'any']).default('success'),
    /** Upstream parameter values passed to this job's parameters of the same name. */
    pass_parameters: z.boolean().default(false),
    /** This job's parameters from templates over the upstream run (`{{ upstream.params.x }}`, `{{ upstream.status }}`). */
    parameters: z.record(z.string(), z.union([z.string().max(64 * 1024), z.number(), z.boolean()])).default({}),
    /** The triggered run's time limit (its deadline), counted from the upstream run's end. */
    timeout_sec: z.number().int().min(1).max(30 * 86400).optional(),
  })
  .strict()
export type DependencyTrigger = z.output<typeof DependencyTrigger>

/** What a dependency's parameter templates may read besides `upstream.params.<name>`. */
const UPSTREAM_FIELDS = ['status', 'run_id', 'job']

/**
 * The upstream parameters a dependency's parameter value reads (`{{ upstream.params.x }}`), and
 * why it is refused: a grammar error, or anything but `upstream.…` and literals.
 */
export function upstreamReads(value: unknown): { params: string[]; problems: string[] } {
  if (typeof value !== 'string' || !hasTemplate(value)) return { params: [], problems: [] }
  let parts
  try {
    parts = parseTemplate(value).parts
  } catch (err) {
    if (err instanceof TemplateError) return { params: [], problems: [err.message] }
    throw err
  }
  const params = new Set<string>()
  const problems = new Set<string>()
  for (const part of parts) {
    if (part.kind !== 'expr' || part.expr.primary.kind === 'literal') continue
    const p = part.expr.primary
    if (p.kind === 'param' && p.name === 'upstream') {
      const [field, name, ...rest] = p.path
      if (field === 'params' && name !== undefined && rest.length === 0) {
        params.add(name)
        continue
      }
      if (field !== undefined && UPSTREAM_FIELDS.includes(field) && name === undefined) continue
    }
    problems.add(`${part.expr.source} at ${part.expr.position}: only upstream.params.<name>, upstream.status, upstream.run_id and upstream.job can be used here`)
  }
  return { params: [...params], problems: [...problems] }
}

/** A dependency's `parameters`: this job's parameters, templates over the upstream run or fixed values of the right type. */
function triggerProblems(t: DependencyTrigger, defs: ParameterDef[], add: (path: (string | number)[], message: string) => void): void {
  const byName = new Map(defs.map((d) => [d.name, d]))
  for (const [name, value] of Object.entries(t.parameters)) {
    const p = byName.get(name)
    if (!p) add(['parameters', name], 'not a parameter of this job')
    else if (typeof value === 'string' && hasTemplate(value)) for (const message of upstreamReads(value).problems) add(['parameters', name], message)
    else if (p.type === 'secret') add(['parameters', name], 'a secret parameter cannot have a fixed value here (it would be stored in the job): pass it from the upstream run')
    else {
      try {
        coerceParameter(p, value)
      } catch (err) {
        add(['parameters', name], (err as Error).message)
      }
    }
  }
}

const JobShape = z
  .object({
    name: z.string().trim().min(1, 'required').max(200),
    description: z.string().trim().max(4000).nullish(),
    /** The seed's files carry a version number; versions are the server's to assign. */
    version: z.unknown().optional(),
    parameters: z.unknown().optional(),
    /** Default target selection: a selector (templates with parameters allowed). */
    targets: z.string().trim().min(1).max(4096).nullish(),
    steps: z.array(z.unknown()).min(1, 'a job needs at least one step').max(200),
    fan_out: FanOut.default({ max_parallel: 100, strategy: 'per_target' }),
    timeout_sec: z.number().int().min(1).max(30 * 86400).nullish(),
    retry: RetryPolicy.default({ retries: 0, backoff_sec: 10, backoff_multiplier: 2 }),
    tags: z.array(z.string().trim().min(1).max(64)).max(50).default([]),
    enabled: z.boolean().default(true),
    /** `target`: runs of every job with this lock never touch one target at once (later runs wait, FIFO). */
    lock: z.enum(['target']).nullish(),
    /** Runs of this job active at once; later runs wait (oldest first), across controllers. */
    max_concurrent_runs: z.number().int().min(1).max(10_000).nullish(),
    triggered_by: z.array(DependencyTrigger).max(20).default([]),
  })
  .strict()

export interface JobDefinition {
  name: string
  description: string | null
  parameters: ParameterDef[]
  targets: string | null
  steps: StepDef[]
  fan_out: z.output<typeof FanOut>
  timeout_sec: number | null
  retry: z.output<typeof RetryPolicy>
  tags: string[]
  enabled: boolean
  // Optional: versions saved before these fields existed do not have them.
  lock?: 'target' | null
  max_concurrent_runs?: number | null
  triggered_by?: DependencyTrigger[]
}

const DEFAULT_STEP_TIMEOUT_SEC = 3600
/** The seed's camelCase field names, accepted and normalised. */
const ALIASES: Record<string, string> = {
  timeoutSec: 'timeout_sec',
  continueOnError: 'continue_on_error',
  runIf: 'run_if',
  retryBackoffSec: 'retry_backoff_sec',
  fanOut: 'fan_out',
  maxParallel: 'max_parallel',
  failureCount: 'failure_count',
  failurePercent: 'failure_percent',
  backoffSec: 'backoff_sec',
  backoffMultiplier: 'backoff_multiplier',
  maxConcurrentRuns: 'max_concurrent_runs',
  triggeredBy: 'triggered_by',
}

function dealias(value: unknown): unknown {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [ALIASES[k] ?? k, v]))
}

export interface Problem {
  path: string
  message: string
}

/** Parses and normalises a job definition; throws one ValidationError listing every problem by path. */
export function parseJobDefinition(input: unknown): JobDefinition {
  const problems: Problem[] = []
  const add = (path: (string | number)[], message: string) => problems.push({ path: issuePath(path), message })
  const raw = dealias(input) as Record<string, unknown>
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
    if (raw.fan_out) raw.fan_out = dealias(raw.fan_out)
    if (raw.retry) raw.retry = dealias(raw.retry)
  }
  const shape = JobShape.safeParse(raw)
  if (!shape.success) for (const i of shape.error.issues) add(i.path as (string | number)[], messageOf(i))
  const base = shape.success ? shape.data : undefined

  const parameters = parseParameters(raw?.parameters, add)
  const paramNames = new Set(parameters.map((p) => p.name))
  const templateProblems = (path: (string | number)[], value: unknown, earlierSteps: Set<string>) => {
    for (const [subPath, text] of strings(value, path)) {
      if (!hasTemplate(text)) continue
      for (const message of checkTemplate(text, { params: paramNames, earlierSteps })) add(subPath, message)
    }
  }
  const selectorProblems = (path: (string | number)[], selector: string) => {
    if (hasTemplate(selector)) {
      // Targets are chosen before any step runs: only parameters can fill a selector.
      for (const message of checkTemplate(selector, { params: paramNames, earlierSteps: new Set(), noTarget: true })) add(path, message)
      return
    }
    try {
      parseSelector(selector)
    } catch (err) {
      add(path, (err as Error).message)
    }
  }
  if (typeof raw?.targets === 'string' && raw.targets.trim()) selectorProblems(['targets'], raw.targets.trim())

  const steps: StepDef[] = []
  const seen = new Set<string>()
  const rawSteps = Array.isArray(raw?.steps) ? raw.steps : []
  rawSteps.forEach((rawStep, index) => {
    const path = ['steps', index]
    const stepRaw = dealias(rawStep) as Record<string, unknown>
    if (!stepRaw || typeof stepRaw !== 'object' || Array.isArray(stepRaw)) {
      add(path, 'must be an object')
      return
    }
    const own: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(stepRaw)) if (!(COMMON_STEP_FIELDS as readonly string[]).includes(k)) own[k] = v
    const common = StepCommon.safeParse(pick(stepRaw, COMMON_STEP_FIELDS))
    if (!common.success) for (const i of common.error.issues) add([...path, ...(i.path as (string | number)[])], messageOf(i))
    const id = (common.success && common.data.id) || `step${index + 1}`
    if (seen.has(id)) add([...path, 'id'], `duplicate step id "${id}"`)
    const type = typeof stepRaw.type === 'string' ? stepType(stepRaw.type) : undefined
    if (typeof stepRaw.type === 'string' && !type) add([...path, 'type'], `unknown step type "${stepRaw.type}" (one of ${stepTypeNames().join(', ')})`)
    let own_: Record<string, unknown> = own
    if (type) {
      const parsed = type.input.safeParse(own)
      if (parsed.success) own_ = parsed.data as Record<string, unknown>
      else {
        // A templated field (`url: https://{{ target.address }}/health`) is checked again once rendered.
        const real = parsed.error.issues.filter((i) => !isTemplatedAt(own, i.path as (string | number)[]))
        for (const i of real) add([...path, ...(i.path as (string | number)[])], messageOf(i))
      }
    }
    templateProblems(path, own, seen)
    const target = common.success ? common.data.target : undefined
    const normalisedTarget = target === undefined ? undefined : normaliseTargetRef(target)
    if (normalisedTarget !== undefined) selectorProblems([...path, 'target'], normalisedTarget)
    if (common.success) {
      const c = common.data
      steps.push({
        id,
        name: c.name ?? (type ? (stepRaw.type as string) : id),
        type: c.type,
        ...(c.description ? { description: c.description } : {}),
        ...(normalisedTarget !== undefined ? { target: normalisedTarget } : {}),
        timeout_sec: c.timeout_sec ?? DEFAULT_STEP_TIMEOUT_SEC,
        retries: c.retries ?? base?.retry.retries ?? 0,
        retry_backoff_sec: c.retry_backoff_sec ?? base?.retry.backoff_sec ?? 10,
        continue_on_error: c.continue_on_error,
        run_if: c.run_if,
        with: own_,
      })
    }
    seen.add(id)
  })
  base?.triggered_by.forEach((t, i) => triggerProblems(t, parameters, (path, message) => add(['triggered_by', i, ...path], message)))
  if (base && base.fan_out.failure_count !== undefined && base.fan_out.failure_percent !== undefined) {
    add(['fan_out', 'failure_percent'], 'give failure_count or failure_percent, not both')
  }
  if (problems.length > 0 || !base) {
    throw new ValidationError(`invalid job definition: ${problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ')}`, problems)
  }
  return {
    name: base.name,
    description: base.description ?? null,
    parameters,
    targets: base.targets ?? null,
    steps,
    fan_out: base.fan_out,
    timeout_sec: base.timeout_sec ?? null,
    retry: base.retry,
    tags: [...new Set(base.tags)],
    enabled: base.enabled,
    lock: base.lock ?? null,
    max_concurrent_runs: base.max_concurrent_runs ?? null,
    triggered_by: base.triggered_by,
  }
}

/** Parameters as a list of typed definitions, or the seed's map of defaults (string parameters). */
function parseParameters(value: unknown, add: (path: (string | number)[], message: string) => void): ParameterDef[] {
  if (value === undefined || value === null) return []
  let list: unknown[]
  if (Array.isArray(value)) list = value
  else if (typeof value === 'object') {
    list = Object.entries(value).map(([name, v]) =>
      v !== null && typeof v === 'object' ? { name, ...(v as object) } : { name, type: 'string', default: v === undefined ? undefined : String(v) },
    )
  } else {
    add(['parameters'], 'must be a list of parameter definitions or a map of defaults')
    return []
  }
  const out: ParameterDef[] = []
  const names = new Set<string>()
  list.forEach((item, i) => {
    const path = ['parameters', i]
    const parsed = ParameterDef.safeParse(item)
    if (!parsed.success) {
      for (const issue of parsed.error.issues) add([...path, ...(issue.path as (string | number)[])], messageOf(issue))
      return
    }
    const p = parsed.data
    if (names.has(p.name)) add([...path, 'name'], `duplicate parameter "${p.name}"`)
    names.add(p.name)
    for (const message of parameterDefProblems(p)) add([...path, message.field], message.message)
    out.push(p)
  })
  return out
}

function parameterDefProblems(p: ParameterDef): { field: string; message: string }[] {
  const out: { field: string; message: string }[] = []
  if (p.pattern !== undefined) {
    if (p.type !== 'string' && p.type !== 'secret') out.push({ field: 'pattern', message: `not used with type ${p.type}` })
    try {
      new RegExp(p.pattern, 'u')
    } catch {
      out.push({ field: 'pattern', message: 'not a valid regular expression' })
    }
  }
  if (p.type === 'choice' && !p.choices) out.push({ field: 'choices', message: 'required for type choice' })
  if (p.type !== 'choice' && p.choices) out.push({ field: 'choices', message: `not used with type ${p.type}` })
  if (p.type === 'secret' && p.default !== undefined) out.push({ field: 'default', message: 'a secret parameter cannot have a default (it would be stored in the job)' })
  if (p.default !== undefined && p.type !== 'secret') {
    try {
      coerceParameter(p, p.default)
    } catch (err) {
      out.push({ field: 'default', message: (err as Error).message })
    }
  }
  return out
}

/** A parameter value converted to its type and checked (pattern, choices, range); throws with the reason. */
export function coerceParameter(p: ParameterDef, value: unknown): string | number | boolean {
  switch (p.type) {
    case 'number': {
      const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN
      if (!Number.isFinite(n)) throw new Error('must be a number')
      if (p.min !== undefined && n < p.min) throw new Error(`must be at least ${p.min}`)
      if (p.max !== undefined && n > p.max) throw new Error(`must be at most ${p.max}`)
      return n
    }
    case 'boolean':
      if (typeof value === 'boolean') return value
      if (value === 'true' || value === 'false') return value === 'true'
      throw new Error('must be true or false')
    case 'choice':
      if (typeof value !== 'string' || !p.choices?.includes(value)) throw new Error(`must be one of ${(p.choices ?? []).join(', ')}`)
      return value
    case 'target_selector':
      if (typeof value !== 'string' || value.trim() === '') throw new Error('must be a target selector')
      parseSelector(value)
      return value
    case 'string':
    case 'secret': {
      if (typeof value !== 'string') throw new Error('must be a string')
      if (p.pattern !== undefined && !new RegExp(`^(?:${p.pattern})$`, 'u').test(value)) throw new Error(`does not match the pattern ${p.pattern}`)
      return value
    }
  }
}

/** The run's parameter values: defaults filled, types coerced, required and unknown ones checked. */
export function resolveParameters(defs: ParameterDef[], given: Record<string, unknown>): Record<string, string | number | boolean> {
  const problems: Problem[] = []
  const out: Record<string, string | number | boolean> = {}
  const known = new Set(defs.map((d) => d.name))
  for (const name of Object.keys(given)) if (!known.has(name)) problems.push({ path: `parameters.${name}`, message: 'unknown parameter' })
  for (const p of defs) {
    // An empty form field means "not given": the default applies.
    const value = given[p.name] === undefined || given[p.name] === null || given[p.name] === '' ? p.default : given[p.name]
    if (value === undefined || value === null || value === '') {
      if (p.required) problems.push({ path: `parameters.${p.name}`, message: 'required' })
      else if (p.type === 'string' || p.type === 'secret') out[p.name] = ''
      continue
    }
    try {
      out[p.name] = coerceParameter(p, value)
    } catch (err) {
      problems.push({ path: `parameters.${p.name}`, message: (err as Error).message })
    }
  }
  if (problems.length) throw new ValidationError(`invalid parameters: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems)
  return out
}

/** A step's `target`: a target id → `id:…`, a plain target name → `name:…`, anything else is a selector. */
export function normaliseTargetRef(ref: string): string {
  const text = ref.trim()
  if (isUuid(text)) return `id:${text.toLowerCase()}`
  if (hasTemplate(text)) return text
  if (/^[A-Za-z0-9][A-Za-z0-9._@:-]{0,254}$/.test(text) && !/^(id|name|group|tag|os|connection|enabled|address):/.test(text)) return `name:${text}`
  return text
}

/** zod's "expected string, received undefined" is, to an operator, a missing field. */
function messageOf(issue: z.core.$ZodIssue): string {
  return issue.code === 'invalid_type' && /received undefined/.test(issue.message) ? 'required' : issue.message
}

/** The value at `path` is a string with a template in it (so its final form is known only at run time). */
function isTemplatedAt(value: unknown, path: (string | number)[]): boolean {
  let v: unknown = value
  for (const key of path) {
    if (v === null || typeof v !== 'object') return false
    v = (v as Record<string | number, unknown>)[key]
  }
  return typeof v === 'string' && hasTemplate(v)
}

function pick(obj: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k]
  return out
}

/** Every string inside a JSON-like value, with its path. */
function* strings(value: unknown, path: (string | number)[]): Generator<[(string | number)[], string]> {
  if (typeof value === 'string') yield [path, value]
  else if (Array.isArray(value)) for (let i = 0; i < value.length; i++) yield* strings(value[i], [...path, i])
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) yield* strings(v, [...path, k])
}
