import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, beforeEach, test } from 'node:test'
import { asc, eq, inArray } from 'drizzle-orm'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { RunsApi } from '../../../test/harness/runs.ts'
import type { AppContext } from '../context.ts'
import { job } from '../jobs/jobs.sql.ts'
import { run } from '../runs/runs.sql.ts'
import { planOccurrences } from './fire.ts'
import { schedule, scheduleFire, schedulerState, type ScheduleRow } from './scheduler.sql.ts'
import { tickScheduler, type TickOptions } from './tick.ts'

let t: TestContext
let jobId: string
/** Whole second + 500 ms: occurrences of an every-second cron fall on whole seconds. */
let now: Date
let ctx: AppContext
const opts: TickOptions = { node: 'test-node', graceMs: 2_000, batchSize: 7, parallel: 3 }

before(async () => {
  t = await createTestContext()
  const api = await RunsApi.as(t.ctx)
  jobId = await api.createJob({ name: 'scheduled wait', steps: [{ id: 'w', type: 'wait', seconds: 0.001 }] })
})
after(async () => t?.close())
beforeEach(async () => {
  now = new Date(Math.floor(Date.now() / 1000) * 1000 + 500)
  ctx = { ...t.ctx, clock: () => now }
  await t.ctx.db.update(schedule).set({ enabled: false })
  await t.ctx.db.update(schedulerState).set({ paused: false })
})

const at = (secondsFromNow: number) => new Date(Math.floor(now.getTime() / 1000) * 1000 + secondsFromNow * 1000)

async function addSchedule(values: Partial<typeof schedule.$inferInsert> = {}): Promise<ScheduleRow> {
  const [row] = await t.ctx.db
    .insert(schedule)
    .values({ name: `s-${randomUUID()}`, jobId, cron: '* * * * * *', nextFireAt: at(0), maxConcurrentRuns: 100, ...values })
    .returning()
  return row!
}

const fires = (scheduleId: string) => t.ctx.db.select().from(scheduleFire).where(eq(scheduleFire.scheduleId, scheduleId)).orderBy(asc(scheduleFire.fireAt))
const scheduleRow = async (id: string) => (await t.ctx.db.select().from(schedule).where(eq(schedule.id, id)))[0]!
const endRun = (runId: string, status: 'succeeded' | 'failed', finishedAt = now) => t.ctx.db.update(run).set({ status, finishedAt }).where(eq(run.id, runId))

test('planOccurrences: run_once runs the latest in time, run_all all in time, skip only the on-time', () => {
  const n = new Date('2026-01-01T00:01:00Z')
  const due = [-50, -20, -1].map((s) => new Date(n.getTime() + s * 1000))
  const plan = (misfirePolicy: ScheduleRow['misfirePolicy']) => planOccurrences({ misfirePolicy, misfireMaxLatenessSec: 30 }, due, n, 2_000).map((p) => (p.run ? 'run' : p.reason))
  assert.deepEqual(plan('run_once'), ['misfire', 'collapsed', 'run'])
  assert.deepEqual(plan('run_all'), ['misfire', 'run', 'run'])
  assert.deepEqual(plan('skip'), ['misfire', 'misfire', 'run'])
})

test('a due schedule fires once: a run with trigger schedule, the fire recorded, next_fire_at advanced', async () => {
  const s = await addSchedule({ parameters: {} })
  const result = await tickScheduler(ctx, opts)
  assert.equal(result.fired, 1)
  const [f, ...rest] = await fires(s.id)
  assert.equal(rest.length, 0)
  assert.equal(f!.status, 'fired')
  assert.equal(f!.fireAt.getTime(), at(0).getTime())
  assert.equal(f!.lagMs, 500)
  assert.equal(f!.decidedBy, 'test-node')
  const [r] = await t.ctx.db.select().from(run).where(eq(run.id, f!.runId!))
  assert.equal(r!.trigger, 'schedule')
  assert.equal(r!.requestedBy, s.id)
  assert.equal((await scheduleRow(s.id)).nextFireAt!.getTime(), at(1).getTime())
  // The same moment again: nothing is due, nothing more fires.
  assert.equal((await tickScheduler(ctx, opts)).fired, 0)
  assert.equal((await fires(s.id)).length, 1)
  const [state] = await t.ctx.db.select().from(schedulerState)
  assert.equal(state!.lastTickAt!.getTime(), now.getTime())
})

