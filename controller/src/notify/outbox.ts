import { and, desc, eq, gte, inArray, sql, type SQL } from 'drizzle-orm'
import { z } from 'zod'
import type { AppContext } from '../context.ts'
import { isUuid, type Db } from '../db/client.ts'
import { AppError, NotFoundError } from '../errors.ts'
import { decodeCursor, pageOf, type Page } from '../http/pagination.ts'
import { notification, notificationAttempt, type NotificationRow, type NotificationStatus } from './notify.sql.ts'

/*
 * The outbox: notifications are written in the transaction of the event that causes them (so a
 * crash cannot lose one, nor a rolled-back event send one), and the NotificationWorker on any
 * controller delivers them. These are the outbox's verbs: enqueue, history, dead letters and the
 * operator's retry / discard, and the queue's status.
 */

/** Wakes the workers of every controller when a notification becomes due (NOTIFY is sent at commit). */
export const NOTIFY_CHANNEL = 'opsc_notify'

/** One message to one channel (and recipient), already rendered. Never carries the channel's secret. */
export interface OutboxMessage {
  channelId: string
  event: string
  /** Exactly once per event/rule/channel/recipient, e.g. `run:<id>:run.failed:rule:<id>:channel:<id>`. */
  dedupeKey?: string | null
  recipient?: string | null
  subject: string
  payload: Record<string, unknown>
  maxAttempts?: number
  /** Deferred delivery (quiet hours, digests): not sent before this time. */
  notBefore?: Date
  runId?: string | null
  ruleId?: string | null
  /** The user it is addressed to (their preferences were applied). */
  userId?: string | null
  /** Held for the user's digest instead of delivered on its own (the payload is the unshaped message). */
  held?: boolean
}

/**
 * Inserts a message inside the caller's transaction; its id when it is new. A second enqueue with
 * the same dedupe key is ignored (null).
 */
export async function enqueueNotification(tx: Db, row: OutboxMessage): Promise<string | null> {
  const [inserted] = await tx
    .insert(notification)
    .values({
      channelId: row.channelId,
      event: row.event,
      dedupeKey: row.dedupeKey ?? null,
      recipient: row.recipient ?? null,
      subject: row.subject,
      payload: row.payload,
      ...(row.maxAttempts !== undefined ? { maxAttempts: row.maxAttempts } : {}),
      ...(row.notBefore !== undefined ? { nextAttemptAt: row.notBefore } : {}),
      runId: row.runId ?? null,
      ruleId: row.ruleId ?? null,
      userId: row.userId ?? null,
      ...(row.held ? { status: 'held' as const } : {}),
    })
    .onConflictDoNothing({ target: notification.dedupeKey })
    .returning({ id: notification.id })
  if (!inserted) return null
  // Identical NOTIFYs in one transaction collapse into one; a deferred or held message is found by the poll.
  if (row.notBefore === undefined && !row.held) await wakeWorkers(tx)
  return inserted.id
}

export async function wakeWorkers(db: Db): Promise<void> {
  await db.execute(sql`select pg_notify(${NOTIFY_CHANNEL}, '')`)
}

// ---- history -------------------------------------------------------------------------------

const iso = (d: Date | null) => d?.toISOString() ?? null

export interface AttemptDto {
  attempt: number
  at: string
  outcome: string
  http_status: number | null
  response: string | null
  error: string | null
  duration_ms: number | null
}

export interface NotificationDto {
  id: string
  channel_id: string
  event: string
  dedupe_key: string | null
  recipient: string | null
  subject: string
  status: NotificationStatus
  attempt_count: number
  max_attempts: number
  next_attempt_at: string
  last_error: string | null
  claimed_by: string | null
  lease_until: string | null
  run_id: string | null
  rule_id: string | null
  user_id: string | null
  /** For a `batched` message: the digest that carried it. */
  digest_id: string | null
  created_at: string
  delivered_at: string | null
  /** Every delivery attempt, oldest first. */
  attempts: AttemptDto[]
}

