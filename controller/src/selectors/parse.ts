/*
 * The target-selection grammar used everywhere a set of targets is named (jobs, schedules,
 * group selectors, `GET /api/v1/targets/resolve?selector=…`). Pure: no database here.
 *
 *   selector    = alternative { "|" alternative }          union
 *   alternative = term { "," term }                        intersection
 *   term        = "*"                                      every target
 *               | [ "!" ] "id:" value                      one target by UUID
 *               | [ "!" ] "name:" value                     name, case-insensitive, "*" = any run of characters
 *               | [ "!" ] "group:" value                   a group's static members ∪ its own selector
 *               | [ "tag:" ] key [ ( "=" | "!=" ) value ]  tag equals / differs or is missing / is present
 *               | "!" [ "tag:" ] key                       tag absent
 *               | field ( "=" | "!=" ) value               built-in: os, connection, enabled, address (glob)
 *   key         = [A-Za-z0-9_./-]+
 *   value       = bare | '"' { any char but '"' and '\' | '\"' | '\\' } '"'
 *   bare        = one or more characters other than whitespace and , | = ! "
 *
 * Whitespace around tokens is ignored. A key that is a built-in field name (os, connection,
 * enabled, address) means the field; write `tag:os=…` for a tag with that key. Tag values are
 * compared exactly (case-sensitive, `*` is literal); os, connection and enabled values are
 * case-insensitive and checked against their closed sets. Errors name a 1-based character
 * position and what was expected there.
 *
 * Disabled targets: an alternative selects them only when it tests `enabled` itself, or when the
 * caller resolves with `{ includeDisabled: true }` (see compile.ts). README.md has examples.
 */
import { OS_TYPES, type Connection, type OsType } from '../targets/targets.sql.ts'
import { ValidationError } from '../errors.ts'

export const MAX_SELECTOR_LENGTH = 4096
export const MAX_SELECTOR_TERMS = 100

export const CONNECTION_TYPES = ['agent', 'ssh', 'winrm'] as const satisfies readonly Connection['type'][]
export type ConnectionType = (typeof CONNECTION_TYPES)[number]
export const BUILT_IN_FIELDS = ['os', 'connection', 'enabled', 'address'] as const
export type BuiltInField = (typeof BUILT_IN_FIELDS)[number]
export type CompareOp = '=' | '!='

export type SelectorTerm =
  | { kind: 'all' }
  | { kind: 'id'; id: string; negated: boolean }
  | { kind: 'name'; pattern: string; negated: boolean }
  | { kind: 'group'; name: string; negated: boolean }
  | { kind: 'tag'; key: string; op: CompareOp; value: string }
  | { kind: 'tag_exists'; key: string; negated: boolean }
  | { kind: 'os'; op: CompareOp; value: OsType }
  | { kind: 'connection'; op: CompareOp; value: ConnectionType }
  | { kind: 'enabled'; op: CompareOp; value: boolean }
  | { kind: 'address'; op: CompareOp; pattern: string }

/** `alternatives[i]` is one intersection of terms; the selector is their union. */
export interface SelectorAst {
  alternatives: SelectorTerm[][]
}

/** A selector the grammar rejects: a 400 whose message says where and what was expected. */
export class SelectorError extends ValidationError {
  constructor(
    message: string,
    readonly position?: number,
    readonly expected?: string,
  ) {
    super(`selector: ${message}`, [{ path: 'selector', message, ...(position === undefined ? {} : { position }) }])
  }
}

const KEY_CHAR = /[A-Za-z0-9_./-]/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const PREFIXES = ['id', 'name', 'group', 'tag'] as const
const END = 'end of selector'
const AFTER_TERM = `"," or "|" or ${END}`

export function parseSelector(text: string): SelectorAst {
  if (text.length > MAX_SELECTOR_LENGTH) throw new SelectorError(`longer than ${MAX_SELECTOR_LENGTH} characters`)
  return new Parser(text).selector()
}

class Parser {
  private pos = 0
  private terms = 0

