import { sql } from 'drizzle-orm'
import type { AppContext } from '../context.ts'
import { rowsOf } from '../db/migrate.ts'

/*
 * Keeps the notification history bounded: messages that are done (delivered, discarded, batched
 * into a digest, dead) and older than OPSC_NOTIFY_RETENTION_DAYS go with their attempts, as do
 * settled escalations. Pending, sending and held messages are never touched.
 */

const BATCH = 1_000
const DAY_MS = 86_400_000

export async function pruneNotifications(ctx: AppContext): Promise<number> {
  const days = ctx.config.OPSC_NOTIFY_RETENTION_DAYS
  if (days <= 0) return 0
  const cutoff = new Date(ctx.clock().getTime() - days * DAY_MS).toISOString()
  let deleted = 0
  for (;;) {
    const gone = rowsOf<{ id: string }>(
      await ctx.db.execute(sql`
        delete from notification where id in (
          select id from notification
          where created_at < ${cutoff}::timestamptz and status in ('delivered', 'discarded', 'batched', 'dead')
          order by created_at limit ${BATCH})
        returning id`),
    )
    deleted += gone.length
    if (gone.length < BATCH) break
  }
  await ctx.db.execute(sql`delete from notification_escalation where status <> 'waiting' and created_at < ${cutoff}::timestamptz`)
  return deleted
}
