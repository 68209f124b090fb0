import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { and, eq, sql } from 'drizzle-orm'
import { waitUntil } from '../../../test/harness/agents.ts'
import { errorPaths } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { RunsApi } from '../../../test/harness/runs.ts'
import { auditLog } from '../audit/audit.sql.ts'
import { openSecret } from '../crypto/secret-box.ts'
import type { Db } from '../db/client.ts'
import { advanceRun } from '../runs/coordinator.ts'
import { RunEngine } from '../runs/engine.ts'
import { launchRun } from '../runs/launch.ts'
import { RUN_STATUSES, run, runParamsAad, stepRun, type RunStatus } from '../runs/runs.sql.ts'
import { dependencyFire, jobDependency } from './dependencies.sql.ts'
import { matchesOutcome, triggerDependents } from './dependencies.ts'
import { jobVersion } from './jobs.sql.ts'

let t: TestContext
let engine: RunEngine
let api: RunsApi
let viewer: RunsApi
let server: Server
let base: string
let seq = 0

before(async () => {
  server = createServer((req, res) => void res.writeHead(req.url === '/fail' ? 500 : 200).end('ok\n'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t = await createTestContext()
  engine = new RunEngine(t.ctx, { leaseMs: 5000, localCapacity: 16, agentCapacity: 16 })
  t.ctx.runEngine = engine
  await engine.start()
  api = await RunsApi.as(t.ctx, 'operator')
  viewer = await RunsApi.as(t.ctx, 'viewer')
})
after(async () => {
  await engine?.stop()
  await t?.close()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

const unique = (name: string) => `${name}-${++seq}`
const ok = { type: 'wait', seconds: 0.01 }
const failing = () => ({ type: 'http.get', url: `${base}/fail` })
const job = (name: string, extra: Record<string, unknown> = {}) => ({ name, steps: [ok], ...extra })

async function getJob(id: string) {
  const res = await api.call('GET', `/api/v1/jobs/${id}`)
  assert.equal(res.status, 200, JSON.stringify(res.body))
  return res.body
}

async function put(id: string, changes: Record<string, unknown>) {
  const current = await getJob(id)
  const { id: _i, version: _v, latest_version: _l, created_at: _c, updated_at: _u, created_by: _cb, updated_by: _ub, ...definition } = current
  return api.call('PUT', `/api/v1/jobs/${id}`, { ...definition, ...changes })
}

const edges = async () =>
  (await t.ctx.db.select({ job: jobDependency.jobId, upstream: jobDependency.upstreamJobId }).from(jobDependency)).map((e) => `${e.upstream}>${e.job}`).sort()

const runRow = async (id: string) => (await t.ctx.db.select().from(run).where(eq(run.id, id)))[0]!

/** What the upstream run's end triggered: written by the coordinator in the transaction that ended it. */
const dependantsOf = (upstreamRunId: string) => t.ctx.db.select().from(dependencyFire).where(eq(dependencyFire.upstreamRunId, upstreamRunId))

/** Runs the job to its end and returns the upstream run and the fires of its end. */
async function runToEnd(jobId: string, request: unknown = {}) {
  const runId = await api.run(jobId, request)
  const done = await api.waitForRun(runId, 30_000)
  return { run: done, fires: await dependantsOf(runId) }
}

describe('saving triggered_by', () => {
  test('resolves upstream names (any case) and ids, stores ids, and lists both directions', async () => {
    const build = await api.createJob(job(unique('Build')))
    const buildName = (await getJob(build)).name
    const test_ = await api.createJob(job(unique('test')))
    const deploy = await api.createJob(job(unique('deploy'), { triggered_by: [{ job: buildName.toUpperCase() }, { job: test_, on: 'any' }] }))
    const stored = await getJob(deploy)
    assert.deepEqual(
      stored.triggered_by.map((x: any) => [x.job, x.on, x.pass_parameters]),
      [
        [build, 'success', false],
        [test_, 'any', false],
      ],
    )
    const deps = await viewer.call('GET', `/api/v1/jobs/${deploy}/dependencies`)
    assert.equal(deps.status, 200)
    assert.deepEqual(deps.body.downstream, [])
    assert.deepEqual(
      deps.body.upstream.map((u: any) => [u.job_id, u.on]).sort(),
      [
        [build, 'success'],
        [test_, 'any'],
      ].sort(),
    )
    const up = await viewer.call('GET', `/api/v1/jobs/${build}/dependencies`)
    assert.deepEqual(up.body, { upstream: [], downstream: [{ job_id: deploy, job_name: stored.name, on: 'success' }] })
    // Saving the stored form again (ids) keeps the graph.
    assert.equal((await put(deploy, { description: 'again' })).status, 200)
    assert.equal((await viewer.call('GET', `/api/v1/jobs/${build}/dependencies`)).body.downstream.length, 1)
    assert.equal((await viewer.call('GET', `/api/v1/jobs/not-a-job/dependencies`)).status, 404)
  })

  test('an unknown upstream, the job itself or a job listed twice is a 400 naming the field; nothing is stored', async () => {
    const before = await edges()
    const name = unique('orphan')
    const unknown = await api.call('POST', '/api/v1/jobs', job(name, { triggered_by: [{ job: 'no-such-job' }] }))
    assert.equal(unknown.status, 400, JSON.stringify(unknown.body))
    assert.deepEqual(errorPaths(unknown.body), ['triggered_by[0].job'])
    assert.match(unknown.body.error.message, /triggered_by\[0\]\.job: no job "no-such-job"/)
    assert.equal((await api.call('GET', `/api/v1/jobs?q=${name}`)).body.items.length, 0)

    const a = await api.createJob(job(unique('self')))
    const self = await put(a, { triggered_by: [{ job: (await getJob(a)).name }] })
    assert.equal(self.status, 400)
    assert.deepEqual(errorPaths(self.body), ['triggered_by[0].job'])
    assert.match(self.body.error.message, /cycle/)
    const twice = await api.createJob(job(unique('up')))
    const dup = await api.call('POST', '/api/v1/jobs', job(unique('dup'), { triggered_by: [{ job: twice }, { job: twice, on: 'failure' }] }))
    assert.equal(dup.status, 400)
    assert.deepEqual(errorPaths(dup.body), ['triggered_by[1].job'])
    assert.equal((await getJob(a)).version, 1)
    assert.deepEqual(await edges(), before)
  })

  test('cycles of two and three jobs are refused with the path by name; stored data unchanged', async () => {
    const build = await api.createJob(job('build'))
    const deploy = await api.createJob(job('deploy', { triggered_by: [{ job: 'build' }] }))
    const before = await edges()
    const two = await put(build, { triggered_by: [{ job: 'deploy', on: 'failure' }] })
    assert.equal(two.status, 400)
    assert.deepEqual(errorPaths(two.body), ['triggered_by[0].job'])
    assert.match(two.body.error.message, /triggered_by\[0\]\.job: would make a cycle: build → deploy → build/)
    assert.equal((await getJob(build)).version, 1)
    assert.deepEqual((await getJob(build)).triggered_by, [])
    assert.deepEqual(await edges(), before)

    const a = await api.createJob(job('c-a'))
    const b = await api.createJob(job('c-b', { triggered_by: [{ job: 'c-a' }] }))
    await api.createJob(job('c-c', { triggered_by: [{ job: 'c-b', on: 'any' }] }))
    const three = await put(a, { triggered_by: [{ job: deploy }, { job: 'c-c' }] })
    assert.equal(three.status, 400)
    assert.deepEqual(errorPaths(three.body), ['triggered_by[1].job'])
    assert.match(three.body.error.message, /would make a cycle: c-a → c-b → c-c → c-a/)
    assert.equal((await getJob(a)).version, 1)
    // Removing the middle link opens the cycle.
    assert.equal((await put(b, { triggered_by: [] })).status, 200)
    assert.equal((await put(a, { triggered_by: [{ job: 'c-c' }] })).status, 200)
  })

  test('two saves that would close a cycle together: one is refused', async () => {
    const a = await api.createJob(job(unique('race-a')))
    const b = await api.createJob(job(unique('race-b')))
    const results = await Promise.all([put(a, { triggered_by: [{ job: b }] }), put(b, { triggered_by: [{ job: a }] })])
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 400], JSON.stringify(results.map((r) => r.body)))
  })

  test('parameters must be this job’s, templates may read only the upstream, secrets only fill secrets', async () => {
    const up = await api.createJob(job(unique('params-up'), { parameters: [{ name: 'env' }, { name: 'pw', type: 'secret' }] }))
    const params = [{ name: 'env' }, { name: 'n', type: 'number' }, { name: 'pw', type: 'secret' }]
    const attempt = (parameters: Record<string, unknown>) => api.call('POST', '/api/v1/jobs', job(unique('params-down'), { parameters: params, triggered_by: [{ job: up, parameters }] }))
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ nope: 'x' }, 'triggered_by[0].parameters.nope', /not a parameter of this job/],
      [{ env: '{{ target.name }}' }, 'triggered_by[0].parameters.env', /only upstream\.params/],
      [{ env: '{{ upstream.bogus }}' }, 'triggered_by[0].parameters.env', /only upstream\.params/],
      [{ env: '{{ upstream.params.env' }, 'triggered_by[0].parameters.env', /unclosed/],
      [{ n: 'seven' }, 'triggered_by[0].parameters.n', /must be a number/],
      [{ pw: 'hunter2' }, 'triggered_by[0].parameters.pw', /secret parameter cannot have a fixed value/],
      [{ env: '{{ upstream.params.missing }}' }, 'triggered_by[0].parameters.env', /has no parameter "missing"/],
      [{ env: '{{ upstream.params.pw }}' }, 'triggered_by[0].parameters.env', /can only fill a secret parameter/],
    ]
    for (const [parameters, path, message] of cases) {
      const res = await attempt(parameters)
      assert.equal(res.status, 400, `${JSON.stringify(parameters)}: ${JSON.stringify(res.body)}`)
      assert.deepEqual(errorPaths(res.body), [path], JSON.stringify(parameters))
      assert.match(res.body.error.message, message)
    }
    const fine = await attempt({ env: '{{ upstream.params.env | upper }}-{{ upstream.status }}', n: 3, pw: '{{ upstream.params.pw }}' })
    assert.equal(fine.status, 201, JSON.stringify(fine.body))
  })

  test('deleting a job removes its own dependency rows', async () => {
    const up = await api.createJob(job(unique('del-up')))
    const down = await api.createJob(job(unique('del-down'), { triggered_by: [{ job: up }] }))
    assert.equal((await api.call('DELETE', `/api/v1/jobs/${down}`)).status, 200)
    assert.equal((await t.ctx.db.select().from(jobDependency).where(eq(jobDependency.jobId, down))).length, 0)
    assert.deepEqual((await viewer.call('GET', `/api/v1/jobs/${up}/dependencies`)).body.downstream, [])
  })

  test('an import saves upstream jobs first, so a job may name one later in the file', async () => {
    const [x, y] = [unique('imp-x'), unique('imp-y')]
    const res = await api.call('POST', '/api/v1/jobs/import', [job(y, { triggered_by: [{ job: x }] }), job(x)])
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.deepEqual(res.body.items.map((i: any) => i.name), [y, x])
    assert.equal((await viewer.call('GET', `/api/v1/jobs/${res.body.items[1].id}/dependencies`)).body.downstream[0].job_name, y)
  })
})

