import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { eq, inArray } from 'drizzle-orm'
import { waitUntil } from '../../../test/harness/agents.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createJob } from '../jobs/service.ts'
import { RunEngine } from '../runs/engine.ts'
import { run, stepRun } from '../runs/runs.sql.ts'
import { createTarget } from '../targets/service.ts'
import { scheduleFire } from './scheduler.sql.ts'
import { CreateScheduleInput } from './schedule-input.ts'
import { createSchedule } from './service.ts'
import { Scheduler } from './tick.ts'

// The acceptance case with the real scheduler loop and run engine on the real clock: schedules
// firing every second into jobs whose runs outlast a second. `queue` keeps one schedule's runs
// apart; `lock: target` keeps runs of two different schedules apart on the target they share.

let t: TestContext
let engine: RunEngine
let scheduler: Scheduler | undefined

before(async () => {
  t = await createTestContext()
  engine = new RunEngine(t.ctx, { leaseMs: 5000, localCapacity: 16, agentCapacity: 16 })
  t.ctx.runEngine = engine
  await engine.start()
})
after(async () => {
  await scheduler?.stop()
  await engine.stop()
  await t?.close()
})

const every = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Each run's [first step start, last step end] (on one target, or overall). */
async function spans(runIds: string[]) {
  const rows = await t.ctx.db.select().from(stepRun).where(inArray(stepRun.runId, runIds))
  const byRun = new Map<string, { start: number; end: number }>()
  for (const s of rows) {
    const prev = byRun.get(s.runId)
    const start = s.startedAt!.getTime()
    const end = s.finishedAt!.getTime()
    byRun.set(s.runId, { start: Math.min(prev?.start ?? start, start), end: Math.max(prev?.end ?? end, end) })
  }
  return [...byRun.values()].sort((a, b) => a.start - b.start)
}

const disjoint = (list: { start: number; end: number }[]) => list.every((s, i) => i === 0 || s.start >= list[i - 1]!.end)

test('`queue` and `lock: target` serialize scheduled runs firing faster than they finish', async () => {
  const host = await createTarget(t.ctx, {
    name: 'serial-host',
    address: '127.0.0.1',
    os_type: 'linux',
    enabled: true,
    tags: { serial: 'yes' },
    connection: { type: 'ssh', port: 22, credential_id: null, host_key_policy: 'tofu', jump: [] },
  })
  const steps = [{ id: 'work', type: 'wait', seconds: 1.3 }]
  const locked = await createJob(t.ctx, undefined, { name: 'patch host', lock: 'target', targets: 'tag:serial=yes', steps })
  const alsoLocked = await createJob(t.ctx, undefined, { name: 'reboot host', lock: 'target', targets: 'tag:serial=yes', steps })
  const queued = await createJob(t.ctx, undefined, { name: 'report', steps })
  const schedule = (name: string, jobId: string, extra: object = {}) =>
    createSchedule(t.ctx, undefined, CreateScheduleInput.parse({ name, job_id: jobId, cron: '* * * * * *', ...extra }))
  const a = await schedule('patch every second', locked.id, { max_concurrent_runs: 20 })
  const b = await schedule('reboot every second', alsoLocked.id, { max_concurrent_runs: 20 })
  const q = await schedule('report every second', queued.id, { concurrency_policy: 'queue', max_concurrent_runs: 1 })

  scheduler = new Scheduler(t.ctx, { tickMs: 200, leaderRetryMs: 200, graceMs: 5000, batchSize: 100, parallel: 4 })
  scheduler.start()
  await every(4_500)
  await scheduler.stop()
  scheduler = undefined

  const fires = await t.ctx.db.select().from(scheduleFire).where(inArray(scheduleFire.scheduleId, [a.id, b.id, q.id]))
  const runsOf = (id: string) => fires.filter((f) => f.scheduleId === id && f.runId).map((f) => f.runId!)
  assert.ok(runsOf(a.id).length >= 3 && runsOf(b.id).length >= 3, `both locked schedules fired (${runsOf(a.id).length}, ${runsOf(b.id).length})`)
  // The queued schedule launched one run at a time; the rest of its occurrences wait as queued fires.
  assert.ok(fires.some((f) => f.scheduleId === q.id && f.status === 'queued'), 'queued occurrences are recorded')

  const launched = fires.filter((f) => f.runId).map((f) => f.runId!)
  // Nothing new is launched now, so every run ends (queued fires stay queued: the scheduler is stopped).
  await waitUntil(async () => (await t.ctx.db.select({ s: run.status }).from(run).where(inArray(run.id, launched))).every((r) => !['queued', 'running'].includes(r.s)), 60_000, 'the launched runs to end')
  const statuses = await t.ctx.db.select({ s: run.status }).from(run).where(inArray(run.id, launched))
  assert.deepEqual([...new Set(statuses.map((r) => r.s))], ['succeeded'])

  const onHost = await spans([...runsOf(a.id), ...runsOf(b.id)])
  assert.equal(onHost.length, runsOf(a.id).length + runsOf(b.id).length)
  assert.ok(disjoint(onHost), 'two locked runs were on serial-host at once')
  assert.ok(disjoint(await spans(runsOf(q.id))), 'two runs of the queue schedule overlapped')
  // The locked runs could not all run in the 4.5 s they were fired in: some waited, and said so while they did.
  assert.ok(onHost.at(-1)!.end - onHost[0]!.start >= (onHost.length - 1) * 1300)
  const [hostRow] = await t.ctx.db.select().from(stepRun).where(eq(stepRun.targetId, host.id)).limit(1)
  assert.ok(hostRow)
})
