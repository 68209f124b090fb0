import { and, eq, ne, or, sql, type SQL } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'
import { ValidationError } from '../errors.ts'
import { MAX_PAGE_SIZE } from '../http/pagination.ts'
import { target, targetGroup, targetGroupMember, type OsType } from '../targets/targets.sql.ts'
import { assertNever, parseSelector, SelectorError, type CompareOp, type SelectorAst, type SelectorTerm } from './parse.ts'

/** Groups nest; a diamond of groups can multiply terms, so the expanded selector is capped. */
export const MAX_EXPANDED_TERMS = 1000

export interface SelectOptions {
  /**
   * Disabled targets are left out unless this is set, or the alternative itself tests `enabled`
   * (`enabled=false`, `enabled!=true`, …). The rule is applied once, to the top-level selector;
   * groups expand to all their targets, enabled or not, before it applies.
   */
  includeDisabled?: boolean
}

export interface PreviewOptions extends SelectOptions {
  /** 1..MAX_PAGE_SIZE, default 50. */
  limit?: number
  /** Keyset position: the name of the last target of the previous page. */
  after?: string
}

/** One resolved target, shaped for the API (snake_case). */
export interface SelectedTarget {
  id: string
  name: string
  address: string
  os_type: OsType
  enabled: boolean
}

/** A drizzle condition on `target` selecting exactly the selector's targets. */
export async function selectorCondition(db: Db, selector: string | SelectorAst, opts: SelectOptions = {}): Promise<SQL> {
  const ast = typeof selector === 'string' ? parseSelector(selector) : selector
  return new Compiler(db).top(ast, opts)
}

/**
 * Each group's membership (static members ∪ what its selector picks, enabled or not) as a condition
 * on `target`, compiled from group rows the caller already holds (`all`: every group they may name),
 * so no query per group or nested group.
 */
export async function groupMembershipConditions(db: Db, groups: readonly GroupRow[], all: readonly GroupRow[] = groups): Promise<SQL[]> {
  const known = new Map(all.map((g) => [g.name.toLowerCase(), g]))
  return Promise.all(groups.map((g) => new Compiler(db, undefined, known).expand({ alternatives: [[{ kind: 'group', name: g.name, negated: false }]] }, [])))
}

export async function countSelector(db: Db, selector: string | SelectorAst, opts: SelectOptions = {}): Promise<number> {
  const where = await selectorCondition(db, selector, opts)
  const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(target).where(where)
  return Number(row?.n ?? 0)
}

/** Every selected target id, ordered by name (what a job fans out to). */
export async function resolveSelector(db: Db, selector: string | SelectorAst, opts: SelectOptions = {}): Promise<{ ids: string[]; count: number }> {
  const where = await selectorCondition(db, selector, opts)
  const rows = await db.select({ id: target.id }).from(target).where(where).orderBy(sql`lower(${target.name})`)
  return { ids: rows.map((r) => r.id), count: rows.length }
}

/** The total and one page of targets, ordered by name: the "preview before running" answer. */
export async function previewSelector(
  db: Db,
  selector: string | SelectorAst,
  opts: PreviewOptions = {},
): Promise<{ count: number; targets: SelectedTarget[] }> {
  const limit = opts.limit ?? 50
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) throw new ValidationError(`limit must be an integer from 1 to ${MAX_PAGE_SIZE}`)
  const where = await selectorCondition(db, selector, opts)
  const page = opts.after === undefined ? where : and(where, sql`lower(${target.name}) > lower(${opts.after})`)!
  const [counted, rows] = await Promise.all([
    db.select({ n: sql<number>`count(*)::int` }).from(target).where(where),
    db.execute(pageQuery(page, limit)),
  ])
  return { count: Number(counted[0]?.n ?? 0), targets: rowsOf<SelectedTarget>(rows) }
}

/**
 * The first `limit` selected targets by name. `offset 0` keeps the planner from walking
 * target_name_lower_idx in name order and filtering as it goes: when the matches sit late in name
 * order (`role=web` on hosts named web-…) that reads most of the table. Filtering first and keeping
 * the top `limit` costs about what the count does.
 */
export function pageQuery(where: SQL, limit: number): SQL {
  return sql`select id, name, address, os_type, enabled
    from (select ${target.id}, ${target.name}, ${target.address}, ${target.osType}, ${target.enabled} from ${target} where ${where} offset 0) m
    order by lower(name) limit ${limit}`
}

/**
 * Checks a group's dynamic selector before it is saved: it parses, every group it names exists,
 * and — with this group's selector replaced by the new one — no group reaches itself.
 */
export async function checkGroupSelector(db: Db, group: { name: string; selector: string }): Promise<SelectorAst> {
  const ast = parseSelector(group.selector)
  const compiler = new Compiler(db, group)
  await compiler.expand(ast, [group.name])
  return ast
}

export interface GroupRow {
  /** null: a group being created, with no static members yet. */
  id: string | null
  name: string
  selector: string | null
}

class Compiler {
  private readonly groups = new Map<string, GroupRow | null>()
  private terms = 0

  constructor(
    private readonly db: Db,
    private readonly override?: { name: string; selector: string },
    known?: ReadonlyMap<string, GroupRow>,
  ) {
    if (known) for (const [key, row] of known) this.groups.set(key, row)
  }

  async top(ast: SelectorAst, opts: SelectOptions): Promise<SQL> {
    const alternatives: SQL[] = []
    for (const terms of ast.alternatives) {
      const condition = await this.alternative(terms, [])
      const testsEnabled = terms.some((t) => t.kind === 'enabled')
      alternatives.push(opts.includeDisabled || testsEnabled ? condition : and(condition, eq(target.enabled, true))!)
    }
    return anyOf(alternatives)
  }

