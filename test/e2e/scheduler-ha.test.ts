import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { eq, inArray, sql } from 'drizzle-orm'
import { nextFireTimes } from '../../controller/src/scheduler/cron.ts'
import { schedule, scheduleFire, schedulerState } from '../../controller/src/scheduler/scheduler.sql.ts'
import { run, FINAL_RUN_STATUSES, stepRun } from '../../controller/src/runs/runs.sql.ts'
import { waitUntil } from '../harness/agents.ts'
import { createTestContext, type TestContext } from '../harness/context.ts'
import { startControllerProcess, tempDataDir, type ControllerProcess } from '../harness/controller-process.ts'
import { testBackend } from '../harness/db.ts'
import { RunsApi } from '../harness/runs.ts'

// Killing the leader needs a database that outlives it and the other controllers share: Postgres.
const skip = (await testBackend()) !== 'postgres' ? 'needs Postgres' : false

const SCHEDULES = 20
const CRON = '*/2 * * * * *'
const FIRING_MS = 40_000

let t: TestContext
const controllers: ControllerProcess[] = []
const masterKey = randomBytes(32)

before(async () => {
  if (skip) return
  t = await createTestContext({ masterKey })
  const env = {
    DATABASE_URL: t.testDb.url!,
    OPSC_MASTER_KEY: masterKey.toString('base64'),
    OPSC_WORK_LEASE_MS: '2000',
    OPSC_SCHEDULER_TICK_MS: '500',
    OPSC_SCHEDULER_LEADER_RETRY_MS: '1000',
  }
  // One at a time: three cold starts at once on two cores would only slow each other.
  for (let i = 0; i < 3; i++) controllers.push(await startControllerProcess({ dataDir: tempDataDir(), env }))
})
after(async () => {
  for (const c of controllers) await c.stop('SIGKILL')
  await t?.close()
})

const leaderNode = async () => (await t.ctx.db.select().from(schedulerState))[0]!.leaderNode

/** The live controller process that logged leading as this node. */
function processOf(node: string | null): ControllerProcess | undefined {
  return controllers.find((c) => c.proc.exitCode === null && c.proc.signalCode === null && c.logs.some((l) => l.msg === 'scheduler.leading' && l.node === node))
}

async function killLeader(): Promise<void> {
  let leader: ControllerProcess | undefined
  await waitUntil(async () => (leader = processOf(await leaderNode())) !== undefined, 20_000, 'a live leader')
  const dead = await leaderNode()
  await leader!.stop('SIGKILL')
  await waitUntil(async () => {
    const node = await leaderNode()
    return node !== dead && processOf(node) !== undefined
  }, 20_000, 'another controller takes the leadership over')
}