  constructor(private readonly text: string) {}

  selector(): SelectorAst {
    const alternatives: SelectorTerm[][] = [this.alternative()]
    while (this.accept('|')) alternatives.push(this.alternative())
    this.skipWs()
    if (this.pos < this.text.length) throw this.unexpected(AFTER_TERM)
    return { alternatives }
  }

  private alternative(): SelectorTerm[] {
    const terms = [this.term()]
    while (this.accept(',')) terms.push(this.term())
    return terms
  }

  private term(): SelectorTerm {
    this.skipWs()
    const start = this.pos
    if (++this.terms > MAX_SELECTOR_TERMS) throw new SelectorError(`more than ${MAX_SELECTOR_TERMS} terms`, start + 1)
    if (this.accept('*')) return { kind: 'all' }
    const negated = this.accept('!')
    if (negated) this.skipWs()
    const keyAt = this.pos
    const key = this.key(negated ? 'a term to negate' : 'a term')
    if (this.accept(':')) return this.prefixed(key, keyAt, negated)
    return this.keyed(key, keyAt, negated, false)
  }

  private prefixed(prefix: string, at: number, negated: boolean): SelectorTerm {
    const kind = PREFIXES.find((p) => p === prefix)
    if (!kind) throw new SelectorError(`unknown prefix "${prefix}:" at ${at + 1}, expected id:, name:, group: or tag:`, at + 1, 'a prefix')
    this.skipWs()
    if (kind === 'tag') {
      const keyAt = this.pos
      return this.keyed(this.key('a tag key'), keyAt, negated, true)
    }
    const valueAt = this.pos
    const value = this.value()
    if (kind === 'id') {
      if (!UUID.test(value)) throw new SelectorError(`invalid id "${value}" at ${valueAt + 1}, expected a UUID`, valueAt + 1, 'a UUID')
      return { kind: 'id', id: value.toLowerCase(), negated }
    }
    if (kind === 'name') return { kind: 'name', pattern: value, negated }
    return { kind: 'group', name: value, negated }
  }

  /** After a key: a tag test, a tag presence test, or (unless `tag:` forced it) a built-in field. */
  private keyed(key: string, keyAt: number, negated: boolean, forcedTag: boolean): SelectorTerm {
    this.skipWs()
    const field = forcedTag ? undefined : BUILT_IN_FIELDS.find((f) => f === key)
    const opAt = this.pos
    const op = this.op()
    if (op === undefined) {
      if (field) throw new SelectorError(`built-in field ${field} at ${keyAt + 1} needs a value, expected "=" or "!=" at ${opAt + 1}`, opAt + 1, '"=" or "!="')
      return { kind: 'tag_exists', key, negated }
    }
    if (negated) throw new SelectorError(`unexpected "${op}" at ${opAt + 1} after a negated term, expected ${AFTER_TERM} (write ${key}!=value)`, opAt + 1, AFTER_TERM)
    this.skipWs()
    const valueAt = this.pos
    const value = this.value()
    if (!field) return { kind: 'tag', key, op, value }
    if (field === 'address') return { kind: 'address', op, pattern: value }
    const lower = value.toLowerCase()
    if (field === 'os') return { kind: 'os', op, value: this.oneOf(field, OS_TYPES, lower, valueAt) }
    if (field === 'connection') return { kind: 'connection', op, value: this.oneOf(field, CONNECTION_TYPES, lower, valueAt) }
    return { kind: 'enabled', op, value: this.oneOf(field, ['true', 'false'] as const, lower, valueAt) === 'true' }
  }

  private oneOf<T extends string>(field: string, allowed: readonly T[], value: string, at: number): T {
    const found = allowed.find((a) => a === value)
    if (found === undefined) {
      const expected = `one of ${allowed.join(', ')}`
      throw new SelectorError(`invalid ${field} "${value}" at ${at + 1}, expected ${expected}`, at + 1, expected)
    }
    return found
  }

