import { and, asc, count, eq, gt, inArray, sql } from 'drizzle-orm'
import { z } from 'zod'
import type { AppContext } from '../context.ts'
import { isUniqueViolation, uuidArray, type Db } from '../db/client.ts'
import { AppError, NotFoundError, ValidationError } from '../errors.ts'
import { decodeCursor, pageOf, type Page } from '../http/pagination.ts'
import { checkGroupSelector, groupMembershipConditions, selectorCondition } from '../selectors/compile.ts'
import { parseSelector } from '../selectors/parse.ts'
import { targetDto, type TargetDto } from '../targets/service.ts'
import { target, targetGroup, targetGroupMember } from '../targets/targets.sql.ts'

export const GroupName = z.string().trim().regex(/^[A-Za-z0-9][A-Za-z0-9 ._@:-]{0,127}$/, 'letters, digits, spaces and . _ @ : - (max 128)')

export const GroupInput = z
  .object({
    name: GroupName,
    description: z.string().trim().max(2000).nullish(),
    /** Dynamic membership, e.g. `os=linux,env=prod,role!=db`. */
    selector: z.string().trim().min(1).max(4096).nullish(),
    /** Static members (target ids). */
    members: z.array(z.uuid()).max(10_000).optional(),
  })
  .strict()
export type GroupInput = z.infer<typeof GroupInput>
export const GroupPatch = GroupInput.partial().strict()

export interface GroupDto {
  id: string
  name: string
  description: string | null
  selector: string | null
  static_members: number
  created_at: string
  updated_at: string
}

type GroupRow = typeof targetGroup.$inferSelect

function dtoOf(row: GroupRow, staticMembers: number): GroupDto {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    selector: row.selector,
    static_members: staticMembers,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  }
}

async function toDto(db: Db, row: GroupRow): Promise<GroupDto> {
  const [n] = await db.select({ n: count() }).from(targetGroupMember).where(eq(targetGroupMember.groupId, row.id))
  return dtoOf(row, Number(n?.n ?? 0))
}

export async function getGroupRow(db: Db, id: string): Promise<GroupRow> {
  if (!z.uuid().safeParse(id).success) throw new NotFoundError('target group', id)
  const [row] = await db.select().from(targetGroup).where(eq(targetGroup.id, id))
  if (!row) throw new NotFoundError('target group', id)
  return row
}

async function assertTargetsExist(db: Db, ids: string[], path: string): Promise<void> {
  if (!ids.length) return
  const found = await db.select({ id: target.id }).from(target).where(inArray(target.id, ids))
  const known = new Set(found.map((r) => r.id))
  const missing = ids.map((id, i) => ({ id, i })).filter((x) => !known.has(x.id))
  if (missing.length) throw new ValidationError(`unknown targets in ${path}`, missing.map((m) => ({ path: `${path}[${m.i}]`, message: `no target ${m.id}` })))
}



export async function createGroup(ctx: AppContext, input: GroupInput): Promise<GroupDto> {
  // Parses, names only existing groups, and reaches no cycle once saved.
  if (input.selector) await checkGroupSelector(ctx.db, { name: input.name, selector: input.selector })
  await assertTargetsExist(ctx.db, input.members ?? [], 'members')
  const now = ctx.clock()
  return ctx.db.transaction(async (txRaw) => {
    const tx = txRaw as unknown as Db
    let row: GroupRow
    try {
      ;[row] = (await tx
        .insert(targetGroup)
        .values({ name: input.name, description: input.description ?? null, selector: input.selector ?? null, createdAt: now, updatedAt: now })
        .returning()) as [GroupRow]
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('CONFLICT', `a group named ${input.name} already exists`, undefined, { cause: err })
      throw err
    }
    if (input.members?.length) await tx.insert(targetGroupMember).values([...new Set(input.members)].map((targetId) => ({ groupId: row.id, targetId })))
    return toDto(tx, row)
  })
}

export async function updateGroup(ctx: AppContext, id: string, patch: z.infer<typeof GroupPatch>): Promise<GroupDto> {
  const current = await getGroupRow(ctx.db, id)
  if (patch.selector) await checkGroupSelector(ctx.db, { name: patch.name ?? current.name, selector: patch.selector })
  await assertTargetsExist(ctx.db, patch.members ?? [], 'members')
  return ctx.db.transaction(async (txRaw) => {
    const tx = txRaw as unknown as Db
    if (patch.name !== undefined && patch.name.toLowerCase() !== current.name.toLowerCase()) await assertNotReferenced(tx, current.name)
    let row: GroupRow
    try {
      ;[row] = (await tx
        .update(targetGroup)
        .set({
          ...(patch.name !== undefined ? { name: patch.name } : {}),
          ...(patch.description !== undefined ? { description: patch.description } : {}),
          ...(patch.selector !== undefined ? { selector: patch.selector } : {}),
          updatedAt: ctx.clock(),
        })
        .where(eq(targetGroup.id, id))
        .returning()) as [GroupRow]
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('CONFLICT', `a group named ${patch.name} already exists`, undefined, { cause: err })
      throw err
    }
    if (patch.members !== undefined) {
      await tx.delete(targetGroupMember).where(eq(targetGroupMember.groupId, id))
      if (patch.members.length) await tx.insert(targetGroupMember).values([...new Set(patch.members)].map((targetId) => ({ groupId: id, targetId })))
    }
    return toDto(tx, row)
  })
}

