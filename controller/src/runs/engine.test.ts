import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { eq } from 'drizzle-orm'
import { waitUntil } from '../../../test/harness/agents.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createJob } from '../jobs/service.ts'
import { RunEngine } from './engine.ts'
import { launchRun } from './launch.ts'
import { run, stepRun } from './runs.sql.ts'

// What a controller finds when another one died mid-run: its leased step runs and runs whose
// next advance never happened. The run is launched without an engine, then put in that state.

let t: TestContext
let engine: RunEngine | undefined
before(async () => {
  t = await createTestContext()
})
after(async () => {
  await engine?.stop()
  await t?.close()
})

const startEngine = async () => {
  engine = new RunEngine(t.ctx, { leaseMs: 1000, localCapacity: 8, agentCapacity: 8 })
  t.ctx.runEngine = engine
  await engine.start()
}
const stepsOf = (runId: string) => t.ctx.db.select().from(stepRun).where(eq(stepRun.runId, runId)).orderBy(stepRun.stepIndex, stepRun.attempt)
const statusOf = async (runId: string) => (await t.ctx.db.select({ status: run.status }).from(run).where(eq(run.id, runId)))[0]!.status

test("a step that ran inside a dead controller ends interrupted, its retry runs, and a stalled run is moved on", async () => {
  const retried = await createJob(t.ctx, undefined, { name: 'retried after a crash', steps: [{ id: 'nap', type: 'wait', seconds: 0.1, retries: 1, retry_backoff_sec: 0 }] })
  const stalled = await createJob(t.ctx, undefined, { name: 'stalled', steps: [{ id: 'one', type: 'wait', seconds: 0.1 }, { id: 'two', type: 'wait', seconds: 0.1 }] })
  const crashed = (await launchRun(t.ctx, undefined, retried.id, { parameters: {} }, { trigger: 'manual' })).runId
  const stuck = (await launchRun(t.ctx, undefined, stalled.id, { parameters: {} }, { trigger: 'manual' })).runId
  // A controller that is gone claimed the first run's step, and its lease has run out.
  await t.ctx.db
    .update(stepRun)
    .set({ status: 'running', claimedBy: randomUUID(), leaseUntil: new Date(Date.now() - 1000), startedAt: new Date() })
    .where(eq(stepRun.runId, crashed))
  // The second run's first step ended, but the controller died before it advanced the run.
  const [first] = await stepsOf(stuck)
  await t.ctx.db.update(stepRun).set({ status: 'succeeded', ready: false, finishedAt: new Date() }).where(eq(stepRun.id, first!.id))

  await startEngine()
  await waitUntil(async () => (await statusOf(crashed)) === 'succeeded' && (await statusOf(stuck)) === 'succeeded', 20_000, 'both runs to finish')
  const attempts = await stepsOf(crashed)
  assert.deepEqual(attempts.map((s) => [s.attempt, s.status]), [[1, 'interrupted'], [2, 'succeeded']])
  assert.match(attempts[0]!.error ?? '', /controller running this step stopped/)
  assert.deepEqual((await stepsOf(stuck)).map((s) => [s.stepId, s.attempt, s.status]), [['one', 1, 'succeeded'], ['two', 1, 'succeeded']])
})