describe('triggering', () => {
  test('which upstream outcomes each `on` matches', () => {
    const matching = (on: 'success' | 'failure' | 'any') => RUN_STATUSES.filter((s) => matchesOutcome(on, s as RunStatus))
    assert.deepEqual(matching('success'), ['succeeded'])
    assert.deepEqual(matching('failure'), ['failed', 'timed_out', 'agent_lost', 'interrupted', 'system_error'])
    assert.deepEqual(matching('any'), ['succeeded', 'failed', 'timed_out', 'cancelled', 'skipped', 'agent_lost', 'interrupted', 'system_error'])
  })

  test('a successful run starts its on-success and on-any dependants, not on-failure ones', async () => {
    const up = await api.createJob(job(unique('ok-up')))
    const upName = (await getJob(up)).name
    const onSuccess = await api.createJob(job(unique('on-success'), { triggered_by: [{ job: up }] }))
    const onAny = await api.createJob(job(unique('on-any'), { triggered_by: [{ job: up, on: 'any' }] }))
    await api.createJob(job(unique('on-failure'), { triggered_by: [{ job: up, on: 'failure' }] }))
    const { run: upstream, fires } = await runToEnd(up)
    assert.equal(upstream.status, 'succeeded')
    assert.deepEqual(fires.map((f) => f.jobId).sort(), [onSuccess, onAny].sort())
    assert.ok(fires.every((f) => f.status === 'launched' && f.runId && f.error === null))
    const detail = await viewer.call('GET', `/api/v1/runs/${upstream.id}`)
    assert.equal(detail.status, 200)
    assert.equal(detail.body.triggered_by_run, null)
    assert.deepEqual(detail.body.triggered.map((f: any) => Object.keys(f).sort()), [0, 1].map(() => ['error', 'job_id', 'job_name', 'run_id', 'status']))
    const child = fires.find((f) => f.jobId === onSuccess)!
    const done = await api.waitForRun(child.runId!, 30_000)
    assert.equal(done.status, 'succeeded')
    assert.equal(done.trigger, 'dependency')
    assert.equal(done.triggered_by_run, upstream.id)
    assert.equal(done.requested_by, `dependency:${upName}`)
    // The fire is audited, by the dependency actor.
    const audit = await t.ctx.db.select().from(auditLog).where(and(eq(auditLog.action, 'jobs.dependency_trigger'), eq(auditLog.resourceId, onSuccess)))
    assert.equal(audit.length, 1)
    assert.equal(audit[0]!.outcome, 'success')
    assert.equal(audit[0]!.actorName, `dependency:${upName}`)
    assert.equal(audit[0]!.summary.run_id, child.runId)
  })

  test('a failed run starts on-failure and on-any dependants; a cancelled one only on-any', async () => {
    const up = await api.createJob({ name: unique('bad-up'), steps: [failing()] })
    const onFailure = await api.createJob(job(unique('on-failure'), { triggered_by: [{ job: up, on: 'failure' }] }))
    const onAny = await api.createJob(job(unique('on-any'), { triggered_by: [{ job: up, on: 'any' }] }))
    await api.createJob(job(unique('on-success'), { triggered_by: [{ job: up }] }))
    const { run: failed, fires } = await runToEnd(up)
    assert.equal(failed.status, 'failed')
    assert.deepEqual(fires.map((f) => f.jobId).sort(), [onFailure, onAny].sort())

    const slow = await api.createJob({ name: unique('slow-up'), steps: [{ type: 'wait', seconds: 30 }] })
    await api.createJob(job(unique('slow-failure'), { triggered_by: [{ job: slow, on: 'failure' }] }))
    const slowAny = await api.createJob(job(unique('slow-any'), { triggered_by: [{ job: slow, on: 'any' }] }))
    const runId = await api.run(slow)
    await waitUntil(async () => (await runRow(runId)).status === 'running', 10_000, 'the run to start')
    assert.equal((await api.call('POST', `/api/v1/runs/${runId}/cancel`)).status, 202)
    assert.equal((await api.waitForRun(runId, 30_000)).status, 'cancelled')
    assert.deepEqual((await dependantsOf(runId)).map((f) => f.jobId), [slowAny])
  })

  test('a run ending with no matching dependant triggers nothing', async () => {
    const up = await api.createJob(job(unique('lonely')))
    await api.createJob(job(unique('only-on-failure'), { triggered_by: [{ job: up, on: 'failure' }] }))
    const { run: upstream, fires } = await runToEnd(up)
    assert.deepEqual(fires, [])
    assert.deepEqual((await viewer.call('GET', `/api/v1/runs/${upstream.id}`)).body.triggered, [])
  })

  test('parameters are passed through (secrets still sealed) and templated over the upstream run; timeout_sec is the deadline', async () => {
    const up = await api.createJob(
      job(unique('param-up'), { parameters: [{ name: 'env' }, { name: 'count', type: 'number' }, { name: 'pw', type: 'secret' }, { name: 'extra' }] }),
    )
    const upName = (await getJob(up)).name
    const down = await api.createJob(
      job(unique('param-down'), {
        parameters: [
          { name: 'env' },
          { name: 'count', type: 'number' },
          { name: 'pw', type: 'secret' },
          { name: 'note' },
          { name: 'label' },
          { name: 'token', type: 'secret' },
        ],
        triggered_by: [
          {
            job: up,
            pass_parameters: true,
            timeout_sec: 120,
            parameters: { label: '{{ upstream.params.env | upper }}', note: '{{ upstream.job }} {{ upstream.status }} {{ upstream.run_id }}', token: 'x-{{ upstream.params.pw }}' },
          },
        ],
      }),
    )
    const secret = 'Sup3r-s3cret-value'
    const { run: upstream, fires } = await runToEnd(up, { parameters: { env: 'prod', count: 3, pw: secret, extra: 'ignored' } })
    assert.equal(upstream.status, 'succeeded')
    assert.equal(fires.length, 1)
    const child = await runRow(fires[0]!.runId!)
    assert.equal(child.jobId, down)
    assert.deepEqual(child.parameters, { env: 'prod', count: 3, pw: '****', note: `${upName} succeeded ${upstream.id}`, label: 'PROD', token: '****' })
    const sealed = JSON.parse(openSecret(t.ctx.keyring, child.secretParams!, runParamsAad(child.id)).toString('utf8'))
    assert.deepEqual(sealed, { pw: secret, token: `x-${secret}` })
    assert.ok(child.deadline, 'the run has a deadline')
    const limit = child.deadline!.getTime() - child.createdAt.getTime()
    assert.equal(limit, 120_000)
    const shown = JSON.stringify((await viewer.call('GET', `/api/v1/runs/${child.id}`)).body)
    assert.ok(!shown.includes(secret), 'the secret is not shown')
    const audit = JSON.stringify(await t.ctx.db.select().from(auditLog))
    assert.ok(!audit.includes(secret), 'the secret is not in the audit log')
  })

  test('a disabled dependant records a failed fire; the upstream run ends normally', async () => {
    const up = await api.createJob(job(unique('to-disabled')))
    const off = await api.createJob(job(unique('disabled'), { enabled: false, triggered_by: [{ job: up }] }))
    const required = await api.createJob(job(unique('needs-param'), { parameters: [{ name: 'x', required: true }], triggered_by: [{ job: up }] }))
    const enabled = await api.createJob(job(unique('enabled'), { triggered_by: [{ job: up }] }))
    const { run: upstream, fires } = await runToEnd(up)
    assert.equal(upstream.status, 'succeeded')
    const byJob = new Map(fires.map((f) => [f.jobId, f]))
    assert.equal(byJob.get(off)!.status, 'failed')
    assert.match(byJob.get(off)!.error!, /is disabled/)
    assert.equal(byJob.get(off)!.runId, null)
    assert.equal(byJob.get(required)!.status, 'failed')
    assert.match(byJob.get(required)!.error!, /parameters\.x: required/)
    assert.equal(byJob.get(enabled)!.status, 'launched')
    assert.equal((await t.ctx.db.select().from(run).where(eq(run.jobId, off))).length, 0)
    const detail = (await viewer.call('GET', `/api/v1/runs/${upstream.id}`)).body
    assert.deepEqual(
      detail.triggered.find((f: any) => f.job_id === off),
      { job_id: off, job_name: (await getJob(off)).name, status: 'failed', run_id: null, error: byJob.get(off)!.error },
    )
    const [audit] = await t.ctx.db.select().from(auditLog).where(and(eq(auditLog.action, 'jobs.dependency_trigger'), eq(auditLog.resourceId, off)))
    assert.equal(audit!.outcome, 'failure')
  })

  test('the end of a run triggers once, however many advances or controllers handle it', async () => {
    const up = await api.createJob(job(unique('once-up')))
    const down = await api.createJob(job(unique('once-down'), { triggered_by: [{ job: up, on: 'any' }] }))
    // A run written but not advanced (nothing ready, so no engine picks it), its work then done by hand.
    const { runId } = await t.ctx.db.transaction((tx) => launchRun(t.ctx, undefined, up, { parameters: {} }, { trigger: 'manual', tx: tx as unknown as Db }))
    await t.ctx.db.update(stepRun).set({ status: 'succeeded', startedAt: new Date(), finishedAt: new Date() }).where(eq(stepRun.runId, runId))
    await Promise.all([advanceRun(t.ctx, runId), advanceRun(t.ctx, runId)])
    assert.equal((await runRow(runId)).status, 'succeeded')
    const upstream = await runRow(runId)
    const launched = await Promise.all([0, 1, 2].map(() => t.ctx.db.transaction((tx) => triggerDependents(t.ctx, tx as unknown as Db, upstream))))
    assert.ok(launched.flat().length <= 1)
    const runs = await t.ctx.db.select().from(run).where(eq(run.jobId, down))
    assert.equal(runs.length, 1)
    assert.equal(runs[0]!.triggeredByRun, runId)
    const fires = await t.ctx.db.select().from(dependencyFire).where(eq(dependencyFire.upstreamRunId, runId))
    assert.deepEqual(fires.map((f) => [f.status, f.runId]), [['launched', runs[0]!.id]])
  })

  test('a stored version without triggered_by (older) is read as none', async () => {
    const up = await api.createJob(job(unique('old-up')))
    const old = await api.createJob(job(unique('old-down'), { triggered_by: [{ job: up }] }))
    await t.ctx.db.execute(sql`update ${jobVersion} set definition = definition - 'triggered_by' where job_id = ${old}`)
    const res = await put(old, { description: 'edited' })
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.deepEqual(res.body.triggered_by, [])
    assert.deepEqual((await viewer.call('GET', `/api/v1/jobs/${up}/dependencies`)).body.downstream, [])
  })
})