type AttemptRow = typeof notificationAttempt.$inferSelect

function notificationDto(row: NotificationRow, attempts: AttemptRow[]): NotificationDto {
  return {
    id: row.id,
    channel_id: row.channelId,
    event: row.event,
    dedupe_key: row.dedupeKey,
    recipient: row.recipient,
    subject: row.subject,
    status: row.status,
    attempt_count: row.attempts,
    max_attempts: row.maxAttempts,
    next_attempt_at: row.nextAttemptAt.toISOString(),
    last_error: row.lastError,
    claimed_by: row.claimedBy,
    lease_until: iso(row.leaseUntil),
    run_id: row.runId,
    rule_id: row.ruleId,
    user_id: row.userId,
    digest_id: row.digestId,
    created_at: row.createdAt.toISOString(),
    delivered_at: iso(row.deliveredAt),
    attempts: attempts.map((a) => ({
      attempt: a.attempt,
      at: a.at.toISOString(),
      outcome: a.outcome,
      http_status: a.httpStatus,
      response: a.response,
      error: a.error,
      duration_ms: a.durationMs,
    })),
  }
}

export interface ListNotificationsQuery {
  status?: NotificationStatus | undefined
  channel_id?: string | undefined
  event?: string | undefined
  run_id?: string | undefined
  since?: Date | undefined
}

/** The cursor is the last row's id: timestamps from now() carry microseconds a JSON date would lose. */
const Cursor = z.object({ id: z.uuid() })

/** Newest first, keyset-paginated on (created_at, id); each item with its attempts. */
export async function listNotifications(ctx: AppContext, query: ListNotificationsQuery, page: { limit: number; cursor?: string | undefined }): Promise<Page<NotificationDto>> {
  const after = page.cursor ? decodeCursor(page.cursor, Cursor) : undefined
  const where: (SQL | undefined)[] = [
    query.status ? eq(notification.status, query.status) : undefined,
    query.channel_id ? eq(notification.channelId, query.channel_id) : undefined,
    query.event ? eq(notification.event, query.event) : undefined,
    query.run_id ? eq(notification.runId, query.run_id) : undefined,
    query.since ? gte(notification.createdAt, query.since) : undefined,
    after
      ? sql`(${notification.createdAt}, ${notification.id}) < (select n2.created_at, n2.id from notification n2 where n2.id = ${after.id})`
      : undefined,
  ]
  const rows = await ctx.db
    .select()
    .from(notification)
    .where(and(...where))
    .orderBy(desc(notification.createdAt), desc(notification.id))
    .limit(page.limit + 1)
  const attempts = await attemptsOf(ctx.db, rows.slice(0, page.limit).map((r) => r.id))
  return pageOf(rows, page.limit, (r) => notificationDto(r, attempts.get(r.id) ?? []), (r) => ({ id: r.id }))
}

async function attemptsOf(db: Db, ids: string[]): Promise<Map<string, AttemptRow[]>> {
  const byId = new Map<string, AttemptRow[]>()
  if (ids.length === 0) return byId
  const rows = await db.select().from(notificationAttempt).where(inArray(notificationAttempt.notificationId, ids)).orderBy(notificationAttempt.attempt)
  for (const a of rows) byId.set(a.notificationId, [...(byId.get(a.notificationId) ?? []), a])
  return byId
}

export async function getNotification(ctx: AppContext, id: string): Promise<NotificationDto & { payload: Record<string, unknown> }> {
  const row = await notificationRow(ctx.db, id)
  const attempts = await attemptsOf(ctx.db, [id])
  return { ...notificationDto(row, attempts.get(id) ?? []), payload: row.payload }
}

async function notificationRow(db: Db, id: string, opts: { forUpdate?: boolean } = {}): Promise<NotificationRow> {
  if (!isUuid(id)) throw new NotFoundError('notification', id)
  const q = db.select().from(notification).where(eq(notification.id, id))
  const [row] = opts.forUpdate ? await q.for('update') : await q
  if (!row) throw new NotFoundError('notification', id)
  return row
}

