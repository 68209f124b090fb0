import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { and, eq } from 'drizzle-orm'
import { Hono } from 'hono'
import { call, createTestUser, type TestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { authenticate } from '../auth/middleware.ts'
import type { AppEnv } from '../context.ts'
import { onError } from '../http/errors.ts'
import { createJob, removeJob } from '../jobs/service.ts'
import { run, stepRun, type RunStatus } from '../runs/runs.sql.ts'
import { dashboardRoutes } from './routes.ts'

let t: TestContext
let app: Hono<AppEnv>
let viewer: TestUser
const HOUR = 3_600_000

before(async () => {
  t = await createTestContext()
  // The routes as app.ts mounts them (/api/v1/dashboard), behind the same authentication.
  app = new Hono<AppEnv>()
  app.use(async (c, next) => {
    c.set('ctx', t.ctx)
    c.set('log', t.ctx.log)
    await next()
  })
  app.use('/api/*', authenticate())
  app.route('/api/v1/dashboard', dashboardRoutes)
  app.onError(onError)
  viewer = await createTestUser(t.ctx, 'viewer')
})
after(() => t?.close())

async function newJob(name: string): Promise<string> {
  return (await createJob(t.ctx, undefined, { name, steps: [{ type: 'wait', seconds: 1 }] })).id
}

/** A run created `hoursAgo`, with `lanes` step runs (status, attempt) as given. */
async function seedRun(jobId: string, status: RunStatus, hoursAgo: number, lanes: { status: RunStatus; attempt?: number; index?: number; target?: string | null }[] = []): Promise<string> {
  const id = randomUUID()
  const createdAt = new Date(Date.now() - hoursAgo * HOUR)
  const final = !['queued', 'running'].includes(status)
  await t.ctx.db.insert(run).values({
    id,
    jobId,
    jobVersion: 1,
    jobName: `job ${jobId.slice(0, 4)}`,
    status,
    parameters: {},
    trigger: 'manual',
    createdAt,
    startedAt: status === 'queued' ? null : createdAt,
    finishedAt: final ? new Date(createdAt.getTime() + 1000) : null,
    error: status === 'failed' ? 'step http.get failed: connection refused' : null,
  })
  for (const lane of lanes) {
    await t.ctx.db.insert(stepRun).values({
      id: randomUUID(),
      runId: id,
      stepIndex: lane.index ?? 0,
      stepId: `step${lane.index ?? 0}`,
      stepType: 'wait',
      targetId: lane.target ?? null,
      attempt: lane.attempt ?? 1,
      status: lane.status,
      availableAt: createdAt,
      transport: 'controller',
    })
  }
  return id
}

test('run stats count the runs of the window by status and by hour; older runs are left out', async () => {
  const j = await newJob('stats')
  await seedRun(j, 'succeeded', 0.5)
  await seedRun(j, 'succeeded', 2.5)
  await seedRun(j, 'failed', 2.2)
  await seedRun(j, 'timed_out', 23.5)
  await seedRun(j, 'cancelled', 5)
  await seedRun(j, 'succeeded', 30)
  const res = await call(app, 'GET', '/api/v1/dashboard/run-stats', { token: viewer.token })
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.equal(res.body.hours, 24)
  assert.equal(res.body.total, 5)
  assert.equal(res.body.by_status.succeeded, 2)
  assert.equal(res.body.by_status.failed, 1)
  assert.equal(res.body.by_status.timed_out, 1)
  assert.equal(res.body.by_status.cancelled, 1)
  assert.equal(res.body.by_status.queued, 0, 'every status is present')
  assert.equal(res.body.hourly.length, 24)
  const newest = res.body.hourly.at(-1)
  assert.deepEqual({ ...newest, start: undefined }, { start: undefined, total: 1, succeeded: 1, failed: 0, other: 0 })
  const twoHoursAgo = res.body.hourly.at(-3)
  assert.equal(twoHoursAgo.succeeded, 1)
  assert.equal(twoHoursAgo.failed, 1)
  assert.equal(res.body.hourly[0].failed, 1, 'timed_out counts as failed, in the oldest bucket')
  assert.equal(res.body.hourly.at(-6).other, 1, 'cancelled is neither success nor failure')
  assert.equal(new Date(res.body.until).getTime() - new Date(res.body.since).getTime(), 24 * HOUR)

  const week = await call(app, 'GET', '/api/v1/dashboard/run-stats?hours=48', { token: viewer.token })
  assert.equal(week.body.total, 6)
  const bad = await call(app, 'GET', '/api/v1/dashboard/run-stats?hours=0', { token: viewer.token })
  assert.equal(bad.status, 400)
  assert.equal(bad.body.error.code, 'VALIDATION')
})

test('active runs: running then queued, each with steps done / total from the latest attempt of every lane', async () => {
  const j = await newJob('active')
  const targetA = randomUUID()
  const targetB = randomUUID()
  const busy = await seedRun(j, 'running', 0.1, [
    { status: 'succeeded', index: 0, target: targetA },
    { status: 'succeeded', index: 0, target: targetB },
    { status: 'failed', index: 1, target: targetA, attempt: 1 },
    { status: 'running', index: 1, target: targetA, attempt: 2 },
    { status: 'failed', index: 1, target: targetB },
    { status: 'queued', index: 2, target: targetA },
    { status: 'queued', index: 2, target: targetB },
  ])
  const waiting = await seedRun(j, 'queued', 0.05, [{ status: 'queued' }])
  await seedRun(j, 'succeeded', 0.2, [{ status: 'succeeded' }])
  const res = await call(app, 'GET', '/api/v1/dashboard/active-runs', { token: viewer.token })
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.equal(res.body.running, 1)
  assert.equal(res.body.queued, 1)
  assert.deepEqual(
    res.body.items.map((r: { id: string }) => r.id),
    [busy, waiting],
  )
  const [first, second] = res.body.items
  assert.deepEqual([first.steps_total, first.steps_done, first.steps_failed, first.steps_running], [6, 3, 1, 1], 'a retried lane counts once, by its latest attempt')
  assert.deepEqual([second.status, second.steps_total, second.steps_done], ['queued', 1, 0])
  const one = await call(app, 'GET', '/api/v1/dashboard/active-runs?limit=1', { token: viewer.token })
  assert.equal(one.body.items.length, 1)
  assert.equal(one.body.queued, 1, 'counts are not limited')
})

test('failing jobs: those whose latest finished run failed; a later success, a deleted job or a skipped run do not count', async () => {
  const broken = await newJob('broken')
  await seedRun(broken, 'succeeded', 3)
  const lastFailure = await seedRun(broken, 'agent_lost', 1)
  await seedRun(broken, 'running', 0.1)
  const recovered = await newJob('recovered')
  await seedRun(recovered, 'failed', 3)
  await seedRun(recovered, 'succeeded', 1)
  const gone = await newJob('gone')
  await seedRun(gone, 'failed', 1)
  await removeJob(t.ctx, gone)
  const skippedAfter = await newJob('skipped after failure')
  const failed = await seedRun(skippedAfter, 'failed', 2, [
    { status: 'succeeded', index: 0 },
    { status: 'failed', index: 1 },
  ])
  await t.ctx.db.update(stepRun).set({ error: 'connect ECONNREFUSED 127.0.0.1:1' }).where(and(eq(stepRun.runId, failed), eq(stepRun.stepIndex, 1)))
  await t.ctx.db.update(run).set({ error: null }).where(eq(run.id, failed))
  await seedRun(skippedAfter, 'skipped', 0.5)

  const res = await call(app, 'GET', '/api/v1/dashboard/failing-jobs', { token: viewer.token })
  assert.equal(res.status, 200, JSON.stringify(res.body))
  const byJob = new Map(res.body.items.map((i: { job_id: string }) => [i.job_id, i]))
  assert.ok(!byJob.has(recovered))
  assert.ok(!byJob.has(gone))
  assert.deepEqual(byJob.get(broken), {
    job_id: broken,
    job_name: 'broken',
    run_id: lastFailure,
    status: 'agent_lost',
    finished_at: (byJob.get(broken) as { finished_at: string }).finished_at,
    error: null,
  })
  assert.equal((byJob.get(skippedAfter) as { run_id: string }).run_id, failed)
  assert.equal((byJob.get(skippedAfter) as { error: string }).error, 'connect ECONNREFUSED 127.0.0.1:1', "a step's failure explains a run without its own error")
  assert.equal(res.body.items[0].job_id, broken, 'the most recent failure first')
  assert.ok(res.body.total >= 2)
  const limited = await call(app, 'GET', '/api/v1/dashboard/failing-jobs?limit=1', { token: viewer.token })
  assert.equal(limited.body.items.length, 1)
  assert.equal(limited.body.total, res.body.total)
})

test('the dashboard needs a signed-in user', async () => {
  for (const path of ['run-stats', 'active-runs', 'failing-jobs']) {
    const res = await call(app, 'GET', `/api/v1/dashboard/${path}`)
    assert.equal(res.status, 401, path)
    assert.equal(res.body.error.code, 'UNAUTHENTICATED')
  }
})
