import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { Writable } from 'node:stream'
import { after, before, beforeEach, describe, test } from 'node:test'
import { and, eq, like } from 'drizzle-orm'
import { call, callerFor, createTestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { agent, agentPresence } from '../agents/agents.sql.ts'
import { agentSession } from '../agents/assignments/assignments.sql.ts'
import { createApp } from '../app.ts'
import { auditLog } from '../audit/audit.sql.ts'
import type { AppContext } from '../context.ts'
import type { Db } from '../db/client.ts'
import { createLogger } from '../log.ts'
import { createJob } from '../jobs/service.ts'
import { fireSchedules } from '../scheduler/fire.ts'
import { launchDeferred } from '../scheduler/maintenance-fire.ts'
import { schedule, scheduleFire } from '../scheduler/scheduler.sql.ts'
import { createTarget } from '../targets/service.ts'
import { trackAgentPresence } from './agent-presence.ts'
import { runNotifyHousekeeping } from './housekeeping.ts'
import { notification, notificationChannel, notificationRule } from './notify.sql.ts'
import { appendAuditNotifying, notifyMissedFires } from './system-events.ts'

// Schedules, agents and security alarms through rules into the outbox. No worker runs: what is
// asserted is what was queued, once, in the transaction of its cause.

let t: TestContext
let app: ReturnType<typeof createApp>
let api: ReturnType<ReturnType<typeof callerFor>>
let hookId: string
let now: Date
let ctx: AppContext

before(async () => {
  t = await createTestContext()
  // One clock for the whole file, only ever moved forward (agents' presence depends on it).
  now = new Date('2030-03-04T12:30:00.000Z')
  ctx = { ...t.ctx, startedAt: new Date(0), clock: () => now }
  t.ctx.clock = () => now
  app = createApp(t.ctx, { uiDir: '/nonexistent' })
  api = callerFor(app)(await createTestUser(t.ctx, 'operator'))
  const [hook] = await t.ctx.db.insert(notificationChannel).values({ name: 'sys hook', type: 'webhook', config: {} }).returning()
  hookId = hook!.id
})
after(async () => t?.close())
beforeEach(async () => {
  await t.ctx.db.update(notificationRule).set({ enabled: false })
})

async function rule(body: object): Promise<string> {
  const res = await api.post('/api/v1/notification-rules', { channel_ids: [hookId], ...body })
  assert.equal(res.status, 201, JSON.stringify(res.body))
  return res.body.id
}
const queuedBy = (ruleId: string) => t.ctx.db.select().from(notification).where(eq(notification.ruleId, ruleId))
/** The webhook body a row will send. */
const sent = (row: { payload: Record<string, unknown> }) => JSON.parse(String(row.payload['body'])) as { severity: string; link: string; text: string; data: Record<string, string> }
const later = (ms: number) => (now = new Date(now.getTime() + ms))

/** A Db that counts the statements (and transactions) issued through it. */
function counting(db: Db, count: { n: number }): Db {
  return new Proxy(db, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (typeof value !== 'function') return value
      if (prop === 'transaction') return (fn: (tx: Db) => unknown, ...rest: unknown[]) => (count.n++, (value as Function).call(target, (tx: Db) => fn(counting(tx, count)), ...rest))
      if (['select', 'execute', 'insert', 'update', 'delete'].includes(String(prop))) return (...args: unknown[]) => (count.n++, (value as Function).apply(target, args))
      return value.bind(target)
    },
  })
}