// ---- dead letters --------------------------------------------------------------------------

/**
 * A dead (or discarded) message goes back to the queue, due now. Its attempts stay in the history
 * and numbering continues; it gets a fresh budget as large as its last one.
 */
export async function retryNotification(ctx: AppContext, id: string): Promise<NotificationDto> {
  await ctx.db.transaction(async (txRaw) => {
    const tx = txRaw as unknown as Db
    const row = await notificationRow(tx, id, { forUpdate: true })
    if (row.status === 'delivered') throw new AppError('CONFLICT', `notification ${id} was already delivered`)
    if (row.status === 'pending' || row.status === 'sending') throw new AppError('CONFLICT', `notification ${id} is ${row.status}, not dead: it is still being delivered`)
    await tx
      .update(notification)
      .set({ status: 'pending', nextAttemptAt: sql`now()`, maxAttempts: row.attempts + row.maxAttempts, claimedBy: null, leaseUntil: null })
      .where(eq(notification.id, id))
    await wakeWorkers(tx)
  })
  return getNotification(ctx, id)
}

/** A queued or dead message is dropped for good (kept in the history as `discarded`). */
export async function discardNotification(ctx: AppContext, id: string): Promise<NotificationDto> {
  await ctx.db.transaction(async (txRaw) => {
    const tx = txRaw as unknown as Db
    const row = await notificationRow(tx, id, { forUpdate: true })
    if (row.status !== 'dead' && row.status !== 'pending') {
      const why = row.status === 'sending' ? 'is being delivered right now; try again when the attempt ends' : `is already ${row.status}`
      throw new AppError('CONFLICT', `notification ${id} ${why}`)
    }
    await tx.update(notification).set({ status: 'discarded', claimedBy: null, leaseUntil: null }).where(eq(notification.id, id))
  })
  return getNotification(ctx, id)
}

// ---- status --------------------------------------------------------------------------------

export interface OutboxStatus {
  queue_depth: number
  sending: number
  dead: number
  /** Waiting for users' digests. */
  held: number
  oldest_pending_at: string | null
  last_error: { at: string; message: string; channel_id: string } | null
  last_delivery_at: string | null
}

export async function getOutboxStatus(ctx: AppContext): Promise<OutboxStatus> {
  const [counts] = await ctx.db
    .select({
      pending: sql<number>`(count(*) filter (where ${notification.status} = 'pending'))::int`,
      sending: sql<number>`(count(*) filter (where ${notification.status} = 'sending'))::int`,
      dead: sql<number>`(count(*) filter (where ${notification.status} = 'dead'))::int`,
      held: sql<number>`(count(*) filter (where ${notification.status} = 'held'))::int`,
      oldestPending: sql<Date | null>`min(${notification.createdAt}) filter (where ${notification.status} = 'pending')`.mapWith(notification.createdAt),
      lastDelivery: sql<Date | null>`max(${notification.deliveredAt})`.mapWith(notification.deliveredAt),
    })
    .from(notification)
  const [lastError] = await ctx.db
    .select({ at: notificationAttempt.at, error: notificationAttempt.error, httpStatus: notificationAttempt.httpStatus, channelId: notification.channelId })
    .from(notificationAttempt)
    .innerJoin(notification, eq(notification.id, notificationAttempt.notificationId))
    .where(sql`${notificationAttempt.outcome} <> 'delivered'`)
    .orderBy(desc(notificationAttempt.at))
    .limit(1)
  return {
    queue_depth: counts?.pending ?? 0,
    sending: counts?.sending ?? 0,
    dead: counts?.dead ?? 0,
    held: counts?.held ?? 0,
    oldest_pending_at: iso(counts?.oldestPending ?? null),
    last_error: lastError
      ? { at: lastError.at.toISOString(), message: lastError.error ?? `HTTP ${lastError.httpStatus ?? '?'}`, channel_id: lastError.channelId }
      : null,
    last_delivery_at: iso(counts?.lastDelivery ?? null),
  }
}
