import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { eq, sql } from 'drizzle-orm'
import { loadConfig } from '../config.ts'
import { rowsOf } from '../db/migrate.ts'
import { createJob } from '../jobs/service.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { pruneRuns } from './retention.ts'
import { run, stepOutput, stepRun } from './runs.sql.ts'

let t: TestContext
let jobId: string
before(async () => {
  t = await createTestContext()
  jobId = (await createJob(t.ctx, undefined, { name: 'retained', steps: [{ type: 'wait', seconds: 1 }] })).id
})
after(() => t?.close())

const DAY = 86_400_000

/** A finished (or active) run with one step run and `bytes` of output, finished `daysAgo`. */
async function seedRun(daysAgo: number, bytes: number, status: 'succeeded' | 'running' = 'succeeded'): Promise<string> {
  const id = randomUUID()
  const finishedAt = status === 'running' ? null : new Date(Date.now() - daysAgo * DAY)
  await t.ctx.db.insert(run).values({ id, jobId, jobVersion: 1, jobName: 'retained', status, parameters: {}, trigger: 'manual', createdAt: new Date(Date.now() - daysAgo * DAY - 1000), finishedAt })
  const stepRunId = randomUUID()
  await t.ctx.db.insert(stepRun).values({ id: stepRunId, runId: id, stepIndex: 0, stepId: 'step1', stepType: 'wait', status, availableAt: new Date(), transport: 'controller', outputBytes: bytes })
  await t.ctx.db.insert(stepOutput).values({ stepRunId, seq: 1, stream: 1, data: Buffer.alloc(bytes, 120) })
  return id
}

const outputRows = async (runId: string) =>
  Number(rowsOf<{ n: number }>(await t.ctx.db.execute(sql`select count(*)::int as n from step_output o join step_run s on s.id = o.step_run_id where s.run_id = ${runId}`))[0]!.n)
const exists = async (runId: string) => (await t.ctx.db.select({ id: run.id }).from(run).where(eq(run.id, runId))).length === 1

test('old runs go entirely, older output goes first, active runs stay, the size limit removes the oldest output', async () => {
  const ancient = await seedRun(100, 10)
  const old = await seedRun(40, 10)
  const recentBig = await seedRun(2, 5000)
  const recentSmall = await seedRun(1, 100)
  const active = await seedRun(200, 10, 'running')
  t.ctx.config = loadConfig({ OPSC_DATA_DIR: '/nonexistent', OPSC_RUN_RETENTION_DAYS: '90', OPSC_OUTPUT_RETENTION_DAYS: '30', OPSC_OUTPUT_RETENTION_BYTES: '1000' })
  const report = await pruneRuns(t.ctx)
  assert.equal(await exists(ancient), false, 'a run past the run retention is deleted')
  assert.equal(await exists(old), true)
  assert.equal(await outputRows(old), 0, 'output past the output retention is deleted')
  assert.ok((await t.ctx.db.select().from(run).where(eq(run.id, old)))[0]!.outputPrunedAt, 'and the run says so')
  assert.equal(await outputRows(recentBig), 0, 'over the size limit: the oldest output goes')
  assert.equal(await outputRows(recentSmall), 1, 'until the rest fits')
  assert.equal(await exists(active), true, 'an active run is never touched')
  assert.equal(await outputRows(active), 1)
  assert.deepEqual(report, { runsDeleted: 1, outputsPruned: 2 })
  assert.deepEqual(await pruneRuns(t.ctx), { runsDeleted: 0, outputsPruned: 0 }, 'a second pass has nothing to do')
})
