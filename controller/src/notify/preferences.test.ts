import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { eq, inArray } from 'drizzle-orm'
import { SMTPServer } from 'smtp-server'
import { freePort, waitUntil } from '../../../test/harness/agents.ts'
import { callerFor, createTestUser, errorPaths, type TestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createApp } from '../app.ts'
import { createJob } from '../jobs/service.ts'
import { RunEngine } from '../runs/engine.ts'
import { launchRun } from '../runs/launch.ts'
import { run } from '../runs/runs.sql.ts'
import { appUser } from '../users/users.sql.ts'
import { driverFor } from './channels/index.ts'
import { sendDueDigests } from './digest.ts'
import { notification, notificationChannel, notificationPreference } from './notify.sql.ts'
import { quietUntil } from './preferences.ts'
import { NotificationWorker } from './worker.ts'

// Users' preferences shape what rules send them: channels, events, quiet hours in their zone and
// digests. Digests are delivered for real, to an SMTP server on loopback.

let t: TestContext
let engine: RunEngine
let as: ReturnType<typeof callerFor>
let admin: TestUser
let operator: TestUser
let viewer: TestUser
let hookId: string
let mailId: string
let now: Date | null = null
const mails: string[] = []
let smtp: SMTPServer

before(async () => {
  t = await createTestContext()
  const real = t.ctx.clock
  t.ctx.clock = () => now ?? real()
  engine = new RunEngine(t.ctx, { leaseMs: 5000, localCapacity: 16, agentCapacity: 16 })
  t.ctx.runEngine = engine
  await engine.start()
  as = callerFor(createApp(t.ctx, { uiDir: '/nonexistent' }))
  admin = await createTestUser(t.ctx, 'admin')
  operator = await createTestUser(t.ctx, 'operator')
  viewer = await createTestUser(t.ctx, 'viewer')
  for (const [u, email] of [[operator, 'op@example.test'], [viewer, 'viewer@example.test']] as const) await t.ctx.db.update(appUser).set({ email }).where(eq(appUser.id, u.user.id))
  const port = await freePort()
  smtp = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, _session, cb) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => (mails.push(Buffer.concat(chunks).toString('utf8')), cb()))
    },
  })
  await new Promise<void>((resolve) => smtp.listen(port, '127.0.0.1', resolve))
  const settings = await as(admin).post('/api/v1/notification/smtp/settings', { host: '127.0.0.1', port, security: 'none', from_address: 'opsconductor@example.test' })
  assert.equal(settings.status, 200, JSON.stringify(settings.body))
  const [hook] = await t.ctx.db.insert(notificationChannel).values({ name: 'pager hook', type: 'webhook', config: {} }).returning()
  const [mail] = await t.ctx.db.insert(notificationChannel).values({ name: 'mail', type: 'email', config: {} }).returning()
  hookId = hook!.id
  mailId = mail!.id
})
after(async () => {
  await engine.stop()
  await new Promise<void>((resolve) => smtp.close(() => resolve()))
  await t?.close()
})

const failing = { id: 'probe', type: 'http.get', url: 'http://127.0.0.1:1/health', timeout_sec: 5 }
const PREFS = (u: TestUser) => `/api/v1/notification/preferences/${u.user.id}`

async function failedRuns(jobId: string, n: number): Promise<string[]> {
  const ids = await Promise.all(Array.from({ length: n }, () => launchRun(t.ctx, undefined, jobId, { parameters: {} }, { trigger: 'manual' }).then((r) => r.runId)))
  await waitUntil(async () => (await t.ctx.db.select({ s: run.status }).from(run).where(inArray(run.id, ids))).every((r) => !['queued', 'running'].includes(r.s)), 120_000, 'the runs to end')
  return ids
}
const queuedFor = (runIds: string[]) => t.ctx.db.select().from(notification).where(inArray(notification.runId, runIds))

async function rule(body: object): Promise<string> {
  const res = await as(operator).post('/api/v1/notification-rules', body)
  assert.equal(res.status, 201, JSON.stringify(res.body))
  return res.body.id
}

