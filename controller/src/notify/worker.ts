import { eq, inArray, sql } from 'drizzle-orm'
import type { AppContext } from '../context.ts'
import { openSecret } from '../crypto/secret-box.ts'
import { uuidArray, type Db } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'
import { CoalescedLoop, settledWithin } from '../wait.ts'
import type { ChannelDriver, ChannelSecret, SendResult } from './channels/types.ts'
import { notification, notificationChannel, type ChannelType, type NotificationChannelRow, type NotificationRow } from './notify.sql.ts'
import { NOTIFY_CHANNEL } from './outbox.ts'
import { LOCK_CLASS } from '../db/locks.ts'

/*
 * Delivers the outbox. Every controller runs one; due rows are claimed with FOR UPDATE SKIP
 * LOCKED under a lease, so a row is in the hands of one worker at a time. The outcome and the
 * attempt row are written in one transaction, so the outbox changes state exactly once per attempt.
 *
 * At the wire it is at-least-once: a controller that dies after the receiver accepted a message
 * but before it recorded that leaves the row `sending`; when the lease runs out any worker puts it
 * back (recording the lost attempt) and it is sent again. Receivers that must not see duplicates
 * de-duplicate on the notification id the drivers send.
 *
 * Rate limit per channel, across controllers: a channel's wire attempts in the last window
 * (notification_attempt, stamped with the claim time) plus its rows in flight (`sending`) must stay
 * below `rate_limit_per_minute`. Claimers serialise that check per channel with a transaction
 * advisory lock, and an attempt's row leaves `sending` in the transaction that records the attempt,
 * so the count is exact. Rows over the limit go back to `pending` until a slot frees: not failed,
 * no attempt used.
 */

export type DriverLookup = (type: ChannelType) => ChannelDriver | undefined

export interface NotificationWorkerOptions {
  /** Deliveries in flight at once on this controller. */
  concurrency?: number
  pollMs?: number
  /** How long a claim is ours; a send is aborted well before it ends. */
  leaseMs?: number
  backoffBaseMs?: number
  backoffCapMs?: number
  /** The rate limit's window (the column is per minute; shorter only in tests). */
  rateWindowMs?: number
  /** How often rows whose lease ran out are looked for (default: half the lease). */
  reclaimMs?: number
  /** How long stop() lets sends in flight finish before aborting them. */
  stopGraceMs?: number
  /** [0, 1) source for the backoff jitter. */
  random?: () => number
}

const DEFAULTS = {
  concurrency: 8,
  pollMs: 1_000,
  leaseMs: 60_000,
  backoffBaseMs: 5_000,
  backoffCapMs: 15 * 60_000,
  rateWindowMs: 60_000,
  stopGraceMs: 2_000,
  random: Math.random,
}
const JITTER = 0.2
/** A receiver's Retry-After is honoured up to this (a year-long one would strand the message). */
const MAX_RETRY_AFTER_MS = 3_600_000
const CLAIM_STOP_WAIT_MS = 2_000
const RECORD_STOP_WAIT_MS = 1_000
const MAX_RESPONSE_CHARS = 2_000
const MAX_ERROR_CHARS = 1_000

interface Claimed {
  id: string
  channel_id: string
  attempts: number
  /** The claim's database time as text (microseconds kept): the attempt's `at`. */
  claimed_at: string
}

interface Budget {
  id: string
  rate_limit: number
  deleted: boolean
  used: number
  retry_at: string
}

type Outcome = 'delivered' | 'failed' | 'rate_limited'

/** Exponential backoff with ±20 % jitter, capped; a receiver's larger Retry-After wins. */
export function retryDelayMs(attempt: number, result: Pick<SendResult, 'retryAfterMs'>, opts: { baseMs: number; capMs: number; random: () => number }): number {
  const exp = opts.baseMs * 2 ** Math.max(0, attempt - 1)
  const jittered = Math.min(opts.capMs, exp * (1 - JITTER + 2 * JITTER * opts.random()))
  const hinted = Math.min(MAX_RETRY_AFTER_MS, Math.max(0, result.retryAfterMs ?? 0))
  return Math.round(Math.max(jittered, hinted))
}

export class NotificationWorker {
  private readonly opts: typeof DEFAULTS & { reclaimMs: number }
  private readonly inFlight = new Map<string, { abort: AbortController; done: Promise<void> }>()
  private readonly timers: NodeJS.Timeout[] = []
  private unlisten: (() => Promise<void>) | undefined
  private readonly claims = new CoalescedLoop(
    () => this.claim(),
    (err) => this.log.warn({ err }, 'notify.claim_failed'),
    () => this.stopped,
  )
  private stopped = false

