import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, beforeEach, test } from 'node:test'
import { asc, eq } from 'drizzle-orm'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { RunsApi } from '../../../test/harness/runs.ts'
import type { AppContext } from '../context.ts'
import { run } from '../runs/runs.sql.ts'
import { createTarget } from '../targets/service.ts'
import { maintenanceWindow } from './maintenance.sql.ts'
import { schedule, scheduleFire, type ScheduleRow } from './scheduler.sql.ts'
import { tickScheduler, type TickOptions } from './tick.ts'

let t: TestContext
let jobId: string
let targetA: string
let targetB: string
let now: Date
let ctx: AppContext
const opts: TickOptions = { node: 'test-node', graceMs: 2_000, batchSize: 10, parallel: 2 }

before(async () => {
  t = await createTestContext()
  const api = await RunsApi.as(t.ctx)
  const ids: string[] = []
  for (const name of ['mw-a', 'mw-b']) {
    const created = await createTarget(t.ctx, {
      name,
      address: '127.0.0.1',
      os_type: 'linux',
      enabled: true,
      tags: { role: name },
      connection: { type: 'ssh', port: 22, credential_id: null, host_key_policy: 'tofu', jump: [] },
    })
    ids.push(created.id)
  }
  ;[targetA, targetB] = ids as [string, string]
  // Wait steps run in the controller, once per selected target: no SSH needed.
  jobId = await api.createJob({ name: 'maintained', targets: 'tag:role=mw-a', steps: [{ id: 'w', type: 'wait', seconds: 0.001 }] })
})
after(async () => t?.close())
beforeEach(async () => {
  now = new Date(Math.floor(Date.now() / 1000) * 1000 + 500)
  ctx = { ...t.ctx, clock: () => now }
  await t.ctx.db.update(schedule).set({ enabled: false })
  await t.ctx.db.update(maintenanceWindow).set({ enabled: false })
})

const at = (secondsFromNow: number) => new Date(Math.floor(now.getTime() / 1000) * 1000 + secondsFromNow * 1000)

async function addSchedule(): Promise<ScheduleRow> {
  const [row] = await t.ctx.db
    .insert(schedule)
    .values({ name: `s-${randomUUID()}`, jobId, cron: '0 0 1 1 *', nextFireAt: at(0), maxConcurrentRuns: 100 })
    .returning()
  return row!
}

async function addWindow(values: Partial<typeof maintenanceWindow.$inferInsert>) {
  const [row] = await t.ctx.db
    .insert(maintenanceWindow)
    .values({ name: `w-${randomUUID()}`, kind: 'one_off', startsAt: at(-60), endsAt: at(60), appliesTo: 'all', action: 'skip', ...values })
    .returning()
  return row!
}

const fires = (scheduleId: string) => t.ctx.db.select().from(scheduleFire).where(eq(scheduleFire.scheduleId, scheduleId)).orderBy(asc(scheduleFire.fireAt))
const runsOf = (scheduleId: string) => t.ctx.db.select().from(run).where(eq(run.requestedBy, scheduleId))

test('a fire inside a skip window covering its targets is skipped for maintenance and launches no run', async () => {
  const w = await addWindow({ appliesTo: { target_ids: [targetA] }, action: 'skip' })
  const s = await addSchedule()
  const result = await tickScheduler(ctx, opts)
  assert.equal(result.skipped, 1)
  assert.equal(result.fired, 0)
  const [f] = await fires(s.id)
  assert.equal(f!.status, 'skipped')
  assert.equal(f!.reason, 'maintenance')
  assert.deepEqual(f!.detail, { window_id: w.id, window_name: w.name })
  assert.equal(f!.runId, null)
  assert.equal((await runsOf(s.id)).length, 0)
})

test('a window for other targets does not block the fire', async () => {
  await addWindow({ appliesTo: { target_ids: [targetB] }, action: 'skip' })
  await addWindow({ appliesTo: { selector: 'tag:role=mw-b' }, action: 'skip' })
  const s = await addSchedule()
  assert.equal((await tickScheduler(ctx, opts)).fired, 1)
  const [f] = await fires(s.id)
  assert.equal(f!.status, 'fired')
  assert.equal((await runsOf(s.id)).length, 1)
})

