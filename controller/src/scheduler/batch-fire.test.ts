import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, beforeEach, test } from 'node:test'
import { asc, eq, inArray } from 'drizzle-orm'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { RunsApi } from '../../../test/harness/runs.ts'
import type { AppContext } from '../context.ts'
import { job } from '../jobs/jobs.sql.ts'
import { advanceRun } from '../runs/coordinator.ts'
import { run, runEvent, stepRun } from '../runs/runs.sql.ts'
import { createTarget } from '../targets/service.ts'
import { schedule, scheduleFire, type ScheduleRow } from './scheduler.sql.ts'
import { tickScheduler, type TickOptions } from './tick.ts'

// Firing in batches: many schedules decided and launched in one transaction, each one's trouble its own.

let t: TestContext
let api: RunsApi
let jobId: string
let fanJobId: string
let now: Date
let ctx: AppContext
const opts: TickOptions = { node: 'batch-node', graceMs: 2_000, batchSize: 500, parallel: 2, fireBatch: 50 }

before(async () => {
  t = await createTestContext()
  api = await RunsApi.as(t.ctx)
  for (const name of ['bf-1', 'bf-2', 'bf-3']) {
    await createTarget(t.ctx, {
      name,
      address: '127.0.0.1',
      os_type: 'linux',
      enabled: true,
      tags: { role: 'bf' },
      connection: { type: 'ssh', port: 22, credential_id: null, host_key_policy: 'tofu', jump: [] },
    })
  }
  jobId = await api.createJob({ name: 'batch wait', steps: [{ id: 'w', type: 'wait', seconds: 0.001 }] })
  // Two targets at a time, two steps: the first advance readies step 1 on the first two targets only.
  fanJobId = await api.createJob({
    name: 'batch fan-out',
    targets: 'tag:role=bf',
    fan_out: { max_parallel: 2 },
    steps: [
      { id: 'a', type: 'wait', seconds: 0.001 },
      { id: 'b', type: 'wait', seconds: 0.001 },
    ],
  })
})
after(async () => t?.close())
beforeEach(async () => {
  now = new Date(Math.floor(Date.now() / 1000) * 1000 + 500)
  ctx = { ...t.ctx, clock: () => now }
  await t.ctx.db.update(schedule).set({ enabled: false })
})

const at = (secondsFromNow: number) => new Date(Math.floor(now.getTime() / 1000) * 1000 + secondsFromNow * 1000)

async function addSchedules(n: number, values: Partial<typeof schedule.$inferInsert> = {}): Promise<ScheduleRow[]> {
  return t.ctx.db
    .insert(schedule)
    .values(Array.from({ length: n }, () => ({ name: `b-${randomUUID()}`, jobId, cron: '* * * * * *', nextFireAt: at(0), maxConcurrentRuns: 100, ...values })))
    .returning()
}

const firesOf = (ids: string[]) => t.ctx.db.select().from(scheduleFire).where(inArray(scheduleFire.scheduleId, ids)).orderBy(asc(scheduleFire.fireAt))

test('120 due schedules fire in batches: each occurrence once, one started run each, next fire times moved', async () => {
  const rows = await addSchedules(120)
  const ids = rows.map((r) => r.id)
  const result = await tickScheduler(ctx, opts)
  assert.equal(result.fired, 120)
  const fires = await firesOf(ids)
  assert.equal(fires.length, 120)
  assert.ok(fires.every((f) => f.status === 'fired' && f.runId && f.lagMs === 500 && f.decidedBy === 'batch-node'))
  const runs = await t.ctx.db.select().from(run).where(inArray(run.requestedBy, ids))
  assert.equal(runs.length, 120)
  assert.deepEqual(new Set(runs.map((r) => r.id)), new Set(fires.map((f) => f.runId)))
  // Started with the launch: running, its step ready to be claimed.
  assert.ok(runs.every((r) => r.status === 'running' && r.startedAt?.getTime() === now.getTime() && r.trigger === 'schedule'))
  const steps = await t.ctx.db.select().from(stepRun).where(inArray(stepRun.runId, runs.map((r) => r.id)))
  assert.equal(steps.length, 120)
  assert.ok(steps.every((s) => s.ready && s.status === 'queued'))
  const next = await t.ctx.db.select({ next: schedule.nextFireAt, last: schedule.lastFireAt }).from(schedule).where(inArray(schedule.id, ids))
  assert.ok(next.every((s) => s.next?.getTime() === at(1).getTime() && s.last?.getTime() === at(0).getTime()))
})