describe('schedule.missed', () => {
  const opts = { node: 'sys-node', graceMs: 2_000 }
  let jobId: string
  let otherJobId: string
  before(async () => {
    await createTarget(t.ctx, { name: 'st-1', address: '127.0.0.1', os_type: 'linux', enabled: true, tags: {}, connection: { type: 'ssh', port: 22, credential_id: null, host_key_policy: 'tofu', jump: [] } })
    jobId = (await createJob(t.ctx, undefined, { name: 'missable', tags: ['nightly'], targets: 'name:st-*', steps: [{ id: 'w', type: 'wait', seconds: 0.001 }] })).id
    otherJobId = (await createJob(t.ctx, undefined, { name: 'other missable', steps: [{ id: 'w', type: 'wait', seconds: 0.001 }] })).id
  })
  /** A yearly schedule whose one due occurrence is two minutes late, past its one-minute limit. */
  const lateSchedule = async (values: Partial<typeof schedule.$inferInsert> = {}) =>
    (await t.ctx.db.insert(schedule).values({ name: `late-${randomUUID()}`, jobId, cron: '0 0 0 1 1 *', misfirePolicy: 'skip', misfireMaxLatenessSec: 60, nextFireAt: new Date(now.getTime() - 120_000), ...values }).returning())[0]!

  test('a missed fire queues one message for the rules whose conditions hold, once', async () => {
    const s = await lateSchedule()
    const bySchedule = await rule({ name: 'missed by schedule', events: ['schedule.missed'], conditions: { schedule_ids: [s.id] } })
    const byTag = await rule({ name: 'missed nightly', events: ['schedule.missed', 'run.failed'], conditions: { job_tags: ['nightly'] } })
    const byTarget = await rule({ name: 'missed on st-1', events: ['schedule.missed'], conditions: { target_selector: 'name:st-1' } })
    const otherJob = await rule({ name: 'missed other job', events: ['schedule.missed'], conditions: { job_ids: [otherJobId] } })
    const otherTarget = await rule({ name: 'missed elsewhere', events: ['schedule.missed'], conditions: { target_selector: 'name:nowhere-*' } })
    const agentsOnly = await rule({ name: 'agents only', events: ['agent.offline'] })
    const counts = await fireSchedules(ctx, [s.id], opts)
    assert.equal(counts.missed, 1)
    const [fire] = await t.ctx.db.select().from(scheduleFire).where(eq(scheduleFire.scheduleId, s.id))
    assert.equal(fire?.status, 'missed')
    for (const id of [bySchedule, byTag, byTarget]) {
      const rows = await queuedBy(id)
      assert.equal(rows.length, 1, id)
      assert.equal(rows[0]!.event, 'schedule.missed')
      assert.match(rows[0]!.dedupeKey!, new RegExp(`^fire:${fire!.id}:schedule.missed:`))
      assert.equal(rows[0]!.subject, `Schedule ${s.name} missed its run due at ${fire!.fireAt.toISOString()}`)
      const payload = sent(rows[0]!)
      assert.equal(payload.severity, 'warning')
      assert.match(payload.link, new RegExp(`/schedules/${s.id}$`))
      assert.match(payload.text, /did not start: the scheduler reached it too late \(2 min 0 s late; the schedule allows 1 min 0 s\)/)
      assert.equal(payload.data['job_name'], 'missable')
    }
    for (const id of [otherJob, otherTarget, agentsOnly]) assert.deepEqual(await queuedBy(id), [], id)
    // The same occurrence again (a take-over, a second controller): a duplicate, nothing new.
    await t.ctx.db.update(schedule).set({ nextFireAt: fire!.fireAt }).where(eq(schedule.id, s.id))
    assert.equal((await fireSchedules(ctx, [s.id], opts)).duplicate, 1)
    assert.equal((await queuedBy(bySchedule)).length, 1)
  })

  test('a long outage is one message per schedule, counting the occurrences', async () => {
    const id = await rule({ name: 'outage', events: ['schedule.missed'] })
    // Hourly, last fired four hours ago: the four occurrences since are all more than a minute late.
    const hour = Math.floor(now.getTime() / 3600_000) * 3600_000
    const s = await lateSchedule({ cron: '0 0 * * * *', nextFireAt: new Date(hour - 3 * 3600_000) })
    assert.equal((await fireSchedules(ctx, [s.id], opts)).missed, 4)
    const rows = await queuedBy(id)
    assert.equal(rows.length, 1)
    assert.equal(rows[0]!.subject, `Schedule ${s.name} missed 4 runs`)
    assert.equal(sent(rows[0]!).data['missed_count'], '4')
  })

  test('a deferred occurrence that can no longer start after its window is missed once', async () => {
    const id = await rule({ name: 'after maintenance', events: ['schedule.missed'] })
    const s = await lateSchedule({ nextFireAt: null })
    const [f] = await t.ctx.db
      .insert(scheduleFire)
      .values({ scheduleId: s.id, fireAt: new Date(now.getTime() - 3 * 3600_000), status: 'deferred', reason: 'maintenance', detail: { until: new Date(now.getTime() - 3600_000).toISOString() } })
      .returning()
    assert.equal((await launchDeferred(ctx, [f!.id], opts)).missed, 1)
    assert.equal((await launchDeferred(ctx, [f!.id], opts)).missed, 0)
    const rows = await queuedBy(id)
    assert.equal(rows.length, 1)
    assert.match(sent(rows[0]!).text, /a maintenance window deferred it/)
  })

  test('no rule on schedule.missed: one query per batch, none without missed fires; a broken rule never undoes the fire', async () => {
    const s = await lateSchedule()
    const count = { n: 0 }
    const db = counting(t.ctx.db, count)
    assert.equal(await notifyMissedFires(ctx, db, []), 0)
    assert.equal(count.n, 0)
    const missed = [1, 2, 3].map((i) => ({ fireId: randomUUID(), s, fireAt: new Date(now.getTime() - i * 60_000), why: 'late' as const }))
    assert.equal(await notifyMissedFires(ctx, db, missed), 0)
    assert.equal(count.n, 1)

    // A rule with a channel id the database refuses, one whose group is gone, and a sound one.
    const [broken] = await t.ctx.db.insert(notificationRule).values({ name: 'broken', events: ['schedule.missed'], channelIds: ['not-a-uuid'] }).returning()
    const [ghost] = await t.ctx.db.insert(notificationRule).values({ name: 'ghost group', events: ['schedule.missed'], conditions: { target_selector: 'group:ghost' }, channelIds: [hookId] }).returning()
    const sound = await rule({ name: 'sound', events: ['schedule.missed'] })
    const logged: string[] = []
    const log = createLogger({ level: 'warn', destination: new Writable({ write: (line, _enc, done) => (logged.push(String(line)), done()) }) })
    const counts = await fireSchedules({ ...ctx, log }, [s.id], opts)
    assert.equal(counts.missed, 1)
    assert.equal((await t.ctx.db.select().from(scheduleFire).where(eq(scheduleFire.scheduleId, s.id))).length, 1)
    assert.equal((await queuedBy(sound)).length, 1)
    assert.deepEqual(await queuedBy(broken!.id), [])
    assert.deepEqual(await queuedBy(ghost!.id), [])
    const failed = logged.map((l) => JSON.parse(l)).filter((l) => l.msg === 'notify.event_failed')
    assert.deepEqual(failed.map((l) => l.ruleId).sort(), [broken!.id, ghost!.id].sort())
  })
})

