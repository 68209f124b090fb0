import { inArray, sql } from 'drizzle-orm'
import { z } from 'zod'
import type { AppContext } from '../context.ts'
import type { Db } from '../db/client.ts'
import { AppError } from '../errors.ts'
import { changeStaticMembers } from '../target-groups/service.ts'
import { Tags, TAG_KEY } from './schemas.ts'
import { target } from './targets.sql.ts'

const Ids = z.array(z.uuid()).min(1).max(10_000)

/** One operation on many targets at once, in one transaction. */
export const BulkInput = z.discriminatedUnion('action', [
  z.object({ action: z.literal('add_tags'), target_ids: Ids, tags: Tags }).strict(),
  z.object({ action: z.literal('remove_tags'), target_ids: Ids, keys: z.array(z.string().regex(TAG_KEY)).min(1).max(50) }).strict(),
  z.object({ action: z.literal('set_enabled'), target_ids: Ids, enabled: z.boolean() }).strict(),
  z.object({ action: z.literal('add_to_group'), target_ids: Ids, group_id: z.uuid() }).strict(),
  z.object({ action: z.literal('remove_from_group'), target_ids: Ids, group_id: z.uuid() }).strict(),
  z.object({ action: z.literal('delete'), target_ids: Ids }).strict(),
])
export type BulkInput = z.infer<typeof BulkInput>

export async function bulkChange(ctx: AppContext, input: BulkInput): Promise<{ changed: number }> {
  const ids = [...new Set(input.target_ids)]
  const now = ctx.clock()
  const where = inArray(target.id, ids)
  switch (input.action) {
    case 'add_tags':
      return count(await ctx.db.update(target).set({ tags: sql`${target.tags} || ${JSON.stringify(input.tags)}::jsonb`, updatedAt: now }).where(where).returning({ id: target.id }))
    case 'remove_tags':
      return count(await ctx.db.update(target).set({ tags: sql`${target.tags} - ${sql.param(input.keys)}::text[]`, updatedAt: now }).where(where).returning({ id: target.id }))
    case 'set_enabled':
      return count(await ctx.db.update(target).set({ enabled: input.enabled, updatedAt: now }).where(where).returning({ id: target.id }))
    case 'add_to_group':
    case 'remove_from_group':
      await changeStaticMembers(ctx, input.group_id, ids, input.action === 'add_to_group' ? 'add' : 'remove')
      return { changed: ids.length }
    case 'delete':
      return ctx.db.transaction(async (tx) => deleteMany(tx as unknown as Db, ids))
  }
}

async function deleteMany(db: Db, ids: string[]): Promise<{ changed: number }> {
  // Jump hosts still used by targets outside this batch must stay.
  const users = await db
    .select({ id: target.id, name: target.name, connection: target.connection })
    .from(target)
    .where(sql`${target.connection}->'jump' is not null and jsonb_array_length(${target.connection}->'jump') > 0`)
  const doomed = new Set(ids)
  const outside = users.filter((u) => !doomed.has(u.id) && u.connection.type === 'ssh' && u.connection.jump.some((h) => doomed.has(h.target_id)))
  if (outside.length) throw new AppError('CONFLICT', `some of these targets are jump hosts for ${outside.map((b) => b.name).join(', ')}`)
  return count(await db.delete(target).where(inArray(target.id, ids)).returning({ id: target.id }))
}

const count = (rows: unknown[]) => ({ changed: rows.length })