  constructor(
    private readonly ctx: AppContext,
    private readonly driverFor: DriverLookup,
    opts: NotificationWorkerOptions = {},
  ) {
    this.opts = {
      concurrency: opts.concurrency ?? DEFAULTS.concurrency,
      pollMs: opts.pollMs ?? DEFAULTS.pollMs,
      leaseMs: opts.leaseMs ?? DEFAULTS.leaseMs,
      backoffBaseMs: opts.backoffBaseMs ?? DEFAULTS.backoffBaseMs,
      backoffCapMs: opts.backoffCapMs ?? DEFAULTS.backoffCapMs,
      rateWindowMs: opts.rateWindowMs ?? DEFAULTS.rateWindowMs,
      stopGraceMs: opts.stopGraceMs ?? DEFAULTS.stopGraceMs,
      reclaimMs: opts.reclaimMs ?? Math.max(100, Math.floor((opts.leaseMs ?? DEFAULTS.leaseMs) / 2)),
      random: opts.random ?? DEFAULTS.random,
    }
  }

  private get log() {
    return this.ctx.log
  }

  async start(): Promise<void> {
    this.unlisten = await this.ctx.database.listen(NOTIFY_CHANNEL, () => this.wake())
    const every = (ms: number, fn: () => Promise<unknown> | void) => {
      const t = setInterval(() => void Promise.resolve(fn()).catch((err) => this.log.warn({ err }, 'notify.loop_failed')), ms)
      t.unref()
      this.timers.push(t)
    }
    every(this.opts.pollMs, () => this.wake())
    every(this.opts.reclaimMs, () => this.reclaimExpired())
    await this.reclaimExpired().catch((err) => this.log.warn({ err }, 'notify.reclaim_failed'))
    this.wake()
  }

  /**
   * Stops claiming, lets sends in flight finish for a while, then aborts them (they are recorded as
   * failed attempts and retried). Whatever still hangs is left to its lease.
   */
  async stop(): Promise<void> {
    this.stopped = true
    for (const t of this.timers) clearInterval(t)
    await this.unlisten?.().catch(() => {})
    this.unlisten = undefined
    if (!(await settledWithin(CLAIM_STOP_WAIT_MS, this.claims.current))) this.log.warn({ waitedMs: CLAIM_STOP_WAIT_MS }, 'notify.stop_abandoned_claim')
    const sends = () => Promise.all([...this.inFlight.values()].map((f) => f.done))
    if (await settledWithin(this.opts.stopGraceMs, sends())) return
    for (const f of this.inFlight.values()) f.abort.abort(new Error('the controller is stopping'))
    if (!(await settledWithin(RECORD_STOP_WAIT_MS, sends()))) this.log.warn({ count: this.inFlight.size }, 'notify.stop_abandoned_sends')
  }

  /** Coalesced: one claim loop at a time, and once more if woken meanwhile. */
  wake(): void {
    if (this.stopped) return
    this.claims.request()
  }

  private async claim(): Promise<void> {
    for (;;) {
      const room = this.opts.concurrency - this.inFlight.size
      if (room <= 0 || this.stopped) return
      const { admitted, claimedCount } = await this.claimBatch(room)
      if (admitted.length > 0) {
        const rows = await this.ctx.db
          .select({ row: notification, channel: notificationChannel })
          .from(notification)
          .leftJoin(notificationChannel, eq(notificationChannel.id, notification.channelId))
          .where(inArray(notification.id, admitted.map((a) => a.id)))
        const byId = new Map(rows.map((r) => [r.row.id, r]))
        for (const c of admitted) {
          const r = byId.get(c.id)
          if (r) this.begin(r.row, r.channel, c)
        }
      }
      // A full batch may have more behind it (rows pushed back by the rate limit free their places too).
      if (claimedCount < room) return
    }
  }

  private async claimBatch(limit: number): Promise<{ admitted: Claimed[]; claimedCount: number }> {
    const me = this.ctx.nodeId
    const lease = `${this.opts.leaseMs} milliseconds`
    return this.ctx.db.transaction(async (txRaw) => {
      const tx = txRaw as unknown as Db
      const claimed = rowsOf<Claimed>(
        await tx.execute(sql`
          update notification set status = 'sending', claimed_by = ${me}, lease_until = now() + ${lease}::interval, attempts = attempts + 1
          where id in (
            select id from notification
            where status = 'pending' and next_attempt_at <= now()
            order by next_attempt_at
            for update skip locked
            limit ${limit})
          returning id, channel_id, attempts, now()::text as claimed_at`),
      )
      if (claimed.length === 0) return { admitted: [], claimedCount: 0 }
      return { admitted: await this.withinRateLimits(tx, claimed), claimedCount: claimed.length }
    })
  }