describe('agent.online / agent.offline', () => {
  const keys = { identityPublicKey: 'aWQ=', boxPublicKey: 'Ym94', agentVersion: '1.0.0', protocolVersion: '1.0' }
  const addAgent = async (name: string, values: Partial<typeof agent.$inferInsert> = {}) =>
    (await t.ctx.db.insert(agent).values({ name, hostname: `${name}.example`, enrolledAt: new Date(now.getTime() - 86400_000), ...keys, ...values }).returning())[0]!
  const connect = async (id: string) => {
    await t.ctx.db.insert(agentSession).values({ agentId: id, sessionId: randomUUID(), controllerId: randomUUID(), connectedAt: now }).onConflictDoNothing()
    await t.ctx.db.update(agent).set({ lastSeenAt: now }).where(eq(agent.id, id))
  }
  const disconnect = (id: string) => t.ctx.db.delete(agentSession).where(eq(agentSession.agentId, id))
  const about = (id: string) => t.ctx.db.select().from(notification).where(like(notification.dedupeKey, `agent:${id}:%`))
  const presence = async (id: string) => (await t.ctx.db.select().from(agentPresence).where(eq(agentPresence.agentId, id)))[0]?.state

  test('an existing fleet at the first pass is recorded silently', async () => {
    await rule({ name: 'fleet watch', events: ['agent.offline', 'agent.online'] })
    const up = await addAgent(`fleet-up-${randomUUID()}`)
    const down = await addAgent(`fleet-down-${randomUUID()}`, { lastSeenAt: new Date(now.getTime() - 3600_000) })
    const never = await addAgent(`fleet-never-${randomUUID()}`)
    await connect(up.id)
    await runNotifyHousekeeping(ctx)
    assert.deepEqual([await presence(up.id), await presence(down.id), await presence(never.id)], ['online', 'offline', 'offline'])
    for (const a of [up, down, never]) assert.deepEqual(await about(a.id), [])
  })

  test('offline then online: two messages, each once however many controllers run the pass', async () => {
    const id = await rule({ name: 'agent watch', events: ['agent.offline', 'agent.online'] })
    const a = await addAgent(`web-${randomUUID()}`)
    await connect(a.id)
    await trackAgentPresence(ctx)
    // The stream drops: nothing while it was heard from within the online window…
    await disconnect(a.id)
    later(30_000)
    await trackAgentPresence(ctx)
    assert.equal(await presence(a.id), 'online')
    // …then it is offline, announced by exactly one of two controllers.
    later(30_000)
    const other = { ...ctx, nodeId: randomUUID() }
    await Promise.all([runNotifyHousekeeping(ctx), runNotifyHousekeeping(other)])
    await runNotifyHousekeeping(ctx)
    let rows = await about(a.id)
    assert.deepEqual(rows.map((r) => r.event), ['agent.offline'])
    assert.equal(rows[0]!.subject, `Agent ${a.name} is offline`)
    assert.equal(sent(rows[0]!).severity, 'error')
    assert.match(sent(rows[0]!).text, /has not been heard from since .* \(1 min 0 s ago\)/)
    later(120_000)
    await connect(a.id)
    await trackAgentPresence(ctx)
    await trackAgentPresence(other)
    rows = await about(a.id)
    assert.deepEqual(rows.map((r) => r.event).sort(), ['agent.offline', 'agent.online'])
    const online = rows.find((r) => r.event === 'agent.online')!
    assert.equal(online.subject, `Agent ${a.name} is back online`)
    assert.equal(sent(online).severity, 'success')
    assert.match(sent(online).link, new RegExp(`/agents/${a.id}$`))
    assert.equal((await queuedBy(id)).filter((r) => r.dedupeKey!.startsWith(`agent:${a.id}:`)).length, 2)
  })

  test('a new agent that enrolls and connects is announced online once', async () => {
    await rule({ name: 'new agents', events: ['agent.online'] })
    const a = await addAgent(`new-${randomUUID()}`, { enrolledAt: now })
    await connect(a.id)
    await trackAgentPresence(ctx)
    await trackAgentPresence(ctx)
    const rows = await about(a.id)
    assert.deepEqual(rows.map((r) => r.subject), [`Agent ${a.name} is online`])
  })

  test("target_selector matches the agent's target; job conditions never match an agent", async () => {
    const prod = await createTarget(t.ctx, { name: `prod-${randomUUID()}`, address: '127.0.0.1', os_type: 'linux', enabled: true, tags: { env: 'prod' }, connection: { type: 'ssh', port: 22, credential_id: null, host_key_policy: 'tofu', jump: [] } })
    const job = await createJob(t.ctx, undefined, { name: `agent-job-${randomUUID()}`, steps: [{ id: 'w', type: 'wait', seconds: 0.001 }] })
    const byTag = await rule({ name: 'prod agents', events: ['agent.offline'], conditions: { target_selector: 'tag:env=prod' } })
    const byJob = await rule({ name: 'job agents', events: ['agent.offline'], conditions: { job_ids: [job.id] } })
    const onProd = await addAgent(`on-prod-${randomUUID()}`, { targetId: prod.id })
    const bare = await addAgent(`bare-${randomUUID()}`)
    for (const a of [onProd, bare]) await connect(a.id)
    await trackAgentPresence(ctx)
    for (const a of [onProd, bare]) await disconnect(a.id)
    later(60_000)
    await trackAgentPresence(ctx)
    const rows = await queuedBy(byTag)
    assert.deepEqual(rows.map((r) => r.dedupeKey!.split(':')[1]), [onProd.id])
    assert.equal(sent(rows[0]!).data['target_name'], prod.name)
    assert.deepEqual(await queuedBy(byJob), [])
  })

  test('no change: one statement for the fleet; no rule: presence is tracked, nothing queued', async () => {
    const a = await addAgent(`quiet-${randomUUID()}`)
    await connect(a.id)
    await trackAgentPresence(ctx)
    const count = { n: 0 }
    await trackAgentPresence({ ...ctx, db: counting(t.ctx.db, count) })
    assert.equal(count.n, 2, 'one transaction, one statement')
    await disconnect(a.id)
    later(60_000)
    await trackAgentPresence(ctx)
    assert.equal(await presence(a.id), 'offline')
    assert.deepEqual(await about(a.id), [])
  })

  test('a controller within its start-up grace leaves presence alone', async () => {
    await rule({ name: 'grace', events: ['agent.offline'] })
    const a = await addAgent(`grace-${randomUUID()}`)
    await connect(a.id)
    await trackAgentPresence(ctx)
    await disconnect(a.id)
    later(60_000)
    assert.equal(await trackAgentPresence({ ...ctx, startedAt: new Date(now.getTime() - 10_000) }), 0)
    assert.equal(await presence(a.id), 'online')
  })
})