  private op(): CompareOp | undefined {
    if (this.accept('=')) return '='
    if (this.peek() !== '!') return undefined
    this.pos++
    if (this.peek() !== '=') throw this.unexpected('"=" after "!"')
    this.pos++
    return '!='
  }

  private key(expected: string): string {
    const start = this.pos
    while (this.pos < this.text.length && KEY_CHAR.test(this.text[this.pos]!)) this.pos++
    if (this.pos === start) throw this.unexpected(expected)
    return this.text.slice(start, this.pos)
  }

  private value(): string {
    if (this.peek() === '"') return this.quoted()
    const start = this.pos
    while (this.pos < this.text.length && !/[\s,|=!"]/.test(this.text[this.pos]!)) {
      this.checkChar(this.pos)
      this.pos++
    }
    if (this.pos === start) throw this.unexpected('a value')
    return this.text.slice(start, this.pos)
  }

  private quoted(): string {
    const open = this.pos++
    let out = ''
    for (;;) {
      if (this.pos >= this.text.length) throw new SelectorError(`unterminated quoted value starting at ${open + 1}, expected a closing "`, open + 1, 'a closing "')
      const c = this.text[this.pos]!
      if (c === '"') break
      if (c === '\\') {
        const next = this.text[this.pos + 1]
        if (next !== '"' && next !== '\\') {
          const shown = next === undefined ? END : `"\\${next}"`
          throw new SelectorError(`invalid escape ${shown} at ${this.pos + 1}, expected \\" or \\\\`, this.pos + 1, '\\" or \\\\')
        }
        out += next
        this.pos += 2
        continue
      }
      this.checkChar(this.pos)
      out += c
      this.pos++
    }
    this.pos++
    return out
  }

  /** Control characters (NUL above all: Postgres text rejects it) are never part of a value. */
  private checkChar(at: number): void {
    const code = this.text.charCodeAt(at)
    if (code < 0x20 || code === 0x7f) {
      const hex = code.toString(16).toUpperCase().padStart(4, '0')
      throw new SelectorError(`invalid character U+${hex} at ${at + 1}`, at + 1)
    }
  }

  private accept(c: string): boolean {
    this.skipWs()
    if (this.text[this.pos] !== c) return false
    this.pos++
    return true
  }

  private peek(): string | undefined {
    return this.text[this.pos]
  }

  private skipWs(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++
  }

  private unexpected(expected: string): SelectorError {
    const c = this.text[this.pos]
    const what = c === undefined ? END : `"${c}"`
    return new SelectorError(`unexpected ${what} at ${this.pos + 1}, expected ${expected}`, this.pos + 1, expected)
  }
}

/** The canonical text of a selector: `parseSelector(formatSelector(ast))` deep-equals `ast`. */
export function formatSelector(ast: SelectorAst): string {
  return ast.alternatives.map((terms) => terms.map(formatTerm).join(',')).join(' | ')
}

export function formatTerm(term: SelectorTerm): string {
  const not = (negated: boolean) => (negated ? '!' : '')
  switch (term.kind) {
    case 'all':
      return '*'
    case 'id':
      return `${not(term.negated)}id:${term.id}`
    case 'name':
      return `${not(term.negated)}name:${formatValue(term.pattern)}`
    case 'group':
      return `${not(term.negated)}group:${formatValue(term.name)}`
    case 'tag':
      return `${tagKey(term.key)}${term.op}${formatValue(term.value)}`
    case 'tag_exists':
      return `${not(term.negated)}${tagKey(term.key)}`
    case 'os':
    case 'connection':
      return `${term.kind}${term.op}${term.value}`
    case 'enabled':
      return `enabled${term.op}${term.value}`
    case 'address':
      return `address${term.op}${formatValue(term.pattern)}`
    default:
      return assertNever(term)
  }
}

function tagKey(key: string): string {
  return (BUILT_IN_FIELDS as readonly string[]).includes(key) ? `tag:${key}` : key
}

function formatValue(value: string): string {
  return value !== '' && !/[\s,|=!"]/.test(value) ? value : `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`
}

export function assertNever(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`)
}
