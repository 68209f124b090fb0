import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { eq, inArray } from 'drizzle-orm'
import { waitUntil } from '../../../test/harness/agents.ts'
import { callerFor, createTestUser, errorPaths, type TestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createApp } from '../app.ts'
import { auditLog } from '../audit/audit.sql.ts'
import { createJob } from '../jobs/service.ts'
import { RunEngine } from '../runs/engine.ts'
import { launchRun } from '../runs/launch.ts'
import { run } from '../runs/runs.sql.ts'
import { appUser } from '../users/users.sql.ts'
import { notification, notificationChannel, notificationEscalation, notificationRule } from './notify.sql.ts'
import { sendDueEscalations } from './run-events.ts'

// Rules turn run ends into outbox rows, in the transaction that ends the run. No worker runs
// here: what is asserted is what was queued (delivery has its own tests).

let t: TestContext
let engine: RunEngine
let api: ReturnType<ReturnType<typeof callerFor>>
let viewer: ReturnType<ReturnType<typeof callerFor>>
let admin: TestUser
let hookId: string
let mailId: string
let now = new Date()

before(async () => {
  t = await createTestContext()
  const real = t.ctx.clock
  t.ctx.clock = () => (now.getTime() > Date.now() ? now : real())
  engine = new RunEngine(t.ctx, { leaseMs: 5000, localCapacity: 16, agentCapacity: 16 })
  t.ctx.runEngine = engine
  await engine.start()
  const app = createApp(t.ctx, { uiDir: '/nonexistent' })
  const as = callerFor(app)
  admin = await createTestUser(t.ctx, 'admin')
  api = as(await createTestUser(t.ctx, 'operator'))
  viewer = as(await createTestUser(t.ctx, 'viewer'))
  await t.ctx.db.update(appUser).set({ email: 'oncall@example.test' }).where(eq(appUser.id, admin.user.id))
  const [hook] = await t.ctx.db.insert(notificationChannel).values({ name: 'ops hook', type: 'webhook', config: {} }).returning()
  const [mail] = await t.ctx.db.insert(notificationChannel).values({ name: 'ops mail', type: 'email', config: { to: ['ops@example.test'] } }).returning()
  hookId = hook!.id
  mailId = mail!.id
})
after(async () => {
  await engine.stop()
  await t?.close()
})

const failing = { id: 'probe', type: 'http.get', url: 'http://127.0.0.1:1/health', timeout_sec: 5 }
const passing = { id: 'nap', type: 'wait', seconds: 0.01 }

async function runOnce(jobId: string): Promise<string> {
  const { runId } = await launchRun(t.ctx, undefined, jobId, { parameters: {} }, { trigger: 'manual' })
  await waitUntil(async () => !['queued', 'running'].includes((await t.ctx.db.select({ s: run.status }).from(run).where(eq(run.id, runId)))[0]!.s), 30_000, 'the run to end')
  return runId
}
const queuedFor = (runIds: string[]) => t.ctx.db.select().from(notification).where(inArray(notification.runId, runIds))

async function rule(body: object): Promise<string> {
  const res = await api.post('/api/v1/notification-rules', body)
  assert.equal(res.status, 201, JSON.stringify(res.body))
  return res.body.id
}

describe('notification rules API', () => {
  test('a rule names what exists, a template reads known fields only; every problem is a 400 by path and nothing is stored', async () => {
    const before = await t.ctx.db.select().from(notificationRule)
    const bad = await api.post('/api/v1/notification-rules', {
      name: 'bad',
      events: ['run.failed', 'run.exploded'],
      channel_ids: ['5f8e0c2e-0000-4000-8000-000000000000'],
      conditions: { target_selector: 'tag:(' },
      template: { subject: '{{ nope }}' },
      escalation: { after_sec: 600, channel_ids: [] },
    })
    assert.equal(bad.status, 400)
    assert.equal(bad.body.error.code, 'VALIDATION')
    assert.ok(errorPaths(bad.body).some((p) => p.startsWith('events')))
    const valid = { name: 'good', events: ['run.failed'], channel_ids: ['5f8e0c2e-0000-4000-8000-000000000000'], conditions: { target_selector: 'tag:(' }, template: { subject: '{{ nope }}' } }
    const second = await api.post('/api/v1/notification-rules', valid)
    assert.deepEqual(errorPaths(second.body).sort(), ['channel_ids[0]', 'conditions.target_selector', 'template.subject'])
    const noRecipient = await api.post('/api/v1/notification-rules', { name: 'nobody', events: ['run.failed'] })
    assert.deepEqual(errorPaths(noRecipient.body), ['channel_ids'])
    const escalateSuccess = await api.post('/api/v1/notification-rules', { name: 'odd', events: ['run.succeeded'], channel_ids: [hookId], escalation: { after_sec: 600, channel_ids: [mailId] } })
    assert.deepEqual(errorPaths(escalateSuccess.body), ['escalation'])
    assert.equal((await viewer.post('/api/v1/notification-rules', { name: 'v', events: ['run.failed'], channel_ids: [hookId] })).status, 403)
    assert.deepEqual(await t.ctx.db.select().from(notificationRule), before)
  })

  test('create, read, update (merged, audited), delete', async () => {
    const id = await rule({ name: 'crud rule', events: ['run.failed'], channel_ids: [hookId] })
    const put = await api.put(`/api/v1/notification-rules/${id}`, { enabled: false })
    assert.equal(put.status, 200)
    assert.equal(put.body.enabled, false)
    assert.deepEqual(put.body.channel_ids, [hookId])
    assert.equal((await viewer.get(`/api/v1/notification-rules/${id}`)).body.name, 'crud rule')
    assert.equal((await api.del(`/api/v1/notification-rules/${id}`)).status, 200)
    assert.equal((await viewer.get(`/api/v1/notification-rules/${id}`)).status, 404)
    const audit = await t.ctx.db.select().from(auditLog).where(eq(auditLog.resourceId, id))
    assert.ok(audit.length >= 3)
  })
})

