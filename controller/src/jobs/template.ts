/*
 * Safe templating for job step fields. Nothing here executes code: a small hand-written parser
 * and evaluator, no eval/Function, and every lookup goes through Object.hasOwn, with the
 * segments __proto__, constructor and prototype rejected when the template is parsed.
 *
 *   template = { text | "{{" expr "}}" }       text is kept as is; "{{" always opens an expression
 *   expr     = primary { "|" filter }
 *   primary  = path | string | "secret" string string
 *   path     = ident { "." segment }           ident = [A-Za-z_][A-Za-z0-9_-]*, segment = [A-Za-z0-9_][A-Za-z0-9_-]*
 *   string   = '"' { any char but '"' and '\' | '\"' | '\\' } '"'      so a literal "{{" is {{ "{{" }}
 *   filter   = "shell" | "powershell" | "json" | "trim" | "upper" | "lower" | "default" string
 *
 * Path roots: params.<name>[.<path>], or a bare <name>[.<path>] (shorthand for params.<name>
 * unless the name is params, target or steps); target.id|name|address|os_type|tags.<key>|facts.<path>
 * (a tag key is everything after "tags.", dots included); steps.<id>.stdout|stderr|exit_code|status|
 * json.<path>|result.<path> (json = stdout parsed as JSON, result = the step's structured result).
 * Whitespace between tokens is ignored. Errors name a 1-based character position in the field.
 *
 * Unknown parameters, steps and fields are not parse errors: `checkTemplate` reports them all at
 * once, against what the job defines, so the definition validator can list every problem.
 */
import { ValidationError } from '../errors.ts'

export const TARGET_FIELDS = ['id', 'name', 'address', 'os_type', 'tags', 'facts'] as const
export const STEP_FIELDS = ['stdout', 'stderr', 'exit_code', 'status', 'json', 'result'] as const
export const FILTERS = ['shell', 'powershell', 'json', 'default', 'trim', 'upper', 'lower'] as const
export type FilterName = (typeof FILTERS)[number]

/** What a template reads; `field` is the dotted path under the root (`tags.env`, `json.items.0`). */
export type Reference =
  | { kind: 'param'; name: string }
  | { kind: 'target'; field: string }
  | { kind: 'step'; stepId: string; field: string }
  | { kind: 'secret'; credential: string; field: string }

export type Primary =
  | { kind: 'param'; name: string; path: readonly string[] }
  /** path[0] is the field (id, name, …, tags, facts). */
  | { kind: 'target'; path: readonly string[] }
  /** path[0] is the field (stdout, …, json, result). */
  | { kind: 'step'; stepId: string; path: readonly string[] }
  | { kind: 'secret'; credential: string; field: string }
  | { kind: 'literal'; value: string }

export type Filter = { name: Exclude<FilterName, 'default'> } | { name: 'default'; value: string }

export interface Expression {
  primary: Primary
  filters: readonly Filter[]
  /** The expression as written, braces included, for messages. */
  source: string
  /** 1-based position of its "{{". */
  position: number
}

export type TemplatePart = { kind: 'text'; text: string } | { kind: 'expr'; expr: Expression }

export interface ParsedTemplate {
  parts: readonly TemplatePart[]
}

/** A template the grammar rejects (a 400). The caller sets `path`, e.g. `steps[2].command`. */
export class TemplateError extends ValidationError {
  path?: string

  constructor(
    message: string,
    readonly position?: number,
  ) {
    super(message, position === undefined ? undefined : { position })
  }
}

/** A value the template needs is missing at run time (no such tag, secret, JSON path, …). */
export class TemplateRenderError extends Error {
  path?: string

  constructor(
    message: string,
    readonly expression?: string,
  ) {
    super(message)
    this.name = new.target.name
  }
}

export interface TemplateTarget {
  id: string
  name: string
  address: string
  os_type: string
  tags: Record<string, string>
  facts: Record<string, unknown>
}

export interface TemplateStep {
  stdout: string
  stderr: string
  exit_code: number | null
  status: string
  result?: unknown
}

