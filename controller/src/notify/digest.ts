import { and, asc, eq, inArray, sql } from 'drizzle-orm'
import type { AppContext } from '../context.ts'
import { rowsOf } from '../db/migrate.ts'
import type { Db } from '../db/client.ts'
import { appUser } from '../users/users.sql.ts'
import { driverFor } from './channels/index.ts'
import type { Message } from './channels/types.ts'
import { notification, notificationChannel, notificationPreference } from './notify.sql.ts'
import { enqueueNotification } from './outbox.ts'
import { quietUntil } from './preferences.ts'

/*
 * Digests: messages for a user in digest mode are `held` (see dispatch.ts). When the oldest held
 * message for a (user, channel) is N minutes old, one digest message carries them all: the held
 * rows are claimed with SKIP LOCKED, marked `batched` with the digest's id, and the digest queued,
 * in one transaction — so each message is in exactly one digest, whichever controller builds it.
 */

/** Lines listed in one digest; the rest are counted. */
const DIGEST_LINES = 200
/** Held rows one digest carries; more wait for the next pass (a minute later at most). */
const DIGEST_BATCH = 5_000

const SEVERITY_ORDER: Message['severity'][] = ['success', 'info', 'warning', 'error', 'critical']

/** One digest per (user, channel) that is due; returns how many digests were queued. */
export async function sendDueDigests(ctx: AppContext, limit = 100): Promise<number> {
  const now = ctx.clock()
  // Due: the oldest held message waited the user's digest interval (or the user left digest mode).
  const due = rowsOf<{ user_id: string; channel_id: string }>(
    await ctx.db.execute(sql`
      select n.user_id, n.channel_id from notification n
      left join notification_preference p on p.user_id = n.user_id
      where n.status = 'held'
      group by n.user_id, n.channel_id, p.digest_minutes
      having p.digest_minutes is null or min(n.created_at) <= ${now.toISOString()}::timestamptz - make_interval(mins => p.digest_minutes)
      limit ${limit}`),
  )
  let sent = 0
  for (const group of due) {
    if (await ctx.db.transaction((tx) => digestOne(ctx, tx as unknown as Db, group.user_id, group.channel_id, now))) sent++
  }
  return sent
}

async function digestOne(ctx: AppContext, db: Db, userId: string, channelId: string, now: Date): Promise<boolean> {
  const held = await db
    .select({ id: notification.id, payload: notification.payload, runId: notification.runId })
    .from(notification)
    .where(and(eq(notification.status, 'held'), eq(notification.userId, userId), eq(notification.channelId, channelId)))
    .orderBy(asc(notification.createdAt), asc(notification.id))
    .limit(DIGEST_BATCH)
    .for('update', { skipLocked: true })
  if (!held.length) return false
  const [channel] = await db.select().from(notificationChannel).where(eq(notificationChannel.id, channelId))
  const [user] = await db
    .select({ email: appUser.email, pref: notificationPreference })
    .from(appUser)
    .leftJoin(notificationPreference, eq(notificationPreference.userId, appUser.id))
    .where(eq(appUser.id, userId))
  const driver = channel && driverFor(channel.type)
  const recipient = channel?.type === 'email' ? (user?.email ?? null) : null
  const messages = held.map((h) => (h.payload as { message: Message }).message)
  const ids = held.map((h) => h.id)
  if (!channel || !driver || channel.deletedAt || !user || (channel.type === 'email' && !recipient)) {
    // Nowhere to send it any more: dropped, visibly (the history shows them discarded).
    await db.update(notification).set({ status: 'discarded', lastError: 'digest channel or recipient is gone' }).where(inArray(notification.id, ids))
    return false
  }
  const digest = digestMessage(messages, ctx.config.OPSC_PUBLIC_URL)
  const shaped = driver.render(channel, digest)
  const notBefore = quietUntil(user.pref ?? undefined, now)
  const digestId = await enqueueNotification(db, {
    channelId,
    event: 'digest',
    dedupeKey: `digest:${userId}:${channelId}:${ids[0]}`,
    recipient,
    subject: shaped.subject,
    payload: recipient ? { ...shaped.payload, to: [recipient] } : shaped.payload,
    userId,
    maxAttempts: ctx.config.OPSC_NOTIFY_MAX_ATTEMPTS,
    ...(notBefore ? { notBefore } : {}),
  })
  await db.update(notification).set({ status: 'batched', digestId }).where(inArray(notification.id, ids))
  return digestId !== null
}

/** One message listing many: counts by event, then each message's subject and link. */
export function digestMessage(messages: Message[], publicUrl?: string): Message {
  const byEvent = new Map<string, number>()
  for (const m of messages) byEvent.set(m.event, (byEvent.get(m.event) ?? 0) + 1)
  const severity = messages.reduce<Message['severity']>((worst, m) => (SEVERITY_ORDER.indexOf(m.severity) > SEVERITY_ORDER.indexOf(worst) ? m.severity : worst), 'success')
  const lines = messages.slice(0, DIGEST_LINES).map((m) => `• ${m.subject}${m.link ? ` — ${m.link}` : ''}`)
  if (messages.length > DIGEST_LINES) lines.push(`… and ${messages.length - DIGEST_LINES} more`)
  const counts = [...byEvent].map(([event, n]) => `${n} × ${event}`).join(', ')
  return {
    event: 'digest',
    severity,
    subject: `OpsConductor digest: ${messages.length} notification${messages.length === 1 ? '' : 's'} (${counts})`,
    text: lines.join('\n'),
    ...(publicUrl ? { link: `${publicUrl.replace(/\/+$/, '')}/notifications` } : {}),
    facts: [...byEvent].map(([event, n]) => ({ label: event, value: String(n) })),
    data: { count: messages.length, events: Object.fromEntries(byEvent) },
  }
}