describe('preferences API', () => {
  test('defaults until saved; a POST changes only what it sends; own or admin only', async () => {
    const fresh = await as(viewer).get(PREFS(viewer))
    assert.equal(fresh.status, 200)
    assert.deepEqual(fresh.body, { user_id: viewer.user.id, channel_ids: null, events: null, quiet_hours: null, timezone: 'UTC', digest_minutes: null, updated_at: null, updated_by: null })
    const saved = await as(viewer).post(PREFS(viewer), { timezone: 'Asia/Tokyo', quiet_hours: { start: '22:00', end: '07:00' } })
    assert.equal(saved.status, 200, JSON.stringify(saved.body))
    const again = await as(viewer).post(PREFS(viewer), { events: ['run.failed', 'security.*'] })
    assert.deepEqual([again.body.timezone, again.body.quiet_hours, again.body.events], ['Asia/Tokyo', { start: '22:00', end: '07:00' }, ['run.failed', 'security.*']])
    assert.equal(again.body.updated_by, viewer.user.username)

    assert.equal((await as(viewer).get(PREFS(operator))).status, 403)
    assert.equal((await as(operator).post(PREFS(viewer), { digest_minutes: 5 })).status, 403)
    assert.equal((await as(admin).get(PREFS(viewer))).body.timezone, 'Asia/Tokyo')
    const byAdmin = await as(admin).post(PREFS(viewer), { quiet_hours: null })
    assert.equal(byAdmin.body.quiet_hours, null)
    assert.equal((await as(admin).get('/api/v1/notification/preferences/00000000-0000-4000-8000-000000000000')).status, 404)
    assert.equal((await as(admin).get('/api/v1/notification/preferences/not-a-user')).status, 404)
  })

  test('bad preferences are a 400 naming each field, and nothing stored changes', async () => {
    const stored = await t.ctx.db.select().from(notificationPreference).where(eq(notificationPreference.userId, viewer.user.id))
    const bad = await as(viewer).post(PREFS(viewer), {
      timezone: 'Mars/Olympus',
      quiet_hours: { start: '25:00', end: '07:00' },
      digest_minutes: 0,
    })
    assert.equal(bad.status, 400)
    assert.equal(bad.body.error.code, 'VALIDATION')
    assert.deepEqual(errorPaths(bad.body).sort(), ['digest_minutes', 'quiet_hours.start', 'timezone'])
    const refs = await as(viewer).post(PREFS(viewer), { events: ['run.failed', 'run.exploded'], channel_ids: ['5f8e0c2e-0000-4000-8000-000000000000'] })
    assert.deepEqual(errorPaths(refs.body).sort(), ['channel_ids[0]', 'events[1]'])
    const same = await as(viewer).post(PREFS(viewer), { quiet_hours: { start: '07:00', end: '07:00' } })
    assert.deepEqual(errorPaths(same.body), ['quiet_hours.end'])
    assert.equal((await as(viewer).post(PREFS(viewer), { role: 'admin' })).status, 400)
    assert.deepEqual(await t.ctx.db.select().from(notificationPreference).where(eq(notificationPreference.userId, viewer.user.id)), stored)
  })
})

describe('quiet hours', () => {
  const tokyo = { quietStart: '22:00', quietEnd: '07:00', timezone: 'Asia/Tokyo' }
  test('inside the window (across midnight) the delivery waits for its end in the user zone; outside it does not', () => {
    // 23:00 in Tokyo → 07:00 Tokyo = 22:00 UTC.
    assert.equal(quietUntil(tokyo, new Date('2026-11-27T14:00:00Z'))?.toISOString(), '2026-11-27T22:00:00.000Z')
    // 06:59 Tokyo, still quiet.
    assert.equal(quietUntil(tokyo, new Date('2026-11-27T21:59:00Z'))?.toISOString(), '2026-11-27T22:00:00.000Z')
    // 12:00 and exactly 07:00 Tokyo: not quiet.
    assert.equal(quietUntil(tokyo, new Date('2026-11-27T03:00:00Z')), null)
    assert.equal(quietUntil(tokyo, new Date('2026-11-27T22:00:00Z')), null)
    assert.equal(quietUntil(undefined, new Date()), null)
  })

  test('a window spanning a DST change ends at the wall-clock time', () => {
    // Berlin springs forward on 2026-03-29: 00:30 CET is inside 00:00–06:00, which ends at 06:00 CEST = 04:00 UTC.
    const berlin = { quietStart: '00:00', quietEnd: '06:00', timezone: 'Europe/Berlin' }
    assert.equal(quietUntil(berlin, new Date('2026-03-28T23:30:00Z'))?.toISOString(), '2026-03-29T04:00:00.000Z')
  })
})