describe('security.*', () => {
  const login = (username: string, password: string) => call(app, 'POST', '/api/v1/auth/login', { body: { username, password } })

  test('a lockout is one critical message, with no secret in it', async () => {
    const all = await rule({ name: 'security all', events: ['security.*'] })
    const lockouts = await rule({ name: 'lockouts', events: ['security.login_lockout'] })
    const reuseOnly = await rule({ name: 'reuse only', events: ['security.refresh_token_reuse'] })
    const jobScoped = await rule({ name: 'job scoped', events: ['security.*'], conditions: { job_tags: ['x'] } })
    const victim = await createTestUser(t.ctx, 'viewer')
    const guess = 'Wrong-Guess-0f-A-Password'
    for (let i = 0; i < 6; i++) assert.equal((await login(victim.user.username, `${guess}${i}`)).status, 401)
    // Locked: refused without counting; once the lock passes another failure starts no new lockout.
    assert.equal((await login(victim.user.username, guess)).status, 429)
    later(5_000)
    assert.equal((await login(victim.user.username, guess)).status, 401)
    const [audit, ...more] = await t.ctx.db.select().from(auditLog).where(and(eq(auditLog.action, 'auth.login_lockout'), eq(auditLog.resourceId, victim.user.id)))
    assert.equal(more.length, 0)
    for (const id of [all, lockouts]) {
      const rows = await queuedBy(id)
      assert.equal(rows.length, 1)
      assert.equal(rows[0]!.event, 'security.login_lockout')
      assert.match(rows[0]!.dedupeKey!, new RegExp(`^audit:${audit!.id}:`))
      assert.equal(rows[0]!.subject, `Security: sign-in as ${victim.user.username} locked after 6 failed attempts`)
      const text = JSON.stringify(rows[0])
      assert.equal(sent(rows[0]!).severity, 'critical')
      for (const secret of [guess, victim.password, victim.refreshToken, victim.token]) assert.ok(!text.includes(secret), 'no secret in the message')
    }
    assert.deepEqual(await queuedBy(reuseOnly), [])
    assert.deepEqual(await queuedBy(jobScoped), [])
  })

  test('a reused refresh token is one message naming the user, without the token', async () => {
    const id = await rule({ name: 'token reuse', events: ['security.refresh_token_reuse'] })
    const u = await createTestUser(t.ctx, 'viewer')
    assert.equal((await call(app, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: u.refreshToken } })).status, 200)
    assert.equal((await call(app, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: u.refreshToken } })).status, 401)
    const rows = await queuedBy(id)
    assert.equal(rows.length, 1)
    assert.equal(rows[0]!.subject, `Security: a refresh token of ${u.user.username} was used twice`)
    assert.ok(!JSON.stringify(rows[0]).includes(u.refreshToken))
  })

  test("an agent's report of a forged assignment raises security.forged_assignment; an expired one does not", async () => {
    const id = await rule({ name: 'forgeries', events: ['security.forged_assignment'] })
    const [a] = await t.ctx.db.insert(agent).values({ name: 'forged-host', hostname: 'forged.example', identityPublicKey: 'aWQ=', boxPublicKey: 'Ym94', agentVersion: '1', protocolVersion: '1.0' }).returning()
    const report = (kind: string) =>
      appendAuditNotifying(ctx, {
        actor: { type: 'agent', id: a!.id, name: a!.name },
        action: 'agents.security_event',
        resourceType: 'agent',
        resourceId: a!.id,
        clientAddress: '192.0.2.7:5555',
        outcome: 'denied',
        summary: { kind, assignment_id: 'as-1', detail: 'signature does not verify' },
      })
    const forged = await report('bad_signature')
    await report('expired')
    const rows = await queuedBy(id)
    assert.equal(rows.length, 1)
    assert.equal(rows[0]!.dedupeKey!.split(':rule:')[0], `audit:${forged.id}`)
    assert.equal(rows[0]!.subject, 'Security: agent forged-host refused a forged assignment (bad_signature)')
    assert.match(sent(rows[0]!).text, /refused assignment as-1: bad_signature/)
  })
})