export interface TemplateScope {
  params: Record<string, unknown>
  /** null in a run without targets. */
  target: TemplateTarget | null
  /** Steps that have finished, by step id. */
  steps: Record<string, TemplateStep>
  /** Pre-resolved: credential name → field → value. */
  secrets: Record<string, Record<string, string>>
}

export interface KnownNames {
  params: Set<string>
  /** Steps before the one being checked: the only ones a template may read. */
  earlierSteps: Set<string>
  /** Every step of the job; when given, an unknown step is told apart from a later one. */
  steps?: Set<string>
  /** Credential names; when given, unknown ones are reported. */
  credentials?: Set<string>
  /** Set where no target is in scope (a job's target selector): every target.… is then a problem. */
  noTarget?: boolean
}

export function hasTemplate(s: string): boolean {
  return s.includes('{{')
}

const CACHE_MAX_ENTRIES = 500
const CACHE_MAX_SOURCE_LENGTH = 16_384
const cache = new Map<string, ParsedTemplate>()

export function parseTemplate(source: string): ParsedTemplate {
  const hit = cache.get(source)
  if (hit) {
    // Re-insert so the Map's insertion order doubles as least-recently-used order.
    cache.delete(source)
    cache.set(source, hit)
    return hit
  }
  const parsed = new Parser(source).template()
  if (source.length <= CACHE_MAX_SOURCE_LENGTH) {
    if (cache.size >= CACHE_MAX_ENTRIES) cache.delete(cache.keys().next().value!)
    cache.set(source, parsed)
  }
  return parsed
}

/** Every distinct reference in the template, in order of first appearance. Throws TemplateError. */
export function templateReferences(source: string): Reference[] {
  const seen = new Map<string, Reference>()
  for (const part of parseTemplate(source).parts) {
    if (part.kind !== 'expr') continue
    const ref = referenceOf(part.expr.primary)
    if (ref) seen.set(JSON.stringify(ref), ref)
  }
  return [...seen.values()]
}

/** Every problem with the template as a message (empty when it is fine). */
export function checkTemplate(source: string, known: KnownNames): string[] {
  let refs: Reference[]
  try {
    refs = templateReferences(source)
  } catch (err) {
    if (err instanceof TemplateError) return [err.message]
    throw err
  }
  const problems = new Set<string>()
  for (const ref of refs) {
    const problem = referenceProblem(ref, known)
    if (problem) problems.add(problem)
  }
  return [...problems]
}

export function renderTemplate(source: string, scope: TemplateScope): string {
  if (!hasTemplate(source)) return source
  return renderParsed(parseTemplate(source), new RenderContext(scope))
}

/**
 * Renders every string inside a JSON-like value (plain objects and arrays), returning a new value;
 * keys are not templated. An error's `path` is set to where the string sits (`headers.X-Token`, `args[1]`).
 */
export function renderDeep(value: unknown, scope: TemplateScope): unknown {
  return deep(value, new RenderContext(scope), '')
}

export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`
}

/**
 * Every form a filter can give a secret value, for the masker: rendered text holds `'it'\''s'`
 * for a shell-quoted "it's", and JSON holds escapes. The JSON form is without its quotes, so
 * masking serialized JSON keeps it valid.
 */
export function secretForms(value: string): string[] {
  const forms = [value, value.trim(), shellQuote(value), powershellQuote(value), JSON.stringify(value).slice(1, -1), value.toUpperCase(), value.toLowerCase()]
  return [...new Set(forms.filter((f) => f !== ''))]
}

/** PowerShell treats the Unicode single quotes ‘ ’ ‚ ‛ like ', so they are doubled too. */
export function powershellQuote(s: string): string {
  return `'${s.replace(/['\u2018\u2019\u201A\u201B]/g, (q) => q + q)}'`
}

// ---------------------------------------------------------------------------------------------
// Parsing