  /** Keeps the claimed rows each channel's limit allows; the others go back to wait for a free slot. */
  private async withinRateLimits(tx: Db, claimed: Claimed[]): Promise<Claimed[]> {
    const channelIds = [...new Set(claimed.map((c) => c.channel_id))].sort()
    // Sorted, so two claimers never wait on each other's locks in opposite orders.
    for (const id of channelIds) await tx.execute(sql`select pg_advisory_xact_lock(${LOCK_CLASS.notifyChannel}::int, hashtext(${id}))`)
    const windowMs = `${this.opts.rateWindowMs} milliseconds`
    const mine = uuidArray(claimed.map((c) => c.id))
    // next_attempt_at is never earlier than the row's last attempt, so it narrows the rows to look at.
    const budgets = rowsOf<Budget>(
      await tx.execute(sql`
        select c.id, c.rate_limit_per_minute as rate_limit, c.deleted_at is not null as deleted,
          (coalesce(w.recent, 0) + (select count(*) from notification s where s.channel_id = c.id and s.status = 'sending' and s.id <> all(${mine})))::int as used,
          greatest(coalesce(w.oldest + ${windowMs}::interval, now() + interval '1 second'), now() + interval '50 milliseconds')::text as retry_at
        from notification_channel c
        left join lateral (
          select count(*) as recent, min(a.at) as oldest
          from notification n join notification_attempt a on a.notification_id = n.id
          where n.channel_id = c.id and n.next_attempt_at > now() - ${windowMs}::interval and a.at > now() - ${windowMs}::interval
        ) w on true
        where c.id = any(${uuidArray(channelIds)})`),
    )
    const byChannel = new Map(budgets.map((b) => [b.id, b]))
    const admitted: Claimed[] = []
    const over = new Map<string, string[]>()
    const taken = new Map<string, number>()
    for (const c of claimed) {
      const b = byChannel.get(c.channel_id)
      // A deleted or missing channel is admitted: the delivery declares the row dead without sending.
      const free = !b || b.deleted || b.rate_limit <= 0 ? Infinity : b.rate_limit - b.used - (taken.get(c.channel_id) ?? 0)
      if (free > 0) {
        admitted.push(c)
        taken.set(c.channel_id, (taken.get(c.channel_id) ?? 0) + 1)
      } else over.set(c.channel_id, [...(over.get(c.channel_id) ?? []), c.id])
    }
    for (const [channelId, ids] of over) {
      await tx.execute(sql`
        update notification set status = 'pending', claimed_by = null, lease_until = null, attempts = attempts - 1,
          next_attempt_at = ${byChannel.get(channelId)!.retry_at}::timestamptz
        where id = any(${uuidArray(ids)})`)
      this.log.debug({ channelId, count: ids.length }, 'notify.rate_limited')
    }
    return admitted
  }

  private begin(row: NotificationRow, channel: NotificationChannelRow | null, claim: Claimed): void {
    const abort = new AbortController()
    const done = this.deliver(row, channel, claim, abort.signal)
      .catch((err) => this.log.error({ err, notificationId: row.id }, 'notify.deliver_failed'))
      .finally(() => {
        this.inFlight.delete(row.id)
        this.wake()
      })
    this.inFlight.set(row.id, { abort, done })
  }

  private async deliver(row: NotificationRow, channel: NotificationChannelRow | null, claim: Claimed, stopSignal: AbortSignal): Promise<void> {
    const started = Date.now()
    let result: SendResult
    try {
      result = await this.send(row, channel, stopSignal)
    } catch (err) {
      result = { ok: false, error: (err as Error)?.message ?? String(err), durationMs: Date.now() - started }
    }
    await this.record(row, claim, result)
  }

  private async send(row: NotificationRow, channel: NotificationChannelRow | null, stopSignal: AbortSignal): Promise<SendResult> {
    const refuse = (error: string): SendResult => ({ ok: false, permanent: true, error, durationMs: 0 })
    if (!channel) return refuse(`channel ${row.channelId} no longer exists`)
    if (channel.deletedAt) return refuse(`channel "${channel.name}" (${channel.id}) was deleted`)
    const driver = this.driverFor(channel.type)
    if (!driver) return refuse(`no driver for channel type ${channel.type}`)
    let secret: ChannelSecret = {}
    try {
      if (channel.secret) secret = JSON.parse(openSecret(this.ctx.keyring, channel.secret, `notification-channel:${channel.id}`).toString('utf8')) as ChannelSecret
    } catch (err) {
      // Retryable: a master key missing from this controller's configuration can be fixed.
      return { ok: false, error: `cannot open the channel's secret: ${(err as Error).message}`, durationMs: 0 }
    }
    // The send ends well inside the lease, so no other worker takes the row over while it runs.
    const signal = AbortSignal.any([stopSignal, AbortSignal.timeout(Math.max(100, Math.floor(this.opts.leaseMs / 2)))])
    return driver.deliver(channel, secret, row.payload, signal, { id: row.id })
  }

