import { and, asc, eq, gt, inArray, isNotNull, lt, or, sql, type SQL } from 'drizzle-orm'
import { z } from 'zod'
import type { AppContext } from '../context.ts'
import { credential } from '../credentials/credentials.sql.ts'
import { isUniqueViolation, type Db } from '../db/client.ts'
import { AppError, NotFoundError, ValidationError } from '../errors.ts'
import { decodeCursor, pageOf, type Page } from '../http/pagination.ts'
import { parseSelector } from '../selectors/parse.ts'
import { selectorCondition } from '../selectors/compile.ts'
import type { ConnectionInput, TargetInput, TargetPatch } from './schemas.ts'
import { OS_TYPES, target, targetGroup, type Connection, type TargetRow } from './targets.sql.ts'
import { containsText } from '../db/text-search.ts'

/** A target counts as online when it answered (agent heartbeat, connection test) this recently. */
export const ONLINE_WINDOW_MS = 2 * 60_000

export interface TargetDto {
  id: string
  name: string
  address: string
  os_type: string
  description: string | null
  enabled: boolean
  tags: Record<string, string>
  connection: Connection
  facts: Record<string, unknown> | null
  facts_updated_at: string | null
  last_seen_at: string | null
  online: boolean
  /** Things an operator should know, e.g. host-key verification turned off. */
  warnings: string[]
  created_at: string
  updated_at: string
}

export function targetDto(row: TargetRow, now: Date): TargetDto {
  const warnings: string[] = []
  if (row.connection.type === 'ssh' && row.connection.host_key_policy === 'off') warnings.push('SSH host-key verification is off for this target')
  if (row.connection.type === 'winrm' && !row.connection.verify_tls) warnings.push('WinRM TLS certificate validation is off for this target')
  if (row.connection.type === 'winrm' && !row.connection.https) warnings.push('WinRM over plain HTTP')
  return {
    id: row.id,
    name: row.name,
    address: row.address,
    os_type: row.osType,
    description: row.description,
    enabled: row.enabled,
    tags: row.tags,
    connection: row.connection,
    facts: row.facts,
    facts_updated_at: row.factsUpdatedAt?.toISOString() ?? null,
    last_seen_at: row.lastSeenAt?.toISOString() ?? null,
    online: row.lastSeenAt !== null && now.getTime() - row.lastSeenAt.getTime() < ONLINE_WINDOW_MS,
    warnings,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  }
}

const CREDENTIAL_KINDS: Record<'ssh' | 'winrm', readonly string[]> = { ssh: ['ssh_password', 'ssh_key'], winrm: ['winrm'] }

export interface Problem {
  path: string
  message: string
}

/** What connection checks need to know about other records; the importer answers from preloaded maps. */
export interface ConnectionLookups {
  credentialType(id: string): string | undefined
  targetConnectionType(id: string): string | undefined
}

/** Credentials and jump hosts a connection names must exist and fit; returns every problem found. */
export function checkConnection(connection: ConnectionInput, selfId: string | null, lookups: ConnectionLookups, prefix = 'connection'): Problem[] {
  if (connection.type === 'agent') return []
  const problems: Problem[] = []
  const refs = [{ id: connection.credential_id, path: `${prefix}.credential_id` }]
  if (connection.type === 'ssh') connection.jump.forEach((hop, i) => refs.push({ id: hop.credential_id, path: `${prefix}.jump[${i}].credential_id` }))
  for (const ref of refs) {
    if (ref.id === null) continue
    const type = lookups.credentialType(ref.id)
    if (!type) problems.push({ path: ref.path, message: `no credential ${ref.id}` })
    else if (!CREDENTIAL_KINDS[connection.type].includes(type)) problems.push({ path: ref.path, message: `a ${type} credential cannot log in over ${connection.type === 'ssh' ? 'SSH' : 'WinRM'}` })
  }
  if (connection.type === 'ssh') {
    connection.jump.forEach((hop, i) => {
      const path = `${prefix}.jump[${i}].target_id`
      const type = lookups.targetConnectionType(hop.target_id)
      if (hop.target_id === selfId) problems.push({ path, message: 'a target cannot be its own jump host' })
      else if (!type) problems.push({ path, message: `no target ${hop.target_id}` })
      else if (type !== 'ssh') problems.push({ path, message: 'a jump host must be reached over SSH' })
    })
  }
  return problems
}