const IDENT_START = /[A-Za-z_]/
const IDENT_CHAR = /[A-Za-z0-9_-]/
const SEGMENT_START = /[A-Za-z0-9_]/
const SPACE = /\s/
const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'constructor', 'prototype'])
const PRIMARY_EXPECTED = 'a parameter name, target.…, steps.…, secret "…" "…" or a "string"'
const FILTER_EXPECTED = 'shell, powershell, json, default "…", trim, upper or lower'

class Parser {
  private pos = 0

  constructor(private readonly src: string) {}

  template(): ParsedTemplate {
    const parts: TemplatePart[] = []
    const { src } = this
    while (this.pos < src.length) {
      const open = src.indexOf('{{', this.pos)
      if (open === -1) {
        parts.push({ kind: 'text', text: src.slice(this.pos) })
        break
      }
      if (open > this.pos) parts.push({ kind: 'text', text: src.slice(this.pos, open) })
      this.pos = open + 2
      parts.push({ kind: 'expr', expr: this.expression(open) })
    }
    return Object.freeze({ parts: Object.freeze(parts) })
  }

  private expression(open: number): Expression {
    this.skipSpace(open)
    const primary = this.primary(open)
    const filters: Filter[] = []
    for (;;) {
      this.skipSpace(open)
      if (this.src.startsWith('}}', this.pos)) break
      if (this.src[this.pos] !== '|') throw this.unexpected('"|" or "}}"')
      this.pos++
      this.skipSpace(open)
      filters.push(this.filter(open))
    }
    this.pos += 2
    return { primary, filters, source: this.src.slice(open, this.pos), position: open + 1 }
  }

  private primary(open: number): Primary {
    const c = this.src[this.pos]!
    if (this.src.startsWith('}}', this.pos)) throw new TemplateError(`empty expression at ${open + 1}`, open + 1)
    if (c === '"') return { kind: 'literal', value: this.string() }
    if (!IDENT_START.test(c)) throw this.unexpected(PRIMARY_EXPECTED)
    const start = this.pos
    const path = this.path()
    const [root, ...rest] = path as [string, ...string[]]
    const at = start + 1
    if (root === 'secret' && rest.length === 0) return this.secret(open)
    if (root === 'params') {
      const [name, ...sub] = rest
      if (name === undefined) throw new TemplateError(`"params" at ${at} needs a parameter name, e.g. params.service`, at)
      return { kind: 'param', name, path: sub }
    }
    if (root === 'target') {
      if (rest.length === 0) throw new TemplateError(`"target" at ${at} needs a field, e.g. target.name or target.tags.env`, at)
      return { kind: 'target', path: rest }
    }
    if (root === 'steps') {
      const [stepId, ...field] = rest
      if (stepId === undefined || field.length === 0) {
        throw new TemplateError(`"steps" at ${at} needs a step id and a field, e.g. steps.build.stdout`, at)
      }
      return { kind: 'step', stepId, path: field }
    }
    return { kind: 'param', name: root, path: rest }
  }

  private secret(open: number): Primary {
    this.skipSpace(open)
    if (this.src[this.pos] !== '"') throw this.unexpected('a credential name in double quotes after secret')
    const credAt = this.pos + 1
    const credential = this.string()
    if (credential === '') throw new TemplateError(`empty credential name at ${credAt}`, credAt)
    this.skipSpace(open)
    if (this.src[this.pos] !== '"') throw this.unexpected('a credential field name in double quotes')
    const fieldAt = this.pos + 1
    const field = this.string()
    if (field === '') throw new TemplateError(`empty credential field at ${fieldAt}`, fieldAt)
    return { kind: 'secret', credential, field }
  }

  private path(): string[] {
    const segments = [this.segment(IDENT_START, 'a name')]
    while (this.src[this.pos] === '.') {
      this.pos++
      segments.push(this.segment(SEGMENT_START, 'a name or index after "."'))
    }
    return segments
  }

  private segment(first: RegExp, expected: string): string {
    const start = this.pos
    if (!first.test(this.src[this.pos] ?? '')) throw this.unexpected(expected)
    this.pos++
    while (IDENT_CHAR.test(this.src[this.pos] ?? '')) this.pos++
    const segment = this.src.slice(start, this.pos)
    if (FORBIDDEN_SEGMENTS.has(segment)) throw new TemplateError(`forbidden path segment "${segment}" at ${start + 1}`, start + 1)
    return segment
  }