  /** Writes the attempt and the row's next state in one transaction. */
  private async record(row: NotificationRow, claim: Claimed, result: SendResult): Promise<void> {
    const attempt = claim.attempts
    const outcome: Outcome = result.ok ? 'delivered' : result.httpStatus === 429 ? 'rate_limited' : 'failed'
    const error = result.ok ? null : clip(result.error ?? (result.httpStatus ? `HTTP ${result.httpStatus}` : 'delivery failed'), MAX_ERROR_CHARS)
    const dead = !result.ok && (result.permanent === true || attempt >= row.maxAttempts)
    const delayMs = retryDelayMs(attempt, result, { baseMs: this.opts.backoffBaseMs, capMs: this.opts.backoffCapMs, random: this.opts.random })
    // next_attempt_at never goes below the attempt's time: the rate check relies on it.
    const next = result.ok || dead ? sql`greatest(${claim.claimed_at}::timestamptz, next_attempt_at)` : sql`now() + ${`${delayMs} milliseconds`}::interval`
    const status = result.ok ? 'delivered' : dead ? 'dead' : 'pending'
    const updated = await this.ctx.db.transaction(async (txRaw) => {
      const tx = txRaw as unknown as Db
      await tx.execute(sql`
        insert into notification_attempt (notification_id, attempt, at, outcome, http_status, response, error, duration_ms)
        values (${row.id}, ${attempt}, ${claim.claimed_at}::timestamptz, ${outcome}, ${result.httpStatus ?? null},
          ${result.response === undefined ? null : clip(result.response, MAX_RESPONSE_CHARS)}, ${error}, ${Math.round(result.durationMs)})
        on conflict (notification_id, attempt) do update set outcome = excluded.outcome, http_status = excluded.http_status,
          response = excluded.response, error = excluded.error, duration_ms = excluded.duration_ms`)
      // Only while the row is still ours: a lease that ran out (and another claim since) makes this result history only.
      return rowsOf<{ id: string }>(
        await tx.execute(sql`
          update notification set status = ${status}, next_attempt_at = ${next}, lease_until = null,
            claimed_by = ${result.ok ? this.ctx.nodeId : null},
            last_error = ${error}, delivered_at = ${result.ok ? sql`now()` : null}
          where id = ${row.id} and attempts = ${attempt} and (status = 'sending' and claimed_by = ${this.ctx.nodeId}
            or ${result.ok}::boolean and status in ('pending', 'dead'))
          returning id`),
      )
    })
    const fields = { notificationId: row.id, channelId: row.channelId, event: row.event, attempt, httpStatus: result.httpStatus, durationMs: result.durationMs }
    if (updated.length === 0) this.log.warn({ ...fields, outcome }, 'notify.result_after_lease')
    else if (result.ok) this.log.info(fields, 'notify.delivered')
    else if (dead) this.log.warn({ ...fields, error }, 'notify.dead')
    else this.log.info({ ...fields, error, retryInMs: delayMs }, 'notify.attempt_failed')
  }

  /**
   * Rows left `sending` by a controller that died (its lease ran out) go back to the queue — or to
   * the dead letters when that was their last attempt — with the lost attempt recorded.
   */
  async reclaimExpired(): Promise<number> {
    if (this.stopped) return 0
    const rows = rowsOf<{ notification_id: string }>(
      await this.ctx.db.execute(sql`
        with expired as (
          select id, claimed_by from notification
          where status = 'sending' and lease_until < now()
          limit 500 for update skip locked),
        moved as (
          update notification n set
            status = case when n.attempts >= n.max_attempts then 'dead' else 'pending' end,
            claimed_by = null, lease_until = null, next_attempt_at = now(),
            last_error = 'the controller delivering it stopped before recording the outcome; it may have reached the receiver'
          from expired e where n.id = e.id
          returning n.id, n.attempts, e.claimed_by)
        insert into notification_attempt (notification_id, attempt, outcome, error)
        select id, attempts, 'failed', 'lease expired: controller ' || coalesce(claimed_by::text, '?') || ' stopped before recording the outcome; it may have reached the receiver'
        from moved
        on conflict (notification_id, attempt) do nothing
        returning notification_id`),
    )
    if (rows.length > 0) {
      this.log.warn({ count: rows.length }, 'notify.leases_expired')
      this.wake()
    }
    return rows.length
  }
}

function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}…` : s
}