test('a selector window covering the targets skips; a disabled window does not', async () => {
  await addWindow({ appliesTo: { selector: 'tag:role=mw-a' }, action: 'skip', enabled: false })
  const s1 = await addSchedule()
  await tickScheduler(ctx, opts)
  assert.equal((await fires(s1.id))[0]!.status, 'fired')
  await t.ctx.db.update(schedule).set({ enabled: false })
  await addWindow({ appliesTo: { selector: 'tag:role=mw-a' }, action: 'skip' })
  const s2 = await addSchedule()
  await tickScheduler(ctx, opts)
  assert.equal((await fires(s2.id))[0]!.reason, 'maintenance')
})

test('a defer window holds the fire until it ends, then launches it exactly once', async () => {
  const [start, end] = [at(0), at(30)]
  const w = await addWindow({ appliesTo: 'all', action: 'defer', endsAt: end })
  const s = await addSchedule()
  const first = await tickScheduler(ctx, opts)
  assert.equal(first.deferred, 1)
  let [f] = await fires(s.id)
  assert.equal(f!.status, 'deferred')
  assert.equal(f!.reason, 'maintenance')
  assert.deepEqual(f!.detail, { window_id: w.id, window_name: w.name, until: end.toISOString() })
  // Still inside the window: nothing launched.
  now = new Date(end.getTime() - 500)
  await tickScheduler(ctx, opts)
  assert.equal((await fires(s.id))[0]!.status, 'deferred')
  assert.equal((await runsOf(s.id)).length, 0)
  // The window has ended: the same fire row is launched, once, even with two ticks racing.
  now = end
  await Promise.all([tickScheduler(ctx, opts), tickScheduler(ctx, opts)])
  ;[f] = await fires(s.id)
  assert.equal(f!.status, 'fired')
  assert.equal(f!.fireAt.getTime(), start.getTime())
  assert.equal(f!.lagMs, 30_000)
  const runs = await runsOf(s.id)
  assert.equal(runs.length, 1)
  assert.equal(f!.runId, runs[0]!.id)
  await tickScheduler(ctx, opts)
  assert.equal((await runsOf(s.id)).length, 1)
})

test('a deferred fire launches within the misfire max lateness of its window’s end, and is missed after it', async () => {
  // The window lasts longer than the schedule's max lateness: the occurrence still runs at its end…
  let end = at(30)
  await addWindow({ appliesTo: 'all', action: 'defer', endsAt: end })
  const onTime = await addSchedule()
  await t.ctx.db.update(schedule).set({ misfireMaxLatenessSec: 20 }).where(eq(schedule.id, onTime.id))
  await tickScheduler(ctx, opts)
  assert.deepEqual((await fires(onTime.id)).map((f) => f.status), ['deferred'])
  now = new Date(end.getTime() + 19_000)
  await tickScheduler(ctx, opts)
  const [fired] = await fires(onTime.id)
  assert.equal(fired!.status, 'fired')
  assert.equal(fired!.lagMs, 49_000, 'lag still counts from the occurrence')
  // …but not when the scheduler reaches it more than the max lateness after the end (it was down).
  await t.ctx.db.update(schedule).set({ enabled: false })
  end = at(30)
  await addWindow({ appliesTo: 'all', action: 'defer', endsAt: end })
  const late = await addSchedule()
  await t.ctx.db.update(schedule).set({ misfireMaxLatenessSec: 20 }).where(eq(schedule.id, late.id))
  await tickScheduler(ctx, opts)
  assert.deepEqual((await fires(late.id)).map((f) => f.status), ['deferred'])
  now = new Date(end.getTime() + 21_000)
  const result = await tickScheduler(ctx, opts)
  assert.equal(result.missed, 1)
  const [missed] = await fires(late.id)
  assert.equal(missed!.status, 'missed')
  assert.equal(missed!.reason, 'misfire')
  assert.equal(missed!.runId, null)
  assert.equal((await runsOf(late.id)).length, 0)
})