test('one schedule’s refusal is its own failed fire: the others in the batch fire', async () => {
  const disabledJob = await api.createJob({ name: `disabled ${randomUUID()}`, steps: [{ id: 'w', type: 'wait', seconds: 0.001 }] })
  await t.ctx.db.update(job).set({ enabled: false }).where(eq(job.id, disabledJob))
  const noTargetsJob = await api.createJob({ name: `no targets ${randomUUID()}`, steps: [{ id: 'e', type: 'exec', command: 'true' }] })
  const good = await addSchedules(3)
  const [disabled] = await addSchedules(1, { jobId: disabledJob })
  const [empty] = await addSchedules(1, { jobId: noTargetsJob, targets: 'tag:role=nothing-matches-this' })
  const [badParam] = await addSchedules(1, { parameters: { undeclared: 'x' } })
  const result = await tickScheduler(ctx, opts)
  assert.equal(result.fired, 3)
  assert.equal(result.failed, 3)
  const fires = await firesOf([...good, disabled!, empty!, badParam!].map((s) => s.id))
  const by = new Map(fires.map((f) => [f.scheduleId, f]))
  for (const s of good) assert.equal(by.get(s.id)!.status, 'fired')
  for (const [s, reason] of [
    [disabled!, /disabled/],
    [empty!, /matches no enabled target/],
    [badParam!, /undeclared/],
  ] as const) {
    const f = by.get(s.id)!
    assert.equal(f.status, 'failed', s.name)
    assert.match(f.reason!, reason)
    assert.equal(f.runId, null)
    assert.equal(f.lagMs, null)
  }
  // Every schedule moved on, failed or not.
  const next = await t.ctx.db.select({ next: schedule.nextFireAt }).from(schedule).where(inArray(schedule.id, [disabled!.id, empty!.id, badParam!.id]))
  assert.ok(next.every((s) => s.next?.getTime() === at(1).getTime()))
  assert.equal((await t.ctx.db.select().from(run).where(inArray(run.requestedBy, [disabled!.id, empty!.id, badParam!.id]))).length, 0)
})

test('an occurrence recorded already is a duplicate in its batch; the rest of the batch fires', async () => {
  const rows = await addSchedules(5, { misfirePolicy: 'run_all', nextFireAt: at(-1) })
  await t.ctx.db.insert(scheduleFire).values({ scheduleId: rows[2]!.id, fireAt: at(-1), status: 'fired', decidedBy: 'old-leader' })
  const result = await tickScheduler(ctx, opts)
  assert.equal(result.duplicate, 1)
  assert.equal(result.fired, 9)
  const fires = await firesOf(rows.map((r) => r.id))
  assert.equal(fires.length, 10)
  assert.equal(fires.find((f) => f.scheduleId === rows[2]!.id && f.fireAt.getTime() === at(-1).getTime())!.decidedBy, 'old-leader')
  assert.equal((await t.ctx.db.select().from(run).where(inArray(run.requestedBy, rows.map((r) => r.id)))).length, 9)
})

test('a scheduled run starts as advanceRun starts a manual run of the same job (fan-out limit, order)', async () => {
  const [s] = await addSchedules(1, { jobId: fanJobId })
  await tickScheduler(ctx, opts)
  const [f] = await firesOf([s!.id])
  const scheduled = await t.ctx.db.select().from(stepRun).where(eq(stepRun.runId, f!.runId!))
  const manualId = await api.run(fanJobId)
  const manual = await t.ctx.db.select().from(stepRun).where(eq(stepRun.runId, manualId))
  const shape = (rows: typeof scheduled) =>
    rows
      .map((r) => `${r.stepId}:${r.targetName}:${r.ready}:${r.status}`)
      .sort()
      .join(' ')
  assert.equal(shape(scheduled), shape(manual))
  assert.equal(scheduled.filter((r) => r.ready).length, 2)
  // Nothing left for the coordinator to do at this point: advancing again changes nothing.
  const again = await advanceRun(t.ctx, f!.runId!)
  assert.equal(again?.ready, 0)
  assert.equal(again?.status, 'running')
  const events = await t.ctx.db.select().from(runEvent).where(eq(runEvent.runId, f!.runId!)).orderBy(asc(runEvent.seq))
  assert.deepEqual(
    events.map((e) => `${e.kind}:${e.status}`),
    ['run:running', ...Array(6).fill('step:queued')],
  )
})