  private filter(open: number): Filter {
    const start = this.pos
    if (!IDENT_START.test(this.src[this.pos] ?? '')) throw this.unexpected(`a filter (${FILTER_EXPECTED})`)
    while (IDENT_CHAR.test(this.src[this.pos] ?? '')) this.pos++
    const word = this.src.slice(start, this.pos)
    const name = FILTERS.find((f) => f === word)
    if (name === undefined) throw new TemplateError(`unknown filter "${word}" at ${start + 1}, expected ${FILTER_EXPECTED}`, start + 1)
    if (name !== 'default') return { name }
    this.skipSpace(open)
    if (this.src[this.pos] !== '"') throw this.unexpected('a "string" after default')
    return { name, value: this.string() }
  }

  private string(): string {
    const open = this.pos++
    let out = ''
    for (;;) {
      const c = this.src[this.pos]
      if (c === undefined) throw new TemplateError(`unterminated string starting at ${open + 1}`, open + 1)
      if (c === '"') break
      if (c === '\\') {
        const next = this.src[this.pos + 1]
        if (next !== '"' && next !== '\\') {
          throw new TemplateError(`invalid escape at ${this.pos + 1}, expected \\" or \\\\ (write \\\\ for a backslash)`, this.pos + 1)
        }
        out += next
        this.pos += 2
        continue
      }
      out += c
      this.pos++
    }
    this.pos++
    return out
  }

  /** Skips whitespace; running off the end means the "{{" at `open` was never closed. */
  private skipSpace(open: number): void {
    while (SPACE.test(this.src[this.pos] ?? '')) this.pos++
    if (this.pos >= this.src.length) throw new TemplateError(`unclosed "{{" at ${open + 1}`, open + 1)
  }

  private unexpected(expected: string): TemplateError {
    const c = this.src.codePointAt(this.pos)
    if (c === undefined) return new TemplateError(`unexpected end of template, expected ${expected}`, this.pos + 1)
    return new TemplateError(`unexpected ${JSON.stringify(String.fromCodePoint(c))} at ${this.pos + 1}, expected ${expected}`, this.pos + 1)
  }
}

// ---------------------------------------------------------------------------------------------
// References and checks

function referenceOf(p: Primary): Reference | null {
  switch (p.kind) {
    case 'param':
      return { kind: 'param', name: p.name }
    case 'target':
      return { kind: 'target', field: p.path.join('.') }
    case 'step':
      return { kind: 'step', stepId: p.stepId, field: p.path.join('.') }
    case 'secret':
      return { kind: 'secret', credential: p.credential, field: p.field }
    case 'literal':
      return null
    default:
      return assertNever(p)
  }
}

function referenceProblem(ref: Reference, known: KnownNames): string | null {
  switch (ref.kind) {
    case 'param':
      return known.params.has(ref.name) ? null : `unknown parameter "${ref.name}"`
    case 'target':
      if (!targetFieldKnown(ref.field.split('.'))) return `unknown target field "${ref.field}"`
      return known.noTarget ? `target.${ref.field} is not available here: there is no target yet` : null
    case 'step':
      if (known.steps && !known.steps.has(ref.stepId)) return `unknown step "${ref.stepId}"`
      if (!known.earlierSteps.has(ref.stepId)) return `step "${ref.stepId}" is not an earlier step`
      return stepFieldKnown(ref.field.split('.')) ? null : `unknown field "${ref.field}" of step "${ref.stepId}"`
    case 'secret':
      return !known.credentials || known.credentials.has(ref.credential) ? null : `unknown credential "${ref.credential}"`
    default:
      return assertNever(ref)
  }
}

function targetFieldKnown([field, ...rest]: readonly string[]): boolean {
  if (field === 'tags' || field === 'facts') return true
  return rest.length === 0 && TARGET_FIELDS.some((f) => f === field)
}