/** Selectors name groups; renaming or deleting one that another group's selector uses would silently change that group. */
async function assertNotReferenced(db: Db, name: string): Promise<void> {
  const candidates = await db.select({ name: targetGroup.name, selector: targetGroup.selector }).from(targetGroup).where(sql`${targetGroup.selector} ilike ${'%' + name.replace(/[\\%_]/g, (m) => `\\${m}`) + '%'}`)
  const users = candidates.filter((g) => g.selector && parseSelector(g.selector).alternatives.some((alt) => alt.some((t) => t.kind === 'group' && t.name.toLowerCase() === name.toLowerCase())))
  if (users.length) throw new AppError('CONFLICT', `group ${name} is used in the selector of ${users.map((u) => u.name).join(', ')}`, { groups: users.map((u) => u.name) })
}

export async function removeGroup(ctx: AppContext, id: string): Promise<GroupDto> {
  const row = await getGroupRow(ctx.db, id)
  await assertNotReferenced(ctx.db, row.name)
  const dto = await toDto(ctx.db, row)
  await ctx.db.delete(targetGroup).where(eq(targetGroup.id, id))
  return dto
}

export async function getGroup(ctx: AppContext, id: string): Promise<GroupDto> {
  return toDto(ctx.db, await getGroupRow(ctx.db, id))
}

export async function listGroups(ctx: AppContext, page: { limit: number; cursor?: string | undefined }): Promise<Page<GroupDto>> {
  const after = page.cursor ? decodeCursor(page.cursor, z.object({ n: z.string() })).n : undefined
  // One query for the page, member counts included (no query per group).
  const rows = await ctx.db
    .select({
      group: targetGroup,
      staticMembers: sql<number>`(select count(*)::int from ${targetGroupMember} where ${targetGroupMember.groupId} = ${targetGroup.id})`,
    })
    .from(targetGroup)
    .where(after !== undefined ? gt(sql`lower(${targetGroup.name})`, after) : undefined)
    .orderBy(asc(sql`lower(${targetGroup.name})`))
    .limit(page.limit + 1)
  return pageOf(rows, page.limit, (r) => dtoOf(r.group, Number(r.staticMembers)), (r) => ({ n: r.group.name.toLowerCase() }))
}

/** The group's current members: static ∪ selector, resolved now. */
export async function groupMembers(ctx: AppContext, id: string, page: { limit: number; cursor?: string | undefined }): Promise<Page<TargetDto>> {
  const row = await getGroupRow(ctx.db, id)
  const now = ctx.clock()
  const after = page.cursor ? decodeCursor(page.cursor, z.object({ n: z.string() })).n : undefined
  const membership = await selectorCondition(ctx.db, parseSelector(`group:${JSON.stringify(row.name)}`), { includeDisabled: true })
  const rows = await ctx.db
    .select()
    .from(target)
    .where(and(membership, after !== undefined ? gt(sql`lower(${target.name})`, after) : undefined))
    .orderBy(asc(sql`lower(${target.name})`))
    .limit(page.limit + 1)
  return pageOf(rows, page.limit, (r) => targetDto(r, now), (r) => ({ n: r.name.toLowerCase() }))
}

export async function changeStaticMembers(ctx: AppContext, id: string, targetIds: string[], change: 'add' | 'remove'): Promise<GroupDto> {
  const row = await getGroupRow(ctx.db, id)
  const unique = [...new Set(targetIds)]
  if (change === 'add') {
    await assertTargetsExist(ctx.db, unique, 'target_ids')
    if (unique.length) await ctx.db.insert(targetGroupMember).values(unique.map((targetId) => ({ groupId: id, targetId }))).onConflictDoNothing()
  } else if (unique.length) {
    await ctx.db.delete(targetGroupMember).where(and(eq(targetGroupMember.groupId, id), inArray(targetGroupMember.targetId, unique)))
  }
  return toDto(ctx.db, row)
}

export interface GroupRef {
  id: string
  name: string
}

/**
 * The groups each of these targets is in now (static members ∪ selector matches), by target id,
 * in group-name order: one query for static membership and one per group with a selector.
 */
export async function groupsOfTargets(db: Db, ids: string[]): Promise<Map<string, GroupRef[]>> {
  const out = new Map<string, GroupRef[]>()
  if (!ids.length) return out
  const groups = await db.select({ id: targetGroup.id, name: targetGroup.name, selector: targetGroup.selector }).from(targetGroup).orderBy(asc(sql`lower(${targetGroup.name})`))
  if (!groups.length) return out
  const members = new Map<string, Set<string>>(groups.map((g) => [g.id, new Set<string>()]))
  // The page's ids as one uuid[] bind value: a 500-row page as 500 parameters per query cost more
  // controller CPU (building and sending the statement) than the query itself.
  const listed = uuidArray(ids)
  const statics = await db
    .select({ groupId: targetGroupMember.groupId, targetId: targetGroupMember.targetId })
    .from(targetGroupMember)
    .where(sql`${targetGroupMember.targetId} = any(${listed})`)
  for (const s of statics) members.get(s.groupId)?.add(s.targetId)
  const bySelector = groups.filter((g) => g.selector)
  if (bySelector.length) {
    // One query for every selector group: a boolean column per group, true where the listed target is in it.
    const conditions = await groupMembershipConditions(db, bySelector, groups)
    const columns = Object.fromEntries(conditions.map((c, i) => [`g${i}`, sql<boolean>`coalesce(${c}, false)`]))
    const rows = await db
      .select({ id: target.id, ...columns })
      .from(target)
      .where(sql`${target.id} = any(${listed})`)
    for (const r of rows as Record<string, unknown>[]) bySelector.forEach((g, i) => r[`g${i}`] === true && members.get(g.id)!.add(r.id as string))
  }
  for (const g of groups) {
    for (const targetId of members.get(g.id)!) {
      const list = out.get(targetId) ?? []
      list.push({ id: g.id, name: g.name })
      out.set(targetId, list)
    }
  }
  return out
}
