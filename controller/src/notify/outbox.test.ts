import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { and, asc, eq, sql } from 'drizzle-orm'
import { callerFor, createTestUser, type TestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createApp } from '../app.ts'
import { auditLog } from '../audit/audit.sql.ts'
import type { AppContext } from '../context.ts'
import { sealSecret } from '../crypto/secret-box.ts'
import type { Db } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'
import type { ChannelDriver, SendResult } from './channels/types.ts'
import { notification, notificationAttempt, notificationChannel, type ChannelType } from './notify.sql.ts'
import { enqueueNotification, type OutboxMessage } from './outbox.ts'
import { NotificationWorker, retryDelayMs, type DriverLookup, type NotificationWorkerOptions } from './worker.ts'

/*
 * The outbox against a real database and real HTTP receivers on loopback. Waits poll the database
 * with generous deadlines; nothing asserts how fast anything happened, only order and limits.
 */

let t: TestContext
let app: ReturnType<typeof createApp>
let op: TestUser
let viewer: TestUser

before(async () => {
  t = await createTestContext()
  app = createApp(t.ctx, { uiDir: '/nonexistent' })
  op = await createTestUser(t.ctx, 'operator')
  viewer = await createTestUser(t.ctx, 'viewer')
})
after(() => t.close())

const as = (user: TestUser) => callerFor(app)(user)
const FAST: NotificationWorkerOptions = { pollMs: 50, backoffBaseMs: 50, backoffCapMs: 400, leaseMs: 30_000, stopGraceMs: 200 }

// ---- a receiver and a driver like the real ones ----------------------------------------------

interface Hit {
  key: string
  at: number
  /** The X-OpsConductor-Delivery header: the notification id the worker gave the driver. */
  delivery: string | undefined
}