describe('run ends through rules into the outbox', () => {
  test('a failed run queues exactly one message per channel and per user, rendered with the run', async () => {
    const job = await createJob(t.ctx, undefined, { name: 'nightly backup', steps: [failing] })
    await rule({ name: 'backup failures', events: ['run.failed'], conditions: { job_ids: [job.id] }, channel_ids: [hookId], user_ids: [admin.user.id] })
    const runId = await runOnce(job.id)
    const rows = await queuedFor([runId])
    assert.deepEqual(rows.map((r) => [r.channelId, r.recipient, r.event]).sort(), [
      [hookId, null, 'run.failed'],
      [mailId, 'oncall@example.test', 'run.failed'],
    ].sort())
    const hook = rows.find((r) => r.channelId === hookId)!
    assert.match(hook.subject, /nightly backup: failed/)
    assert.match(JSON.stringify(hook.payload), new RegExp(`/runs/${runId}`))
    // Advancing the ended run again (another controller, a sweep) queues nothing new.
    await engine.advance(runId)
    assert.equal((await queuedFor([runId])).length, 2)
    // A rule for another job sees nothing.
    const other = await createJob(t.ctx, undefined, { name: 'other job', steps: [failing] })
    assert.deepEqual(await queuedFor([await runOnce(other.id)]), [])
  })

  test('only_on_change: the first failure and the recovery, not the repeats', async () => {
    const job = await createJob(t.ctx, undefined, { name: 'flappy', steps: [failing] })
    const passJob = job.id
    await rule({ name: 'flappy changes', events: ['run.failed', 'run.succeeded'], conditions: { job_ids: [passJob], only_on_change: true }, channel_ids: [hookId] })
    const first = await runOnce(passJob)
    const second = await runOnce(passJob)
    // The job is fixed: the next run passes.
    const fixed = await api.put(`/api/v1/jobs/${passJob}`, { name: 'flappy', steps: [passing] })
    assert.equal(fixed.status, 200, JSON.stringify(fixed.body))
    const third = await runOnce(passJob)
    const fourth = await runOnce(passJob)
    const rows = await queuedFor([first, second, third, fourth])
    assert.deepEqual(rows.map((r) => [r.runId, r.event]).sort(), [[first, 'run.failed'], [third, 'run.succeeded']].sort())
  })

  test('step.failed: one message per failed step run', async () => {
    const job = await createJob(t.ctx, undefined, { name: 'two probes', steps: [{ ...failing, continue_on_error: true }, { ...failing, id: 'probe2' }] })
    await rule({ name: 'step failures', events: ['step.failed'], conditions: { job_ids: [job.id] }, channel_ids: [hookId] })
    const runId = await runOnce(job.id)
    const rows = await queuedFor([runId])
    assert.equal(rows.length, 2)
    assert.deepEqual(rows.map((r) => r.subject).sort(), ['two probes: failed (step probe)', 'two probes: failed (step probe2)'])
  })

  test('escalation: a failure with no success within the time goes to the second set once; a success settles it', async () => {
    const job = await createJob(t.ctx, undefined, { name: 'payments sync', steps: [failing] })
    const ruleId = await rule({ name: 'payments', events: ['run.failed'], conditions: { job_ids: [job.id] }, channel_ids: [hookId], escalation: { after_sec: 600, channel_ids: [mailId] } })
    const failed = await runOnce(job.id)
    const [waiting] = await t.ctx.db.select().from(notificationEscalation).where(eq(notificationEscalation.runId, failed))
    assert.equal(waiting?.status, 'waiting')
    assert.equal(await sendDueEscalations(t.ctx), 0, 'not due yet')
    now = new Date(Date.now() + 11 * 60_000)
    assert.equal(await sendDueEscalations(t.ctx), 1)
    assert.equal(await sendDueEscalations(t.ctx), 0, 'sent once')
    now = new Date(0)
    const escalated = (await queuedFor([failed])).filter((r) => r.channelId === mailId)
    assert.equal(escalated.length, 1)
    assert.match(escalated[0]!.subject, /^Escalation/)

    // Another failure, then a success before its time: nothing is escalated.
    const again = await runOnce(job.id)
    await api.put(`/api/v1/jobs/${job.id}`, { name: 'payments sync', steps: [passing] })
    await runOnce(job.id)
    const [settled] = await t.ctx.db.select().from(notificationEscalation).where(eq(notificationEscalation.runId, again))
    assert.equal(settled?.status, 'resolved')
    now = new Date(Date.now() + 11 * 60_000)
    assert.equal(await sendDueEscalations(t.ctx), 0)
    now = new Date(0)
    assert.ok(ruleId)
  })

  test('preview renders a template for a real run, for every channel type', async () => {
    const job = await createJob(t.ctx, undefined, { name: 'previewed', steps: [failing] })
    const runId = await runOnce(job.id)
    const res = await viewer.post('/api/v1/notification-rules/preview', { run_id: runId, template: { subject: '{{ job_name | upper }} is {{ status }}' } })
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.equal(res.body.subject, 'PREVIEWED is failed')
    assert.match(res.body.text, /Failed targets|Status: failed/)
    assert.deepEqual(Object.keys(res.body.channels).sort(), ['email', 'slack', 'teams', 'webhook'])
    const bad = await viewer.post('/api/v1/notification-rules/preview', { run_id: runId, template: { body: '{{ secret "x" "y" }}' } })
    assert.equal(bad.status, 400)
  })
})