test('an occurrence already recorded is never launched again (take-over, restart, clock step back)', async () => {
  const s = await addSchedule()
  await t.ctx.db.insert(scheduleFire).values({ scheduleId: s.id, fireAt: at(0), status: 'fired', decidedBy: 'old-leader' })
  const result = await tickScheduler(ctx, opts)
  assert.equal(result.duplicate, 1)
  assert.equal(result.fired, 0)
  const rows = await fires(s.id)
  assert.equal(rows.length, 1)
  assert.equal(rows[0]!.decidedBy, 'old-leader')
  assert.equal((await scheduleRow(s.id)).nextFireAt!.getTime(), at(1).getTime())
})

test('run_once: occurrences missed while no controller ran collapse into one run for the latest', async () => {
  const s = await addSchedule({ misfirePolicy: 'run_once', nextFireAt: at(-10) })
  await tickScheduler(ctx, opts)
  const rows = await fires(s.id)
  assert.equal(rows.length, 11)
  assert.deepEqual(rows.map((r) => r.status), [...Array(10).fill('missed'), 'fired'])
  assert.ok(rows.slice(0, 10).every((r) => r.reason === 'collapsed' && r.runId === null))
  assert.equal(rows[10]!.fireAt.getTime(), at(0).getTime())
})

test('run_all: each occurrence within the max lateness runs, older ones are missed', async () => {
  const s = await addSchedule({ misfirePolicy: 'run_all', misfireMaxLatenessSec: 5, nextFireAt: at(-10) })
  await tickScheduler(ctx, opts)
  const rows = await fires(s.id)
  assert.equal(rows.length, 11)
  // Lateness 10.5 … 5.5 s: missed; 4.5 … 0.5 s: run.
  assert.deepEqual(rows.map((r) => r.status), [...Array(6).fill('missed'), ...Array(5).fill('fired')])
  assert.ok(rows.slice(0, 6).every((r) => r.reason === 'misfire'))
  assert.equal(new Set(rows.filter((r) => r.runId).map((r) => r.runId)).size, 5)
})

test('skip misfire policy: only on-time occurrences run', async () => {
  const s = await addSchedule({ misfirePolicy: 'skip', nextFireAt: at(-5) })
  await tickScheduler(ctx, opts)
  const rows = await fires(s.id)
  // Lateness 5.5 … 2.5 s beyond the 2 s grace: missed; 1.5 and 0.5 s: run.
  assert.deepEqual(rows.map((r) => r.status), ['missed', 'missed', 'missed', 'missed', 'fired', 'fired'])
})

test('concurrency skip: an occurrence while the previous run is active is skipped and recorded', async () => {
  const s = await addSchedule({ concurrencyPolicy: 'skip', maxConcurrentRuns: 1 })
  await tickScheduler(ctx, opts)
  now = new Date(now.getTime() + 1000)
  await tickScheduler(ctx, opts)
  const rows = await fires(s.id)
  assert.deepEqual(rows.map((r) => [r.status, r.reason]), [['fired', null], ['skipped', 'concurrency']])
  await endRun(rows[0]!.runId!, 'succeeded')
  now = new Date(now.getTime() + 1000)
  await tickScheduler(ctx, opts)
  assert.equal((await fires(s.id))[2]!.status, 'fired', 'capacity again once the run ended')
})

test('concurrency queue: occurrences wait and launch in order as runs end', async () => {
  const s = await addSchedule({ concurrencyPolicy: 'queue', maxConcurrentRuns: 1, nextFireAt: at(-2), misfirePolicy: 'run_all' })
  await tickScheduler(ctx, opts)
  let rows = await fires(s.id)
  assert.deepEqual(rows.map((r) => r.status), ['fired', 'queued', 'queued'])
  await endRun(rows[0]!.runId!, 'succeeded')
  now = new Date(now.getTime() + 200)
  await tickScheduler(ctx, opts)
  rows = await fires(s.id)
  assert.deepEqual(rows.map((r) => r.status), ['fired', 'fired', 'queued'], 'the oldest queued occurrence first')
  assert.equal(rows[1]!.lagMs, 1700)
  await endRun(rows[1]!.runId!, 'succeeded')
  now = new Date(now.getTime() + 200)
  await tickScheduler(ctx, opts)
  rows = await fires(s.id)
  assert.deepEqual(rows.map((r) => r.status), ['fired', 'fired', 'fired'])
  now = new Date(now.getTime() + 1000)
  await tickScheduler(ctx, opts)
  assert.deepEqual((await fires(s.id)).map((r) => r.status), ['fired', 'fired', 'fired', 'queued'], 'a new occurrence queues behind the active run')
})