function stepFieldKnown([field, ...rest]: readonly string[]): boolean {
  if (field === 'json' || field === 'result') return true
  return rest.length === 0 && STEP_FIELDS.some((f) => f === field)
}

// ---------------------------------------------------------------------------------------------
// Rendering

type Value = { found: true; value: unknown } | { found: false; reason: string }

const found = (value: unknown): Value => ({ found: true, value })
const missing = (reason: string): Value => ({ found: false, reason })

class RenderContext {
  /** stdout parsed as JSON, once per step per render. */
  private readonly json = new Map<string, Value>()

  constructor(readonly scope: TemplateScope) {}

  stepJson(stepId: string, stdout: string): Value {
    let parsed = this.json.get(stepId)
    if (!parsed) {
      try {
        parsed = found(JSON.parse(stdout))
      } catch {
        parsed = missing(`stdout of step "${stepId}" is not valid JSON`)
      }
      this.json.set(stepId, parsed)
    }
    return parsed
  }
}

function deep(value: unknown, ctx: RenderContext, path: string): unknown {
  if (typeof value === 'string') {
    if (!hasTemplate(value)) return value
    try {
      return renderParsed(parseTemplate(value), ctx)
    } catch (err) {
      if ((err instanceof TemplateRenderError || err instanceof TemplateError) && err.path === undefined) err.path = path
      throw err
    }
  }
  if (Array.isArray(value)) return value.map((v, i) => deep(v, ctx, `${path}[${i}]`))
  if (isPlainObject(value)) {
    // fromEntries defines own properties, so a "__proto__" key stays a plain key.
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deep(v, ctx, path === '' ? k : `${path}.${k}`)]))
  }
  return value
}

function renderParsed(parsed: ParsedTemplate, ctx: RenderContext): string {
  let out = ''
  for (const part of parsed.parts) out += part.kind === 'text' ? part.text : renderExpression(part.expr, ctx)
  return out
}

function renderExpression(expr: Expression, ctx: RenderContext): string {
  let value = resolve(expr.primary, ctx, expr)
  for (const filter of expr.filters) value = applyFilter(value, filter, expr)
  return requireText(value, expr)
}

function applyFilter(v: Value, filter: Filter, expr: Expression): Value {
  switch (filter.name) {
    case 'default':
      return !v.found || v.value === null || v.value === '' ? found(filter.value) : v
    case 'trim':
    case 'upper':
    case 'lower': {
      // Missing and null pass through, so a later `default` still applies.
      if (!v.found || v.value === null) return v
      const s = toText(v.value)
      return found(filter.name === 'trim' ? s.trim() : filter.name === 'upper' ? s.toUpperCase() : s.toLowerCase())
    }
    case 'json':
      if (!v.found) throw new TemplateRenderError(v.reason, expr.source)
      return found(JSON.stringify(v.value))
    case 'shell': {
      const s = requireText(v, expr)
      if (s.includes('\0')) throw new TemplateRenderError(`${describe(expr.primary)} contains a NUL character, which no shell argument can hold`, expr.source)
      return found(shellQuote(s))
    }
    case 'powershell':
      return found(powershellQuote(requireText(v, expr)))
    default:
      return assertNever(filter)
  }
}

function requireText(v: Value, expr: Expression): string {
  if (!v.found) throw new TemplateRenderError(v.reason, expr.source)
  if (v.value === null) throw new TemplateRenderError(`${describe(expr.primary)} is null`, expr.source)
  return toText(v.value)
}

function toText(value: unknown): string {
  if (typeof value === 'string') return value
  if (typeof value === 'object' && value !== null) return JSON.stringify(value)
  return String(value)
}

function describe(p: Primary): string {
  switch (p.kind) {
    case 'param':
      return ['params', p.name, ...p.path].join('.')
    case 'target':
      return ['target', ...p.path].join('.')
    case 'step':
      return ['steps', p.stepId, ...p.path].join('.')
    case 'secret':
      return `secret ${JSON.stringify(p.credential)} ${JSON.stringify(p.field)}`
    case 'literal':
      return JSON.stringify(p.value)
    default:
      return assertNever(p)
  }
}