export async function connectionProblems(db: Db, connection: ConnectionInput, selfId: string | null, prefix = 'connection'): Promise<Problem[]> {
  if (connection.type === 'agent') return []
  const credentialIds = [connection.credential_id, ...(connection.type === 'ssh' ? connection.jump.map((h) => h.credential_id) : [])].filter((id): id is string => id !== null)
  const hopIds = connection.type === 'ssh' ? connection.jump.map((h) => h.target_id) : []
  const creds = credentialIds.length ? await db.select({ id: credential.id, type: credential.type }).from(credential).where(inArray(credential.id, credentialIds)) : []
  const hops = hopIds.length ? await db.select({ id: target.id, connection: target.connection }).from(target).where(inArray(target.id, hopIds)) : []
  const credTypes = new Map(creds.map((c) => [c.id, c.type as string]))
  const hopTypes = new Map(hops.map((h) => [h.id, h.connection.type as string]))
  return checkConnection(connection, selfId, { credentialType: (id) => credTypes.get(id), targetConnectionType: (id) => hopTypes.get(id) }, prefix)
}

async function assertConnection(db: Db, connection: ConnectionInput, selfId: string | null): Promise<void> {
  const problems = await connectionProblems(db, connection, selfId)
  if (problems.length) throw new ValidationError(`invalid connection: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems)
}


function nameTaken(name: string, err: unknown): AppError {
  return new AppError('CONFLICT', `a target named ${name} already exists`, [{ path: 'name', message: 'already taken' }], { cause: err })
}

export async function createTarget(ctx: AppContext, input: TargetInput): Promise<TargetDto> {
  await assertConnection(ctx.db, input.connection, null)
  const now = ctx.clock()
  try {
    const [row] = await ctx.db
      .insert(target)
      .values({ name: input.name, address: input.address, osType: input.os_type, description: input.description ?? null, enabled: input.enabled, tags: input.tags, connection: input.connection, createdAt: now, updatedAt: now })
      .returning()
    return targetDto(row!, now)
  } catch (err) {
    if (isUniqueViolation(err)) throw nameTaken(input.name, err)
    throw err
  }
}

export async function getTargetRow(db: Db, id: string): Promise<TargetRow> {
  if (!z.uuid().safeParse(id).success) throw new NotFoundError('target', id)
  const [row] = await db.select().from(target).where(eq(target.id, id))
  if (!row) throw new NotFoundError('target', id)
  return row
}

export async function updateTarget(ctx: AppContext, id: string, patch: TargetPatch): Promise<{ before: TargetDto; after: TargetDto }> {
  const now = ctx.clock()
  const row = await getTargetRow(ctx.db, id)
  if (patch.connection) await assertConnection(ctx.db, patch.connection, id)
  try {
    const [updated] = await ctx.db
      .update(target)
      .set({
        ...(patch.name !== undefined ? { name: patch.name } : {}),
        ...(patch.address !== undefined ? { address: patch.address } : {}),
        ...(patch.os_type !== undefined ? { osType: patch.os_type } : {}),
        ...(patch.description !== undefined ? { description: patch.description } : {}),
        ...(patch.enabled !== undefined ? { enabled: patch.enabled } : {}),
        ...(patch.tags !== undefined ? { tags: patch.tags } : {}),
        ...(patch.connection !== undefined ? { connection: patch.connection } : {}),
        updatedAt: now,
      })
      .where(eq(target.id, id))
      .returning()
    return { before: targetDto(row, now), after: targetDto(updated!, now) }
  } catch (err) {
    if (isUniqueViolation(err)) throw nameTaken(patch.name ?? row.name, err)
    throw err
  }
}

/** Refused while another target uses this one as a jump host. */
export async function removeTarget(ctx: AppContext, id: string): Promise<TargetDto> {
  const row = await getTargetRow(ctx.db, id)
  const dependants = await ctx.db
    .select({ id: target.id, name: target.name })
    .from(target)
    .where(sql`${target.connection} @> ${JSON.stringify({ jump: [{ target_id: id }] })}::jsonb`)
  if (dependants.length) throw new AppError('CONFLICT', `target ${row.name} is a jump host for ${dependants.map((d) => d.name).join(', ')}`, { targets: dependants })
  await ctx.db.delete(target).where(eq(target.id, id))
  return targetDto(row, ctx.clock())
}

export const ListTargetsQuery = z.object({
  q: z.string().trim().max(200).optional(),
  os: z.enum(OS_TYPES).optional(),
  /** `key=value`; repeat the parameter for several. */
  tag: z.union([z.string(), z.array(z.string())]).optional(),
  group: z.string().max(255).optional(),
  /** `agentless`: reached from the controller (SSH or WinRM), not through an agent. */
  connection: z.enum(['agent', 'ssh', 'winrm', 'agentless']).optional(),
  online: z.enum(['true', 'false']).optional(),
  enabled: z.enum(['true', 'false']).optional(),
  selector: z.string().max(4096).optional(),
})
export type ListTargetsQuery = z.infer<typeof ListTargetsQuery>


function tagConditions(tag: ListTargetsQuery['tag']): SQL[] {
  const list = tag === undefined ? [] : Array.isArray(tag) ? tag : [tag]
  return list.map((t) => {
    const at = t.indexOf('=')
    if (at <= 0) throw new ValidationError('invalid query parameters', [{ path: 'tag', message: 'use tag=key=value' }])
    return sql`${target.tags} @> ${JSON.stringify({ [t.slice(0, at)]: t.slice(at + 1) })}::jsonb`
  })
}

async function groupCondition(db: Db, group: string): Promise<SQL> {
  const byId = z.uuid().safeParse(group).success
  const [row] = await db
    .select({ name: targetGroup.name })
    .from(targetGroup)
    .where(byId ? eq(targetGroup.id, group) : sql`lower(${targetGroup.name}) = lower(${group})`)
  if (!row) throw new ValidationError('invalid query parameters', [{ path: 'group', message: `no group ${group}` }])
  return selectorCondition(db, parseSelector(`group:${JSON.stringify(row.name)}`), { includeDisabled: true })
}

/** Filtered, name-ordered listing with a keyset cursor; every filter is backed by an index. */
export async function listTargets(ctx: AppContext, query: ListTargetsQuery, page: { limit: number; cursor?: string | undefined }): Promise<Page<TargetDto>> {
  const now = ctx.clock()
  const after = page.cursor ? decodeCursor(page.cursor, z.object({ n: z.string() })).n : undefined
  const onlineSince = new Date(now.getTime() - ONLINE_WINDOW_MS)
  const conditions: (SQL | undefined)[] = [
    after !== undefined ? gt(sql`lower(${target.name})`, after) : undefined,
    query.q ? containsText(query.q, target.name, target.address) : undefined,
    query.os ? eq(target.osType, query.os) : undefined,
    query.connection === 'agentless' ? sql`(${target.connection}->>'type') <> 'agent'` : undefined,
    query.connection && query.connection !== 'agentless' ? sql`(${target.connection}->>'type') = ${query.connection}` : undefined,
    query.enabled ? eq(target.enabled, query.enabled === 'true') : undefined,
    query.online === 'true' ? and(isNotNull(target.lastSeenAt), gt(target.lastSeenAt, onlineSince)) : undefined,
    query.online === 'false' ? or(sql`${target.lastSeenAt} is null`, lt(target.lastSeenAt, onlineSince)) : undefined,
    ...tagConditions(query.tag),
    query.group ? await groupCondition(ctx.db, query.group) : undefined,
    // The list shows disabled targets too (filter with enabled=false|true); the selector only narrows.
    query.selector ? await selectorCondition(ctx.db, parseSelector(query.selector), { includeDisabled: true }) : undefined,
  ]
  const where = conditions.filter((c): c is SQL => c !== undefined)
  const rows = await ctx.db
    .select()
    .from(target)
    .where(where.length ? and(...where) : undefined)
    .orderBy(asc(sql`lower(${target.name})`))
    .limit(page.limit + 1)
  return pageOf(rows, page.limit, (r) => targetDto(r, now), (r) => ({ n: r.name.toLowerCase() }))
}