describe('rules reach users as their preferences say', () => {
  test('quiet hours defer a user delivery to the end of the window; the channel and critical rules are not deferred', async () => {
    // A window around the real time in Kolkata (UTC+05:30, no DST): it began an hour ago, ends in two.
    const minute = Math.floor(Date.now() / 60_000) * 60_000
    const kolkata = (ms: number) => new Date(ms + 330 * 60_000).toISOString().slice(11, 16)
    const endsAt = new Date(minute + 120 * 60_000)
    await as(admin).post(PREFS(operator), { timezone: 'Asia/Kolkata', quiet_hours: { start: kolkata(minute - 60 * 60_000), end: kolkata(endsAt.getTime()) } })
    const job = await createJob(t.ctx, undefined, { name: 'quiet night', steps: [failing] })
    await rule({ name: 'quiet failures', events: ['run.failed'], conditions: { job_ids: [job.id] }, channel_ids: [hookId], user_ids: [operator.user.id] })
    const urgent = await createJob(t.ctx, undefined, { name: 'urgent night', steps: [failing] })
    await rule({ name: 'urgent failures', critical: true, events: ['run.failed'], conditions: { job_ids: [urgent.id] }, user_ids: [operator.user.id] })
    const [quiet] = await failedRuns(job.id, 1)
    const [loud] = await failedRuns(urgent.id, 1)
    const rows = await queuedFor([quiet!, loud!])
    const toUser = rows.find((r) => r.runId === quiet && r.userId === operator.user.id)!
    assert.equal(toUser.recipient, 'op@example.test')
    assert.equal(toUser.nextAttemptAt.toISOString(), endsAt.toISOString())
    const toChannel = rows.find((r) => r.runId === quiet && r.channelId === hookId)!
    assert.ok(toChannel.nextAttemptAt.getTime() <= Date.now(), 'the rule channel is not the user: not deferred')
    const critical = rows.find((r) => r.runId === loud)!
    assert.ok(critical.nextAttemptAt.getTime() <= Date.now(), 'critical goes out in quiet hours')
    await as(admin).post(PREFS(operator), { quiet_hours: null })
  })

  test('a user gets only the events they subscribe to, on the channels they accept', async () => {
    const job = await createJob(t.ctx, undefined, { name: 'picky', steps: [failing] })
    await rule({ name: 'picky failures', events: ['run.failed'], conditions: { job_ids: [job.id] }, user_ids: [operator.user.id, viewer.user.id] })
    await as(operator).post(PREFS(operator), { channel_ids: [hookId, mailId] })
    await as(viewer).post(PREFS(viewer), { events: ['run.succeeded'] })
    const [runId] = await failedRuns(job.id, 1)
    const rows = await queuedFor([runId!])
    assert.deepEqual(rows.map((r) => [r.channelId, r.recipient, r.userId]).sort(), [
      [hookId, null, operator.user.id],
      [mailId, 'op@example.test', operator.user.id],
    ].sort())
    await as(operator).post(PREFS(operator), { channel_ids: [] })
    assert.deepEqual(await queuedFor(await failedRuns(job.id, 1)), [], 'no accepted channel: nothing')
    await as(operator).post(PREFS(operator), { channel_ids: null })
    await as(viewer).post(PREFS(viewer), { events: null })
  })

  test('digest mode: 50 failures are delivered as one email listing them all, after the interval', async () => {
    await as(viewer).post(PREFS(viewer), { digest_minutes: 10 })
    const job = await createJob(t.ctx, undefined, { name: 'storm', steps: [failing] })
    await rule({ name: 'storm failures', events: ['run.failed'], conditions: { job_ids: [job.id] }, user_ids: [viewer.user.id] })
    const runIds = await failedRuns(job.id, 50)
    const held = await queuedFor(runIds)
    assert.equal(held.length, 50)
    assert.ok(held.every((r) => r.status === 'held' && r.userId === viewer.user.id))
    const status = await as(viewer).get('/api/v1/notification/status')
    assert.ok(status.body.held >= 50)

    assert.equal(await sendDueDigests(t.ctx), 0, 'not due before the interval')
    now = new Date(Date.now() + 11 * 60_000)
    try {
      assert.equal(await sendDueDigests(t.ctx), 1)
      assert.equal(await sendDueDigests(t.ctx), 0, 'built once')
    } finally {
      now = null
    }
    const batched = await queuedFor(runIds)
    const digestIds = new Set(batched.map((r) => r.digestId))
    assert.ok(batched.every((r) => r.status === 'batched'))
    assert.equal(digestIds.size, 1)
    const [digest] = await t.ctx.db.select().from(notification).where(eq(notification.id, [...digestIds][0]!))
    assert.equal(digest?.recipient, 'viewer@example.test')
    assert.match(digest!.subject, /50 notifications \(50 × run\.failed\)/)

    const before = mails.length
    const worker = new NotificationWorker(t.ctx, (type) => driverFor(type, t.ctx), { pollMs: 100 })
    await worker.start()
    try {
      await waitUntil(async () => (await t.ctx.db.select().from(notification).where(eq(notification.id, digest!.id)))[0]?.status === 'delivered', 30_000, 'the digest to be delivered')
    } finally {
      await worker.stop()
    }
    const sent = mails.slice(before).filter((m) => /To: viewer@example\.test/i.test(m))
    assert.equal(sent.length, 1, 'one email for 50 failures')
    const body = sent[0]!.replace(/=\r?\n/g, '')
    for (const id of runIds) assert.ok(body.includes(`/runs/${id}`), `the digest links run ${id}`)
    await as(viewer).post(PREFS(viewer), { digest_minutes: null })
  })

  test('leaving digest mode flushes what was held as one digest at the next pass', async () => {
    await as(viewer).post(PREFS(viewer), { digest_minutes: 60 })
    const job = await createJob(t.ctx, undefined, { name: 'drizzle', steps: [failing] })
    await rule({ name: 'drizzle failures', events: ['run.failed'], conditions: { job_ids: [job.id] }, user_ids: [viewer.user.id] })
    const runIds = await failedRuns(job.id, 3)
    assert.equal(await sendDueDigests(t.ctx), 0)
    await as(viewer).post(PREFS(viewer), { digest_minutes: null })
    assert.equal(await sendDueDigests(t.ctx), 1)
    const rows = await queuedFor(runIds)
    assert.ok(rows.every((r) => r.status === 'batched'))
  })
})