test('3 controllers, the leader killed twice: every occurrence recorded once, every fired one run once, no gaps', { skip, timeout: 180_000 }, async () => {
  const api = await RunsApi.as(t.ctx)
  const jobId = await api.createJob({ name: 'scheduled no-op', steps: [{ id: 'w', type: 'wait', seconds: 0.001 }] })
  const first = nextFireTimes({ cron: CRON, timezone: 'UTC' }, new Date(Date.now() + 1000), 1)[0]!
  const rows = await t.ctx.db
    .insert(schedule)
    .values(
      Array.from({ length: SCHEDULES }, (_, i) => ({
        name: `ha-${i}`,
        jobId,
        cron: CRON,
        nextFireAt: first,
        // Half catch up every occurrence, half collapse a take-over gap into one run.
        misfirePolicy: i % 2 ? ('run_all' as const) : ('run_once' as const),
        concurrencyPolicy: 'allow' as const,
        maxConcurrentRuns: 10,
      })),
    )
    .returning({ id: schedule.id, misfirePolicy: schedule.misfirePolicy })
  const ids = rows.map((r) => r.id)
  const started = Date.now()

  await new Promise((r) => setTimeout(r, FIRING_MS / 4))
  await killLeader()
  await new Promise((r) => setTimeout(r, Math.max(0, started + FIRING_MS / 2 - Date.now())))
  await killLeader()
  await new Promise((r) => setTimeout(r, Math.max(0, started + FIRING_MS - Date.now())))
  await t.ctx.db.update(schedule).set({ enabled: false }).where(inArray(schedule.id, ids))
  // A tick that read the schedules before they were disabled may still be finishing.
  await new Promise((r) => setTimeout(r, 2_000))

  await waitUntil(
    async () => {
      const open = await t.ctx.db.select({ n: sql<number>`count(*)::int` }).from(run).where(sql`${run.trigger} = 'schedule' and ${run.status} in ('queued', 'running')`)
      return Number(open[0]!.n) === 0
    },
    60_000,
    'every scheduled run to end',
  )
  const fires = await t.ctx.db.select().from(scheduleFire).where(inArray(scheduleFire.scheduleId, ids))
  const fired = fires.filter((f) => f.status === 'fired')
  const runs = await t.ctx.db.select({ id: run.id, status: run.status }).from(run).where(eq(run.trigger, 'schedule'))

  // Exactly once: one row per (schedule, fire time); one run per fired row and no run without one.
  const keys = new Set(fires.map((f) => `${f.scheduleId}@${f.fireAt.toISOString()}`))
  assert.equal(keys.size, fires.length, 'one row per (schedule, fire time)')
  assert.ok(fired.every((f) => f.runId), 'every fired occurrence has its run')
  assert.equal(new Set(fired.map((f) => f.runId)).size, fired.length, 'no run shared by two occurrences')
  assert.equal(runs.length, fired.length, 'no scheduled run launched without its fired row (no double fire)')
  const notFired = fires.filter((f) => f.status !== 'fired')
  assert.ok(notFired.every((f) => f.status === 'missed' && (f.reason === 'collapsed' || f.reason === 'misfire')), `only misfire-policy entries besides fires: ${JSON.stringify(notFired.slice(0, 5))}`)

  // No gaps: from each schedule's first to its last recorded occurrence, every one is recorded.
  const end = new Date(Math.max(...fires.map((f) => f.fireAt.getTime())))
  for (const s of rows) {
    const mine = fires.filter((f) => f.scheduleId === s.id).map((f) => f.fireAt.getTime())
    const expected = [first.getTime(), ...nextFireTimes({ cron: CRON, timezone: 'UTC' }, first, 100).map((d) => d.getTime())].filter((at) => at <= Math.max(...mine))
    assert.deepEqual(mine.sort((a, b) => a - b), expected, `every occurrence of ${s.id} recorded`)
    assert.ok(mine.length >= FIRING_MS / 2000 - 3, `${s.id} fired through the test (${mine.length} occurrences)`)
    if (s.misfirePolicy === 'run_all') assert.ok(fires.filter((f) => f.scheduleId === s.id).every((f) => f.status === 'fired'), 'run_all catches every occurrence up')
  }
  assert.ok(end.getTime() - first.getTime() >= FIRING_MS - 6_000, 'firing went on after both kills')

  // Every run ran; a step the killed controller held may have been interrupted by the take-over.
  assert.ok(runs.every((r) => FINAL_RUN_STATUSES.includes(r.status)))
  const byStatus: Record<string, number> = {}
  for (const r of runs) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1
  // A run whose step was interrupted ends `failed`: allowed only when that is the reason.
  const failed = runs.filter((r) => r.status !== 'succeeded').map((r) => r.id)
  const failedSteps = failed.length ? await t.ctx.db.select({ runId: stepRun.runId, status: stepRun.status }).from(stepRun).where(inArray(stepRun.runId, failed)) : []
  for (const id of failed) {
    const statuses = failedSteps.filter((s) => s.runId === id && s.status !== 'succeeded').map((s) => s.status)
    assert.ok(statuses.length > 0 && statuses.every((st) => st === 'interrupted'), `run ${id} did not succeed for another reason than a take-over: ${JSON.stringify(statuses)} (${JSON.stringify(byStatus)})`)
  }
  console.log(`# ${fires.length} occurrences: ${fired.length} fired, ${notFired.length} missed (run_once collapsing a take-over gap); runs: ${JSON.stringify(byStatus)}`)
})
