import type { Definition, Job } from './jobs-api.ts'

/*
 * The builder's draft, as plain data: the definition being edited (everything but its steps) and
 * its steps, each with a client-side key that survives reordering (DOM nodes, focus, drag). The
 * draft is what the JSON view shows and what Save sends; the server validates it.
 */

export type JsonObject = Record<string, unknown>

export interface DraftStep {
  key: string
  fields: JsonObject
}

export interface Draft {
  job: JsonObject
  steps: DraftStep[]
}

/** Fields GET /jobs/:id adds to a definition; a definition sent back must not carry them. */
type ServerField = Exclude<keyof Job, keyof Definition>
const SERVER_FIELDS = ['id', 'version', 'latest_version', 'created_at', 'updated_at', 'created_by', 'updated_by'] as const satisfies readonly ServerField[]
// Compile-time check that the list is complete: a field the server adds later fails here.
type Missing = Exclude<ServerField, (typeof SERVER_FIELDS)[number]>
const complete: Missing extends never ? true : never = true
void complete

let nextKey = 0
export const newKey = () => `s${++nextKey}`

export const emptyDraft = (): Draft => ({ job: { name: '', targets: '', parameters: [], tags: [] }, steps: [] })

/** A definition (or a job as GET shows it) as a draft: server fields dropped, steps keyed. */
export function fromDefinition(value: JsonObject, keys: readonly string[] = []): Draft {
  const job: JsonObject = {}
  for (const [k, v] of Object.entries(value)) if (k !== 'steps' && !(SERVER_FIELDS as readonly string[]).includes(k)) job[k] = v
  const steps = Array.isArray(value.steps) ? value.steps : []
  return { job, steps: steps.map((s, i) => ({ key: keys[i] ?? newKey(), fields: isObject(s) ? { ...s } : ({ __invalid: s } as JsonObject) })) }
}

/** The draft as the definition Save sends. */
export function toDefinition(draft: Draft): JsonObject {
  const { name, ...rest } = draft.job
  return { name, ...rest, steps: draft.steps.map((s) => ('__invalid' in s.fields ? s.fields.__invalid : s.fields)) }
}

export const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v)

/** The list with the item at `from` moved to `to` (clamped); the same list when nothing moves. */
export function moveItem<T>(list: readonly T[], from: number, to: number): T[] {
  const target = Math.max(0, Math.min(list.length - 1, to))
  if (from === target || from < 0 || from >= list.length) return [...list]
  const out = [...list]
  const [item] = out.splice(from, 1)
  out.splice(target, 0, item as T)
  return out
}

/** A step id from a type or template (`http.get` → `http_get`), unique among `taken` (`_2`, `_3`…). */
export function uniqueStepId(base: string, taken: Iterable<string>): string {
  const used = new Set(taken)
  let stem = base.replace(/[^A-Za-z0-9_-]+/g, '_').replace(/^[^A-Za-z_]+/, '')
  stem = (stem || 'step').slice(0, 56)
  if (!used.has(stem)) return stem
  for (let n = 2; ; n++) if (!used.has(`${stem}_${n}`)) return `${stem}_${n}`
}

/** Sets or (for undefined) removes a key, returning a new object. */
export function withField(obj: JsonObject, key: string, value: unknown): JsonObject {
  const out = { ...obj }
  if (value === undefined) delete out[key]
  else out[key] = value
  return out
}

export type JsonParse = { ok: true; value: JsonObject } | { ok: false; message: string }

/** The JSON view's text as a definition; a message with line and column when it is not one. */
export function parseDefinitionText(text: string): JsonParse {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    const message = (err as Error).message
    const at = /position (\d+)/.exec(message)
    if (at) {
      const pos = Number(at[1])
      const before = text.slice(0, pos).split('\n')
      return { ok: false, message: `${message.replace(/ in JSON at position \d+.*$/, '').replace(/\s*\(line \d+ column \d+\)/, '')} at line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}` }
    }
    return { ok: false, message }
  }
  if (!isObject(value)) return { ok: false, message: 'A job definition is a JSON object ({ … })' }
  return { ok: true, value }
}

/** Pretty-printed definition for the JSON view and the version diff. */
export const prettyJson = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`

/** Server field errors (`steps[2].url`) of one step, by field (`url`), and those not about a field. */
export function stepErrors(errors: Record<string, string>, index: number): Record<string, string> {
  const prefix = `steps[${index}]`
  const out: Record<string, string> = {}
  for (const [path, message] of Object.entries(errors)) {
    if (path === prefix) out[''] = message
    else if (path.startsWith(`${prefix}.`)) out[path.slice(prefix.length + 1)] = message
  }
  return out
}

/** A field's error, or the first error under it (`headers` for `headers.X-Bad`). */
export function errorUnder(errors: Record<string, string>, field: string): string | undefined {
  if (errors[field]) return errors[field]
  const nested = Object.entries(errors).find(([p]) => p.startsWith(`${field}.`) || p.startsWith(`${field}[`))
  return nested ? `${nested[0]}: ${nested[1]}` : undefined
}

/** Comma-separated text ↔ list, for tags and choices. */
export const splitList = (text: string) =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')

/** Server errors follow their step when steps move: `steps[i]…` is re-indexed by step key. */
export function remapStepErrors(errors: Record<string, string>, before: readonly string[], after: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [path, message] of Object.entries(errors)) {
    const m = /^steps\[(\d+)\](.*)$/.exec(path)
    if (!m) {
      out[path] = message
      continue
    }
    const key = before[Number(m[1])]
    const to = key === undefined ? -1 : after.indexOf(key)
    if (to >= 0) out[`steps[${to}]${m[2]}`] = message
  }
  return out
}

/** Drops the errors of a field (and below it) once the user changes it. */
export function withoutErrorsAt(errors: Record<string, string>, path: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [p, m] of Object.entries(errors)) if (p !== path && !p.startsWith(`${path}.`) && !p.startsWith(`${path}[`)) out[p] = m
  return out
}