function resolve(p: Primary, ctx: RenderContext, expr: Expression): Value {
  const { scope } = ctx
  switch (p.kind) {
    case 'literal':
      return found(p.value)
    case 'param': {
      if (!Object.hasOwn(scope.params, p.name) || scope.params[p.name] === undefined) return missing(`parameter "${p.name}" is not set`)
      return descend(scope.params[p.name], p.path, `parameter "${p.name}" has no "${p.path.join('.')}"`)
    }
    case 'target':
      return resolveTarget(scope.target, p.path, expr)
    case 'step': {
      const step = Object.hasOwn(scope.steps, p.stepId) ? scope.steps[p.stepId] : undefined
      if (!step) return missing(`step "${p.stepId}" has not run`)
      return resolveStep(p.stepId, step, p.path, ctx, expr)
    }
    case 'secret': {
      const fields = Object.hasOwn(scope.secrets, p.credential) ? scope.secrets[p.credential] : undefined
      if (!fields) return missing(`credential "${p.credential}" is not available to this run`)
      if (!Object.hasOwn(fields, p.field) || fields[p.field] === undefined) return missing(`credential "${p.credential}" has no field "${p.field}"`)
      return found(fields[p.field])
    }
    default:
      return assertNever(p)
  }
}

function resolveTarget(target: TemplateTarget | null, path: readonly string[], expr: Expression): Value {
  const [field, ...rest] = path
  if (!targetFieldKnown(path)) throw new TemplateRenderError(`unknown target field "${path.join('.')}"`, expr.source)
  if (!target) return missing(`target.${path.join('.')} is not available: this run has no target`)
  switch (field) {
    case 'tags': {
      if (rest.length === 0) return found(target.tags)
      const key = rest.join('.')
      return Object.hasOwn(target.tags, key) && target.tags[key] !== undefined ? found(target.tags[key]) : missing(`target ${target.name} has no tag "${key}"`)
    }
    case 'facts':
      return descend(target.facts, rest, `target ${target.name} has no fact "${rest.join('.')}"`)
    case 'id':
      return found(target.id)
    case 'name':
      return found(target.name)
    case 'address':
      return found(target.address)
    default:
      return found(target.os_type)
  }
}

function resolveStep(stepId: string, step: TemplateStep, path: readonly string[], ctx: RenderContext, expr: Expression): Value {
  const [field, ...rest] = path
  if (!stepFieldKnown(path)) throw new TemplateRenderError(`unknown field "${path.join('.')}" of step "${stepId}"`, expr.source)
  switch (field) {
    case 'json': {
      const parsed = ctx.stepJson(stepId, step.stdout)
      if (!parsed.found) return parsed
      return descend(parsed.value, rest, `JSON output of step "${stepId}" has no "${rest.join('.')}"`)
    }
    case 'result':
      if (step.result === undefined) return missing(`step "${stepId}" has no result`)
      return descend(step.result, rest, `result of step "${stepId}" has no "${rest.join('.')}"`)
    case 'stdout':
      return found(step.stdout)
    case 'stderr':
      return found(step.stderr)
    case 'exit_code':
      return found(step.exit_code)
    default:
      return found(step.status)
  }
}

const INDEX = /^(?:0|[1-9][0-9]*)$/

/** Walks own properties of plain objects and indexes of arrays only. */
function descend(start: unknown, path: readonly string[], reason: string): Value {
  let cur = start
  for (const segment of path) {
    if (Array.isArray(cur)) {
      if (!INDEX.test(segment) || !Object.hasOwn(cur, segment)) return missing(reason)
      cur = cur[Number(segment)]
    } else if (isPlainObject(cur)) {
      if (!Object.hasOwn(cur, segment)) return missing(reason)
      cur = cur[segment]
    } else {
      return missing(reason)
    }
    if (cur === undefined) return missing(reason)
  }
  return found(cur)
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

function assertNever(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`)
}