test('a launch the job refuses is a failed fire with the reason, and the schedule moves on', async () => {
  const api = await RunsApi.as(t.ctx)
  const disabledJob = await api.createJob({ name: 'disabled for the scheduler', steps: [{ id: 'w', type: 'wait', seconds: 0.001 }] })
  await t.ctx.db.update(job).set({ enabled: false }).where(eq(job.id, disabledJob))
  const s = await addSchedule({ jobId: disabledJob })
  const result = await tickScheduler(ctx, opts)
  assert.equal(result.failed, 1)
  const [f] = await fires(s.id)
  assert.equal(f!.status, 'failed')
  assert.match(f!.reason!, /disabled/)
  assert.equal(f!.runId, null)
  assert.equal((await scheduleRow(s.id)).nextFireAt!.getTime(), at(1).getTime())
})

test('paused: nothing fires, due occurrences are counted; on resume the misfire policy decides', async () => {
  const s = await addSchedule({ misfirePolicy: 'run_once' })
  await t.ctx.db.update(schedulerState).set({ paused: true })
  const paused = await tickScheduler(ctx, opts)
  assert.equal(paused.paused, true)
  assert.equal(paused.due, 1)
  assert.equal((await fires(s.id)).length, 0)
  assert.equal((await t.ctx.db.select().from(schedulerState))[0]!.dueCount, 1)
  now = new Date(now.getTime() + 3000)
  await t.ctx.db.update(schedulerState).set({ paused: false })
  await tickScheduler(ctx, opts)
  assert.deepEqual((await fires(s.id)).map((r) => r.status), ['missed', 'missed', 'missed', 'fired'])
})

test('two leaders ticking at once on the same occurrences fire each exactly once', async () => {
  const ids: string[] = []
  for (let i = 0; i < 12; i++) ids.push((await addSchedule({ misfirePolicy: i % 2 ? 'run_all' : 'run_once', nextFireAt: at(-3) })).id)
  const results = await Promise.all([tickScheduler(ctx, { ...opts, node: 'a' }), tickScheduler(ctx, { ...opts, node: 'b' }), tickScheduler(ctx, { ...opts, node: 'c' })])
  const list = await t.ctx.db.select().from(scheduleFire).where(inArray(scheduleFire.scheduleId, ids))
  assert.equal(list.length, 12 * 4, 'one row per (schedule, fire time)')
  const fired = list.filter((r) => r.status === 'fired')
  assert.equal(fired.length, 6 * 1 + 6 * 4)
  assert.equal(new Set(fired.map((r) => r.runId)).size, fired.length, 'one run per fired occurrence')
  const runs = await t.ctx.db.select({ id: run.id }).from(run).where(inArray(run.requestedBy, ids))
  assert.equal(runs.length, fired.length, 'no run launched outside a fired row')
  assert.equal(results.reduce((n, r) => n + r.fired, 0), fired.length)
})

test('a failed scheduled run is retried after delay × backoff^(attempt-1), the attempt recorded on the fire', async () => {
  const s = await addSchedule({ retryCount: 2, retryDelaySec: 10, retryBackoff: 3 })
  await tickScheduler(ctx, opts)
  const [first] = await fires(s.id)
  await endRun(first!.runId!, 'failed', now)
  now = new Date(now.getTime() + 9_000)
  await t.ctx.db.update(schedule).set({ enabled: true, nextFireAt: null }).where(eq(schedule.id, s.id))
  await tickScheduler(ctx, opts)
  assert.equal((await fires(s.id))[0]!.attempt, 1, 'not before the delay')
  now = new Date(now.getTime() + 1_000)
  await tickScheduler(ctx, opts)
  const [second] = await fires(s.id)
  assert.equal(second!.attempt, 2)
  assert.notEqual(second!.runId, first!.runId)
  const [r] = await t.ctx.db.select().from(run).where(eq(run.id, second!.runId!))
  assert.equal(r!.retryOf, first!.runId)
  // Second retry: 10 s × 3^1 after the retry's end.
  await endRun(second!.runId!, 'failed', now)
  now = new Date(now.getTime() + 29_000)
  await tickScheduler(ctx, opts)
  assert.equal((await fires(s.id))[0]!.attempt, 2)
  now = new Date(now.getTime() + 1_000)
  await tickScheduler(ctx, opts)
  const [third] = await fires(s.id)
  assert.equal(third!.attempt, 3)
  await endRun(third!.runId!, 'failed', now)
  now = new Date(now.getTime() + 3_600_000)
  await tickScheduler(ctx, opts)
  assert.equal((await fires(s.id))[0]!.attempt, 3, 'retry_count 2: no fourth attempt')
})