/** A schedule whose first run failed `delaySec` ago, with retries left. */
async function failedOnce(retry: { retryCount: number; retryDelaySec: number }) {
  const s = await addSchedule()
  await t.ctx.db.update(schedule).set(retry).where(eq(schedule.id, s.id))
  await tickScheduler(ctx, opts)
  const [f] = await fires(s.id)
  assert.equal(f!.status, 'fired')
  await t.ctx.db.update(run).set({ status: 'failed', finishedAt: now }).where(eq(run.id, f!.runId!))
  // The schedule stays enabled (retries need it) but fires nothing more in this test.
  await t.ctx.db.update(schedule).set({ nextFireAt: null }).where(eq(schedule.id, s.id))
  return { s, f: f! }
}

test('a retry due inside a skip window is skipped for maintenance: recorded, no run, no further retries', async () => {
  const { s, f } = await failedOnce({ retryCount: 3, retryDelaySec: 10 })
  now = new Date(now.getTime() + 10_000)
  const w = await addWindow({ appliesTo: { target_ids: [targetA] }, action: 'skip', startsAt: at(-1), endsAt: at(60) })
  const result = await tickScheduler(ctx, opts)
  assert.equal(result.skipped, 1)
  let [row] = await fires(s.id)
  assert.equal(row!.status, 'skipped')
  assert.equal(row!.reason, 'maintenance')
  assert.deepEqual(row!.detail, { window_id: w.id, window_name: w.name, retry_attempt: 2 })
  assert.equal(row!.attempt, 1)
  assert.equal(row!.runId, f.runId, 'the fire still points at the failed run')
  assert.equal((await runsOf(s.id)).length, 1)
  now = new Date(now.getTime() + 120_000)
  await tickScheduler(ctx, opts)
  ;[row] = await fires(s.id)
  assert.equal(row!.status, 'skipped')
  assert.equal((await runsOf(s.id)).length, 1)
})

test('a retry due inside a defer window waits for its end, then runs as the next attempt', async () => {
  const { s, f } = await failedOnce({ retryCount: 2, retryDelaySec: 10 })
  now = new Date(now.getTime() + 10_000)
  const end = at(40)
  const w = await addWindow({ appliesTo: 'all', action: 'defer', startsAt: at(-1), endsAt: end })
  assert.equal((await tickScheduler(ctx, opts)).deferred, 1)
  let [row] = await fires(s.id)
  assert.equal(row!.status, 'deferred')
  assert.equal(row!.reason, 'maintenance')
  assert.deepEqual(row!.detail, { window_id: w.id, window_name: w.name, until: end.toISOString(), retry_attempt: 2, retry_of: f.runId })
  assert.equal((await runsOf(s.id)).length, 1)
  now = new Date(end.getTime() - 1)
  await tickScheduler(ctx, opts)
  assert.equal((await runsOf(s.id)).length, 1, 'not before the window ends')
  now = end
  await Promise.all([tickScheduler(ctx, opts), tickScheduler(ctx, opts)])
  ;[row] = await fires(s.id)
  assert.equal(row!.status, 'fired')
  assert.equal(row!.attempt, 2)
  assert.notEqual(row!.runId, f.runId)
  assert.deepEqual((row!.detail as { previous_runs: string[] }).previous_runs, [f.runId])
  assert.equal((row!.detail as { retry_of?: string }).retry_of, undefined)
  assert.equal(row!.lagMs, f.lagMs, 'the occurrence’s lag is the first launch’s')
  const runs = await runsOf(s.id)
  assert.equal(runs.length, 2)
  const retry = runs.find((r) => r.id === row!.runId)!
  assert.equal(retry.retryOf, f.runId)
  // It failed too: the last attempt is retried like any other, window or not.
  await t.ctx.db.update(run).set({ status: 'failed', finishedAt: now }).where(eq(run.id, retry.id))
  now = new Date(now.getTime() + 20_000)
  await tickScheduler(ctx, opts)
  ;[row] = await fires(s.id)
  assert.equal(row!.attempt, 3)
  assert.deepEqual((row!.detail as { previous_runs: string[] }).previous_runs, [f.runId, retry.id])
})