class Receiver {
  readonly hits: Hit[] = []
  port = 0
  /** The answer to the n-th request (0-based) for a key. */
  respond: (key: string, n: number) => { status: number; headers?: Record<string, string> } = () => ({ status: 200 })
  delayMs = 0
  private server: http.Server | undefined

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`
  }

  async up(): Promise<this> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const key = String((JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { key?: string }).key)
        const n = this.count(key)
        const delivery = req.headers['x-opsconductor-delivery']
        this.hits.push({ key, at: Date.now(), delivery: typeof delivery === 'string' ? delivery : undefined })
        const answer = this.respond(key, n)
        setTimeout(() => res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers }).end(`answer ${answer.status}`), this.delayMs)
      })
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port, '127.0.0.1', () => resolve())
    })
    this.port = (server.address() as AddressInfo).port
    this.server = server
    return this
  }

  async down(): Promise<void> {
    const server = this.server
    this.server = undefined
    if (!server) return
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  count(key: string): number {
    return this.hits.filter((h) => h.key === key).length
  }
}

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined
  const seconds = Number(header)
  if (Number.isFinite(seconds)) return seconds * 1000
  const at = Date.parse(header)
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now())
}

/** POSTs the payload to the URL in the channel's secret; classifies the answer as a real HTTP driver does. */
async function postPayload(secret: Record<string, string>, payload: Record<string, unknown>, signal: AbortSignal, deliveryId: string): Promise<SendResult> {
  const started = Date.now()
  try {
    const headers = { 'content-type': 'application/json', 'x-opsconductor-delivery': deliveryId }
    const res = await fetch(secret.url!, { method: 'POST', headers, body: JSON.stringify(payload), signal, redirect: 'manual' })
    const response = (await res.text()).slice(0, 200)
    const durationMs = Date.now() - started
    if (res.ok) return { ok: true, httpStatus: res.status, response, durationMs }
    const retryable = res.status === 408 || res.status === 429 || res.status >= 500
    return { ok: false, httpStatus: res.status, response, retryAfterMs: retryAfterMs(res.headers.get('retry-after')), permanent: !retryable, error: `HTTP ${res.status}`, durationMs }
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } }
    return { ok: false, error: e.cause?.code ?? e.message, durationMs: Date.now() - started }
  }
}

const testDriver: ChannelDriver = {
  type: 'webhook',
  render: (_channel, message) => ({ subject: message.subject, payload: { text: message.text } }),
  deliver: (_channel, secret, payload, signal, meta) => postPayload(secret, payload, signal, meta.id),
}
const webhookOnly: DriverLookup = (type) => (type === 'webhook' ? testDriver : undefined)

// ---- helpers --------------------------------------------------------------------------------

async function createChannel(opts: { url: string; rateLimitPerMinute?: number; type?: ChannelType; deleted?: boolean }): Promise<string> {
  const id = randomUUID()
  await t.ctx.db.insert(notificationChannel).values({
    id,
    name: `hook-${id.slice(0, 8)}`,
    type: opts.type ?? 'webhook',
    secret: sealSecret(t.ctx.keyring, JSON.stringify({ url: opts.url }), `notification-channel:${id}`),
    rateLimitPerMinute: opts.rateLimitPerMinute ?? 1000,
    deletedAt: opts.deleted ? new Date() : null,
  })
  return id
}

async function enqueue(channelId: string, key: string, extra: Partial<OutboxMessage> = {}): Promise<string> {
  const id = await t.ctx.db.transaction((tx) => enqueueNotification(tx as unknown as Db, { channelId, event: 'run.failed', dedupeKey: key, subject: `subject ${key}`, payload: { key }, ...extra }))
  const [row] = await t.ctx.db.select({ id: notification.id }).from(notification).where(eq(notification.dedupeKey, key))
  assert.equal(id, row!.id)
  return row!.id
}

const workers: NotificationWorker[] = []
async function startWorker(opts: NotificationWorkerOptions = {}, lookup: DriverLookup = webhookOnly, ctx: AppContext = t.ctx): Promise<NotificationWorker> {
  const w = new NotificationWorker(ctx, lookup, { ...FAST, ...opts })
  workers.push(w)
  await w.start()
  return w
}
async function stopWorkers(): Promise<void> {
  await Promise.all(workers.splice(0).map((w) => w.stop()))
}
/** Another controller on the same database. */
const otherController = (): AppContext => ({ ...t.ctx, nodeId: randomUUID() })

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

async function rowOf(id: string) {
  const [row] = await t.ctx.db.select().from(notification).where(eq(notification.id, id))
  return row!
}
const attemptsOf = (id: string) => t.ctx.db.select().from(notificationAttempt).where(eq(notificationAttempt.notificationId, id)).orderBy(asc(notificationAttempt.attempt))
const untilStatus = (id: string, status: string) => waitFor(`notification ${id} ${status}`, async () => ((await rowOf(id)).status === status ? rowOf(id) : undefined))

// ---- tests ----------------------------------------------------------------------------------

describe('retry delay', () => {
  test('doubles from the base with ±20 % jitter, stops at the cap, and yields to a longer Retry-After', () => {
    const opts = { baseMs: 5_000, capMs: 900_000 }
    assert.equal(retryDelayMs(1, {}, { ...opts, random: () => 0 }), 4_000)
    assert.equal(retryDelayMs(1, {}, { ...opts, random: () => 0.999999 }), 6_000)
    assert.equal(retryDelayMs(3, {}, { ...opts, random: () => 0.5 }), 20_000)
    assert.equal(retryDelayMs(30, {}, { ...opts, random: () => 0.999 }), 900_000)
    assert.equal(retryDelayMs(1, { retryAfterMs: 120_000 }, { ...opts, random: () => 0.5 }), 120_000)
    assert.equal(retryDelayMs(4, { retryAfterMs: 1_000 }, { ...opts, random: () => 0.5 }), 40_000)
  })
})

describe('outbox delivery', () => {
  test('a message is delivered once, on the NOTIFY of its commit, with its attempt in the history', async () => {
    const rx = await new Receiver().up()
    const channelId = await createChannel({ url: rx.url })
    // The poll is far away: only the NOTIFY sent at commit can wake the worker in time.
    await startWorker({ pollMs: 120_000 })
    try {
      const id = await enqueue(channelId, `once-${randomUUID()}`)
      const row = await untilStatus(id, 'delivered')
      assert.equal(rx.hits.length, 1)
      assert.equal(row.attempts, 1)
      assert.ok(row.deliveredAt)
      assert.equal(JSON.stringify(row.payload).includes(rx.url), false, 'the channel secret is not copied into the outbox')
      const list = await as(viewer).get(`/api/v1/notifications?channel_id=${channelId}`)
      assert.equal(list.status, 200, JSON.stringify(list.body))
      assert.equal(list.body.items.length, 1)
      assert.equal(list.body.items[0].status, 'delivered')
      assert.deepEqual(
        list.body.items[0].attempts.map((a: { attempt: number; outcome: string; http_status: number }) => [a.attempt, a.outcome, a.http_status]),
        [[1, 'delivered', 200]],
      )
    } finally {
      await stopWorkers()
      await rx.down()
    }
  })

  test('a receiver that refuses connections for a while gets the message once it is back, the failures recorded', async () => {
    const rx = await new Receiver().up()
    await rx.down()
    const channelId = await createChannel({ url: rx.url })
    await startWorker()
    try {
      const id = await enqueue(channelId, `down-up-${randomUUID()}`, { maxAttempts: 30 })
      await waitFor('two failed attempts', async () => (await attemptsOf(id)).length >= 2)
      await rx.up()
      await untilStatus(id, 'delivered')
      assert.equal(rx.hits.length, 1)
      const attempts = await attemptsOf(id)
      assert.deepEqual(
        attempts.map((a) => a.attempt),
        attempts.map((_, i) => i + 1),
      )
      assert.equal(attempts.at(-1)!.outcome, 'delivered')
      for (const a of attempts.slice(0, -1)) {
        assert.equal(a.outcome, 'failed')
        assert.ok(a.error, 'a failed attempt says why')
        assert.equal(a.httpStatus, null)
      }
    } finally {
      await stopWorkers()
      await rx.down()
    }
  })

  test('a 429 with Retry-After is waited out before the next attempt', async () => {
    const rx = await new Receiver().up()
    rx.respond = (_key, n) => (n === 0 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 })
    const channelId = await createChannel({ url: rx.url })
    await startWorker()
    try {
      const id = await enqueue(channelId, `429-${randomUUID()}`)
      await untilStatus(id, 'delivered')
      const attempts = await attemptsOf(id)
      assert.deepEqual(
        attempts.map((a) => [a.outcome, a.httpStatus]),
        [
          ['rate_limited', 429],
          ['delivered', 200],
        ],
      )
      // Backoff alone would have retried after ~50 ms; the receiver asked for a second.
      assert.ok(attempts[1]!.at.getTime() - attempts[0]!.at.getTime() >= 990, `retried ${attempts[1]!.at.getTime() - attempts[0]!.at.getTime()} ms later`)
      assert.equal(rx.hits.length, 2)
    } finally {
      await stopWorkers()
      await rx.down()
    }
  })

  test('a permanent refusal (4xx) is dead at once; a deleted channel or an unknown type is dead with a clear error', async () => {
    const rx = await new Receiver().up()
    rx.respond = () => ({ status: 404 })
    const refused = await createChannel({ url: rx.url })
    const deleted = await createChannel({ url: rx.url, deleted: true })
    const email = await createChannel({ url: rx.url, type: 'email' })
    await startWorker()
    try {
      const a = await enqueue(refused, `404-${randomUUID()}`)
      const b = await enqueue(deleted, `deleted-${randomUUID()}`)
      const c = await enqueue(email, `nodriver-${randomUUID()}`)
      assert.equal((await untilStatus(a, 'dead')).attempts, 1)
      assert.match((await untilStatus(b, 'dead')).lastError ?? '', /was deleted/)
      assert.match((await untilStatus(c, 'dead')).lastError ?? '', /no driver for channel type email/)
      assert.equal(rx.hits.length, 1, 'only the live channel reached the receiver')
      for (const id of [a, b, c]) assert.equal((await as(op).post(`/api/v1/notifications/${id}/discard`)).status, 200)
    } finally {
      await stopWorkers()
      await rx.down()
    }
  })
})

describe('dead letters', () => {
  test('down past the last retry: dead, listed, retried from the API and delivered; attempts kept', async () => {
    const rx = await new Receiver().up()
    await rx.down()
    const channelId = await createChannel({ url: rx.url })
    await startWorker()
    try {
      const id = await enqueue(channelId, `dead-${randomUUID()}`, { maxAttempts: 3 })
      await untilStatus(id, 'dead')
      const dead = await as(viewer).get(`/api/v1/notifications/dead-letters?channel_id=${channelId}`)
      assert.equal(dead.status, 200, JSON.stringify(dead.body))
      assert.deepEqual(
        dead.body.items.map((n: { id: string }) => n.id),
        [id],
      )
      assert.equal(dead.body.items[0].attempts.length, 3)
      const status = await as(viewer).get('/api/v1/notification/status')
      assert.equal(status.status, 200)
      assert.ok(status.body.dead >= 1)
      assert.ok(status.body.last_error?.message)

      assert.equal((await as(viewer).post(`/api/v1/notifications/${id}/retry`)).status, 403)
      await rx.up()
      const retried = await as(op).post(`/api/v1/notifications/${id}/retry`)
      assert.equal(retried.status, 200, JSON.stringify(retried.body))
      assert.equal(retried.body.max_attempts, 6)
      await untilStatus(id, 'delivered')
      assert.equal(rx.hits.length, 1)
      const attempts = await attemptsOf(id)
      assert.deepEqual(
        attempts.map((a) => [a.attempt, a.outcome]),
        [
          [1, 'failed'],
          [2, 'failed'],
          [3, 'failed'],
          [4, 'delivered'],
        ],
      )
      const again = await as(op).post(`/api/v1/notifications/${id}/retry`)
      assert.equal(again.status, 409)
      assert.equal(again.body.error.code, 'CONFLICT')
      const missing = await as(op).post(`/api/v1/notifications/${randomUUID()}/retry`)
      assert.equal(missing.status, 404)
      assert.equal(missing.body.error.code, 'NOT_FOUND')
      assert.equal((await as(op).post('/api/v1/notifications/not-a-uuid/retry')).status, 404)
      const [audit] = await t.ctx.db
        .select()
        .from(auditLog)
        .where(and(eq(auditLog.action, 'notifications.retry'), eq(auditLog.resourceId, id), eq(auditLog.outcome, 'success')))
      assert.ok(audit, 'the retry is audited')
    } finally {
      await stopWorkers()
      await rx.down()
    }
  })

  test('discard drops a queued message for good; a second discard and a discard of a delivered one are 409s', async () => {
    const rx = await new Receiver().up()
    const channelId = await createChannel({ url: rx.url })
    const later = await enqueue(channelId, `discard-${randomUUID()}`, { notBefore: new Date(Date.now() + 3_600_000) })
    const res = await as(op).post(`/api/v1/notifications/${later}/discard`)
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.equal(res.body.status, 'discarded')
    assert.equal((await as(op).post(`/api/v1/notifications/${later}/discard`)).status, 409)
    assert.equal((await as(viewer).post(`/api/v1/notifications/${later}/discard`)).status, 403)
    assert.equal((await as(op).post(`/api/v1/notifications/${randomUUID()}/discard`)).status, 404)
    await startWorker()
    try {
      const now = await enqueue(channelId, `discard-delivered-${randomUUID()}`)
      await untilStatus(now, 'delivered')
      assert.equal((await as(op).post(`/api/v1/notifications/${now}/discard`)).status, 409)
      assert.equal((await rowOf(later)).status, 'discarded')
      assert.equal(rx.count(String((await rowOf(later)).payload.key)), 0)
      const history = await as(viewer).get(`/api/v1/notifications?status=discarded&channel_id=${channelId}`)
      assert.deepEqual(
        history.body.items.map((n: { id: string }) => n.id),
        [later],
      )
    } finally {
      await stopWorkers()
      await rx.down()
    }
  })
})

describe('several controllers', () => {
  test('two workers deliver 50 messages, each exactly once', async () => {
    const rx = await new Receiver().up()
    rx.delayMs = 5
    const channelId = await createChannel({ url: rx.url })
    await startWorker({ concurrency: 4 }, webhookOnly, otherController())
    await startWorker({ concurrency: 4 }, webhookOnly, otherController())
    try {
      const keys = Array.from({ length: 50 }, (_, i) => `pair-${i}-${randomUUID()}`)
      await t.ctx.db.transaction(async (tx) => {
        for (const key of keys) await enqueueNotification(tx as unknown as Db, { channelId, event: 'run.failed', dedupeKey: key, subject: key, payload: { key } })
      })
      await waitFor('50 deliveries', async () => {
        const [r] = await t.ctx.db
          .select({ n: sql<number>`count(*)::int` })
          .from(notification)
          .where(and(eq(notification.channelId, channelId), eq(notification.status, 'delivered')))
        return r!.n === 50
      })
      assert.equal(rx.hits.length, 50)
      for (const key of keys) assert.equal(rx.count(key), 1, `${key} delivered once`)
    } finally {
      await stopWorkers()
      await rx.down()
    }
  })

  test('a worker killed mid-send leaves the row to its lease; the other worker delivers it again (at least once)', async () => {
    const rx = await new Receiver().up()
    const channelId = await createChannel({ url: rx.url })
    // Reaches the receiver, then never reports: the controller died before recording the outcome.
    const dying: ChannelDriver = { ...testDriver, deliver: async (c, s, p, signal, meta) => (await testDriver.deliver(c, s, p, signal, meta), new Promise<SendResult>(() => {})) }
    const dead = otherController()
    const a = await startWorker({ leaseMs: 3_000, stopGraceMs: 10 }, () => dying, dead)
    const key = `killed-${randomUUID()}`
    const id = await enqueue(channelId, key)
    await waitFor('the first send', async () => rx.count(key) === 1)
    await a.stop()
    const stuck = await rowOf(id)
    assert.equal(stuck.status, 'sending')
    assert.equal(stuck.claimedBy, dead.nodeId)
    await startWorker({ reclaimMs: 100 }, webhookOnly, otherController())
    try {
      await untilStatus(id, 'delivered')
      assert.equal(rx.count(key), 2, 'at-least-once at the wire')
      assert.deepEqual(
        rx.hits.filter((h) => h.key === key).map((h) => h.delivery),
        [id, id],
        'both sends carry the notification id, so the receiver can de-duplicate',
      )
      const attempts = await attemptsOf(id)
      assert.deepEqual(
        attempts.map((x) => [x.attempt, x.outcome]),
        [
          [1, 'failed'],
          [2, 'delivered'],
        ],
      )
      assert.match(attempts[0]!.error ?? '', /lease expired/)
      const [count] = await t.ctx.db.select({ n: sql<number>`count(*)::int` }).from(notification).where(eq(notification.dedupeKey, key))
      assert.equal(count!.n, 1, 'exactly once in the outbox')
    } finally {
      await stopWorkers()
      await rx.down()
    }
  })

  test('a channel rate limit holds across two workers: over the limit waits, never fails', async () => {
    const rx = await new Receiver().up()
    const limit = 2
    const windowMs = 1_500
    const channelId = await createChannel({ url: rx.url, rateLimitPerMinute: limit })
    await startWorker({ rateWindowMs: windowMs, concurrency: 4 }, webhookOnly, otherController())
    await startWorker({ rateWindowMs: windowMs, concurrency: 4 }, webhookOnly, otherController())
    try {
      const ids: string[] = []
      for (let i = 0; i < 6; i++) ids.push(await enqueue(channelId, `rate-${i}-${randomUUID()}`))
      for (const id of ids) await untilStatus(id, 'delivered')
      const attempts = rowsOf<{ attempt: number; outcome: string; us: string }>(
        await t.ctx.db.execute(sql`
          select a.attempt, a.outcome, (extract(epoch from a.at) * 1000000)::bigint::text as us
          from notification_attempt a join notification n on n.id = a.notification_id
          where n.channel_id = ${channelId} order by a.at`),
      )
      assert.equal(attempts.length, 6, 'one attempt each: waiting for the limit uses none')
      assert.ok(attempts.every((a) => a.attempt === 1 && a.outcome === 'delivered'))
      const times = attempts.map((a) => Number(BigInt(a.us)) / 1000)
      for (const start of times) {
        const inWindow = times.filter((x) => x >= start && x < start + windowMs).length
        assert.ok(inWindow <= limit, `${inWindow} sends within ${windowMs} ms of ${start}`)
      }
    } finally {
      await stopWorkers()
      await rx.down()
    }
  })
})

describe('enqueue', () => {
  test('the same dedupe key twice makes one row', async () => {
    const channelId = await createChannel({ url: 'http://127.0.0.1:9/unused' })
    const key = `dup-${randomUUID()}`
    const put = () =>
      t.ctx.db.transaction((tx) =>
        enqueueNotification(tx as unknown as Db, { channelId, event: 'run.failed', dedupeKey: key, subject: 's', payload: { key }, notBefore: new Date(Date.now() + 3_600_000) }),
      )
    const first = await put()
    assert.equal(await put(), null)
    const rows = await t.ctx.db.select().from(notification).where(eq(notification.dedupeKey, key))
    assert.deepEqual(rows.map((r) => r.id), [first])
    // A rolled-back event leaves no message behind.
    await assert.rejects(
      t.ctx.db.transaction(async (tx) => {
        await enqueueNotification(tx as unknown as Db, { channelId, event: 'run.failed', dedupeKey: `${key}-rb`, subject: 's', payload: {} })
        throw new Error('the event failed')
      }),
    )
    assert.equal((await t.ctx.db.select().from(notification).where(eq(notification.dedupeKey, `${key}-rb`))).length, 0)
    await as(op).post(`/api/v1/notifications/${rows[0]!.id}/discard`)
  })

  test('status shows the queue depth, the oldest pending message and the last delivery', async () => {
    const channelId = await createChannel({ url: 'http://127.0.0.1:9/unused' })
    const id = await enqueue(channelId, `status-${randomUUID()}`, { notBefore: new Date(Date.now() + 3_600_000) })
    const res = await as(viewer).get('/api/v1/notification/status')
    assert.equal(res.status, 200)
    assert.deepEqual(Object.keys(res.body).sort(), ['dead', 'held', 'last_delivery_at', 'last_error', 'oldest_pending_at', 'queue_depth', 'sending'])
    assert.ok(res.body.queue_depth >= 1)
    assert.ok(res.body.oldest_pending_at)
    assert.ok(res.body.last_delivery_at)
    assert.equal((await as(viewer).get(`/api/v1/notifications/${id}`)).body.payload.key.startsWith('status-'), true)
    assert.equal((await as(viewer).get(`/api/v1/notifications/${randomUUID()}`)).status, 404)
    assert.equal((await as(viewer).get('/api/v1/notifications?status=bogus')).status, 400)
  })
})