  /** A selector nested in a group: no enabled rule of its own. `path` is the chain of groups that led here. */
  async expand(ast: SelectorAst, path: string[]): Promise<SQL> {
    const alternatives: SQL[] = []
    for (const terms of ast.alternatives) alternatives.push(await this.alternative(terms, path))
    return anyOf(alternatives)
  }

  /**
   * Tag equalities of one intersection become a single `tags @> {…}`: one GIN probe instead of
   * several, and one containment test per row instead of one per tag (several times cheaper on a scan).
   */
  private async alternative(terms: SelectorTerm[], path: string[]): Promise<SQL> {
    const conditions: SQL[] = []
    const wanted = new Map<string, string>()
    let slot = -1
    let contradiction = false
    for (const term of terms) {
      if (term.kind !== 'tag' || term.op !== '=') {
        conditions.push(await this.term(term, path))
        continue
      }
      this.count()
      if (wanted.has(term.key) && wanted.get(term.key) !== term.value) contradiction = true
      wanted.set(term.key, term.value)
      if (slot < 0) slot = conditions.push(sql`true`) - 1
    }
    if (contradiction) return sql`false`
    // `@>` is what the jsonb_path_ops GIN index (target_tags_idx) answers.
    if (slot >= 0) conditions[slot] = sql`${target.tags} @> ${JSON.stringify(Object.fromEntries(wanted))}::jsonb`
    return conditions.length === 1 ? conditions[0]! : and(...conditions)!
  }

  private count(): void {
    if (++this.terms > MAX_EXPANDED_TERMS) throw new SelectorError(`expands to more than ${MAX_EXPANDED_TERMS} terms through its groups`)
  }

  private async term(term: SelectorTerm, path: string[]): Promise<SQL> {
    this.count()
    switch (term.kind) {
      case 'all':
        return sql`true`
      case 'id':
        return negate(eq(target.id, term.id), term.negated)
      case 'name':
        return negate(globMatch(target.name, term.pattern), term.negated)
      case 'group':
        return negate(await this.group(term.name, path), term.negated)
      case 'tag':
        // Only `!=` reaches here (equalities are merged above); it also matches a target without the tag.
        return negate(sql`${target.tags} @> ${JSON.stringify({ [term.key]: term.value })}::jsonb`, term.op === '!=')
      case 'tag_exists':
        return negate(sql`${target.tags} ? ${term.key}`, term.negated)
      case 'os':
        return compare(target.osType, term.op, term.value)
      case 'connection':
        // Written exactly as the expression index target_connection_type_idx is.
        return term.op === '='
          ? sql`(${target.connection}->>'type') = ${term.value}`
          : sql`(${target.connection}->>'type') is distinct from ${term.value}`
      case 'enabled':
        return compare(target.enabled, term.op, term.value)
      case 'address':
        return negate(globMatch(target.address, term.pattern), term.op === '!=')
      default:
        return assertNever(term)
    }
  }

  /** A group is its static members ∪ the targets its own selector picks. */
  private async group(name: string, path: string[]): Promise<SQL> {
    const seen = path.findIndex((p) => p.toLowerCase() === name.toLowerCase())
    if (seen >= 0) throw new SelectorError(`group cycle: ${[...path.slice(seen), name].map((n) => `"${n}"`).join(' → ')}`)
    const via = path.length ? ` (in group "${path.at(-1)}")` : ''
    const row = await this.loadGroup(name)
    if (!row) throw new SelectorError(`unknown group "${name}"${via}`)
    const members = row.id
      ? sql`${target.id} in (select ${targetGroupMember.targetId} from ${targetGroupMember} where ${targetGroupMember.groupId} = ${row.id})`
      : sql`false`
    if (!row.selector) return members
    let ast: SelectorAst
    try {
      ast = parseSelector(row.selector)
    } catch (err) {
      if (!(err instanceof SelectorError)) throw err
      throw new SelectorError(`group "${row.name}" has an invalid selector: ${err.message.replace(/^selector: /, '')}`)
    }
    return or(members, await this.expand(ast, [...path, row.name]))!
  }

  private async loadGroup(name: string): Promise<GroupRow | null> {
    const key = name.toLowerCase()
    if (this.groups.has(key)) return this.groups.get(key)!
    const [found] = await this.db
      .select({ id: targetGroup.id, name: targetGroup.name, selector: targetGroup.selector })
      .from(targetGroup)
      .where(sql`lower(${targetGroup.name}) = lower(${name})`)
    let row: GroupRow | null = found ?? null
    if (this.override && this.override.name.toLowerCase() === key) {
      row = { id: found?.id ?? null, name: this.override.name, selector: this.override.selector }
    }
    this.groups.set(key, row)
    return row
  }
}

function anyOf(conditions: SQL[]): SQL {
  return conditions.length === 1 ? conditions[0]! : or(...conditions)!
}

function negate(condition: SQL, negated: boolean): SQL {
  return negated ? sql`not (${condition})` : condition
}

function compare<T>(column: Parameters<typeof eq>[0], op: CompareOp, value: T): SQL {
  return op === '=' ? eq(column, value) : ne(column, value)
}

/**
 * Case-insensitive glob where `*` is any run of characters. Without a `*` it is an equality, so
 * `name:web-01` uses the unique index on lower(name); `%`, `_` and `\` are escaped, never wildcards.
 */
export function globMatch(column: typeof target.name | typeof target.address, pattern: string): SQL {
  if (!pattern.includes('*')) return sql`lower(${column}) = lower(${pattern})`
  const like = pattern.replace(/[\\%_]/g, (c) => `\\${c}`).replace(/\*+/g, '%')
  return sql`lower(${column}) like lower(${like}) escape '\\'`
}
