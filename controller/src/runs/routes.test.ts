import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { call, createTestUser, type TestUser } from '../../../test/harness/auth.ts'
import { waitUntil } from '../../../test/harness/agents.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { RunsApi } from '../../../test/harness/runs.ts'
import { createApp } from '../app.ts'
import { createTarget } from '../targets/service.ts'
import { RunEngine } from './engine.ts'
import { run, stepRun } from './runs.sql.ts'

let t: TestContext
let engine: RunEngine
let app: ReturnType<typeof createApp>
let api: RunsApi
let viewer: TestUser
let server: Server
let base: string

/** The HTTP endpoint the http.get steps call. */
const http = {
  /** Whether /toggle answers 500. */
  failing: true,
  /** Calls per /flaky/<key>: the first fails. */
  flaky: new Map<string, number>(),
  /** Request headers seen per path. */
  seen: new Map<string, IncomingHttpHeaders[]>(),
}

before(async () => {
  server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!
    http.seen.set(path, [...(http.seen.get(path) ?? []), req.headers])
    if (path === '/ok') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('hello from the test server\n')
    if (path === '/long') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('0123456789abcdefghij')
    if (path === '/fail') return void res.writeHead(500, { 'content-type': 'text/plain' }).end('broken\n')
    if (path === '/toggle') return void res.writeHead(http.failing ? 500 : 200).end(http.failing ? 'down\n' : 'up\n')
    if (path.startsWith('/flaky/')) {
      const n = (http.flaky.get(path) ?? 0) + 1
      http.flaky.set(path, n)
      return void res.writeHead(n === 1 ? 503 : 200).end(`call ${n}\n`)
    }
    res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  t = await createTestContext()
  engine = new RunEngine(t.ctx, { leaseMs: 5000, localCapacity: 16, agentCapacity: 16 })
  t.ctx.runEngine = engine
  await engine.start()
  app = createApp(t.ctx, { uiDir: '/nonexistent' })
  api = await RunsApi.as(t.ctx, 'operator')
  viewer = await createTestUser(t.ctx, 'viewer')
  // SSH targets only for selection and plans: no step in this file connects to them.
  for (const name of ['plan-a', 'plan-b']) {
    await createTarget(t.ctx, {
      name,
      address: '127.0.0.1',
      os_type: 'linux',
      enabled: true,
      tags: { role: 'plan' },
      connection: { type: 'ssh', port: 22, credential_id: null, host_key_policy: 'tofu', jump: [] },
    })
  }
})
after(async () => {
  await engine?.stop()
  await t?.close()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

const wait = (seconds: number, extra: Record<string, unknown> = {}) => ({ type: 'wait', seconds, ...extra })
const get = (path: string, extra: Record<string, unknown> = {}) => ({ type: 'http.get', url: `${base}${path}`, ...extra })
const asViewer = (method: string, path: string, body?: unknown) => call(app, method, path, { token: viewer.token, ...(body !== undefined ? { body } : {}) })
const paths = (body: any): string[] => body.error.details.map((d: { path: string }) => d.path)
const runCount = async () => (await t.ctx.db.select({ id: run.id }).from(run)).length

/** The step runs of a run as [step_id, attempt, status], in the API's order. */
async function stepSummary(runId: string): Promise<[string, number, string][]> {
  return (await api.steps(runId)).map((s) => [s.step_id, s.attempt, s.status])
}

describe('running jobs', () => {
  test('a job of wait steps without targets runs once and succeeds; run, steps and counts are readable', async () => {
    const jobId = await api.createJob({ name: 'two waits', steps: [wait(0.2, { id: 'first' }), wait(0.1, { id: 'second' })] })
    const res = await api.call('POST', `/api/v1/jobs/${jobId}/run`, {})
    assert.equal(res.status, 202)
    assert.deepEqual(Object.keys(res.body).sort(), ['run_id', 'target_count'])
    assert.equal(res.body.target_count, 0)
    const runId = res.body.run_id as string
    const done = await api.waitForRun(runId, 15_000)
    assert.equal(done.status, 'succeeded', JSON.stringify(done))
    const shown = await asViewer('GET', `/api/v1/runs/${runId}`)
    assert.equal(shown.status, 200)
    assert.equal(shown.body.id, runId)
    assert.equal(shown.body.job_id, jobId)
    assert.equal(shown.body.job_name, 'two waits')
    assert.equal(shown.body.job_version, 1)
    assert.equal(shown.body.trigger, 'manual')
    assert.equal(shown.body.retry_of, null)
    assert.deepEqual(shown.body.step_counts, { succeeded: 2 })
    assert.ok(shown.body.started_at && shown.body.finished_at)
    assert.ok(shown.body.duration_ms >= 300, `duration ${shown.body.duration_ms} ms covers both waits`)
    const steps = await asViewer('GET', `/api/v1/runs/${runId}/steps`)
    assert.equal(steps.status, 200)
    assert.deepEqual(
      steps.body.items.map((s: any) => [s.step_index, s.step_id, s.step_type, s.target_id, s.attempt, s.status, s.transport]),
      [
        [0, 'first', 'wait', null, 1, 'succeeded', 'controller'],
        [1, 'second', 'wait', null, 1, 'succeeded', 'controller'],
      ],
    )
    const [first, second] = steps.body.items
    assert.ok(new Date(second.started_at) >= new Date(first.finished_at), 'steps run in order')
    const one = await asViewer('GET', `/api/v1/runs/${runId}/steps/${first.id}`)
    assert.equal(one.status, 200)
    assert.deepEqual(one.body.rendered, { seconds: 0.2 })
    assert.equal((await asViewer('GET', `/api/v1/runs/${runId}/steps/${randomUUID()}`)).status, 404)
    assert.equal((await asViewer('GET', `/api/v1/runs/${randomUUID()}`)).status, 404)
    assert.equal((await asViewer('GET', '/api/v1/runs/not-a-run')).status, 404)
    assert.equal((await asViewer('GET', `/api/v1/runs/${randomUUID()}/steps`)).status, 404)
  })

  test('GET /runs filters by job, status and time, pages by keyset, and refuses bad cursors and filters', async () => {
    const okJob = await api.createJob({ name: 'list ok', steps: [wait(0.05)] })
    const failJob = await api.createJob({ name: 'list fail', steps: [get('/fail')] })
    const startedAt = new Date(Date.now() - 1000).toISOString()
    const ok = []
    for (let i = 0; i < 3; i++) ok.push(await api.run(okJob))
    const failed = await api.run(failJob)
    for (const id of [...ok, failed]) await api.waitForRun(id, 15_000)
    const ids = async (qs: string) => {
      const res = await asViewer('GET', `/api/v1/runs?${qs}`)
      assert.equal(res.status, 200, JSON.stringify(res.body))
      return res.body.items.map((r: { id: string }) => r.id) as string[]
    }
    assert.deepEqual(await ids(`job_id=${okJob}`), [...ok].reverse(), 'newest first')
    assert.deepEqual(await ids(`job_id=${failJob}&status=failed`), [failed])
    assert.deepEqual(await ids(`job_id=${failJob}&status=succeeded`), [])
    assert.deepEqual(await ids(`job_id=${okJob}&since=${encodeURIComponent(startedAt)}`), [...ok].reverse())
    assert.deepEqual(await ids(`job_id=${okJob}&until=${encodeURIComponent(startedAt)}`), [])
    assert.deepEqual(await ids(`job_id=${okJob}&since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`), [])

    const page1 = await asViewer('GET', `/api/v1/runs?job_id=${okJob}&limit=2`)
    assert.deepEqual(page1.body.items.map((r: { id: string }) => r.id), [ok[2], ok[1]])
    assert.equal(typeof page1.body.next, 'string')
    const page2 = await asViewer('GET', `/api/v1/runs?job_id=${okJob}&limit=2&cursor=${page1.body.next}`)
    assert.deepEqual(page2.body.items.map((r: { id: string }) => r.id), [ok[0]])
    assert.equal(page2.body.next, null)

    for (const qs of ['cursor=not-a-cursor!', `cursor=${Buffer.from('"x"').toString('base64url')}`, 'status=exploded', 'job_id=nope', 'since=yesterday', 'limit=0']) {
      const res = await asViewer('GET', `/api/v1/runs?${qs}`)
      assert.equal(res.status, 400, `${qs}: ${JSON.stringify(res.body)}`)
      assert.equal(res.body.error.code, 'VALIDATION')
    }
  })

  test('run parameters are validated; steps that need targets need a selection that matches; nothing is stored when refused', async () => {
    const jobId = await api.createJob({
      name: 'params',
      parameters: [{ name: 'x', required: true }, { name: 'n', type: 'number' }],
      steps: [wait(0.05)],
    })
    const before = await runCount()
    const missing = await api.call('POST', `/api/v1/jobs/${jobId}/run`, {})
    assert.equal(missing.status, 400)
    assert.deepEqual(paths(missing.body), ['parameters.x'])
    const unknown = await api.call('POST', `/api/v1/jobs/${jobId}/run`, { parameters: { x: 'a', y: 'b' } })
    assert.equal(unknown.status, 400)
    assert.deepEqual(paths(unknown.body), ['parameters.y'])
    const typed = await api.call('POST', `/api/v1/jobs/${jobId}/run`, { parameters: { x: 'a', n: 'many' } })
    assert.equal(typed.status, 400)
    assert.deepEqual(paths(typed.body), ['parameters.n'])
    assert.equal((await api.call('POST', `/api/v1/jobs/${jobId}/run`, { parameters: { x: 'a' }, extra: 1 })).status, 400)

    const nowhere = await api.createJob({ name: 'nowhere', targets: 'tag:role=nothing-has-this', steps: [{ type: 'exec', command: 'true' }] })
    const refused = await api.call('POST', `/api/v1/jobs/${nowhere}/run`, {})
    assert.equal(refused.status, 400, JSON.stringify(refused.body))
    assert.deepEqual(paths(refused.body), ['steps[0]'])
    assert.match(refused.body.error.message, /matches no enabled target/)
    const noSelection = await api.createJob({ name: 'no selection', steps: [{ type: 'exec', command: 'true' }] })
    assert.equal((await api.call('POST', `/api/v1/jobs/${noSelection}/run`, {})).status, 400)
    assert.equal((await api.call('POST', `/api/v1/jobs/${noSelection}/plan`, {})).status, 400)
    assert.equal(await runCount(), before)

    const ok = await api.call('POST', `/api/v1/jobs/${jobId}/run`, { parameters: { x: 'a', n: '3' } })
    assert.equal(ok.status, 202)
    const done = await api.waitForRun(ok.body.run_id, 15_000)
    assert.deepEqual(done.parameters, { x: 'a', n: 3 })
  })

  test('plan shows resolved targets and rendered inputs, secrets masked, and stores nothing', async () => {
    const jobId = await api.createJob({
      name: 'plan me',
      targets: 'tag:role=plan',
      parameters: [{ name: 'svc', pattern: '[a-z]+' }, { name: 'token', type: 'secret', required: true }],
      steps: [
        { id: 'restart', type: 'exec', command: 'systemctl restart {{ svc | shell }} # {{ token }} on {{ target.name }}' },
        { id: 'probe', type: 'http.get', url: `${base}/ok`, headers: { authorization: 'Bearer {{ token }}' } },
      ],
    })
    const before = await runCount()
    const stepRunsBefore = (await t.ctx.db.select({ id: stepRun.id }).from(stepRun)).length
    const plan = await asViewer('POST', `/api/v1/jobs/${jobId}/plan`, { parameters: { svc: 'nginx', token: 'S3cret-Token-Value' } })
    assert.equal(plan.status, 200, JSON.stringify(plan.body))
    assert.equal(JSON.stringify(plan.body).includes('S3cret-Token-Value'), false, 'the secret never appears in a plan')
    assert.deepEqual(plan.body.parameters, { svc: 'nginx', token: '****' })
    assert.equal(plan.body.job_version, 1)
    assert.equal(plan.body.selector, 'tag:role=plan')
    assert.equal(plan.body.target_count, 2)
    assert.deepEqual(plan.body.targets.map((x: { name: string }) => x.name).sort(), ['plan-a', 'plan-b'])
    const [restart, probe] = plan.body.steps
    assert.equal(restart.target_count, 2)
    assert.deepEqual(restart.targets.map((x: any) => [x.target_name, x.transport]).sort(), [
      ['plan-a', 'ssh'],
      ['plan-b', 'ssh'],
    ])
    const a = restart.targets.find((x: any) => x.target_name === 'plan-a')
    assert.equal(a.input.command, "systemctl restart 'nginx' # **** on plan-a")
    assert.equal(probe.targets[0].input.headers.authorization, 'Bearer ****')
    assert.equal(probe.targets[0].input.url, `${base}/ok`)
    // A run-time selection overrides the job's.
    const narrowed = await asViewer('POST', `/api/v1/jobs/${jobId}/plan`, { parameters: { token: 'x-secret-x' }, targets: ['plan-b'] })
    assert.equal(narrowed.status, 200, JSON.stringify(narrowed.body))
    assert.deepEqual(narrowed.body.targets.map((x: { name: string }) => x.name), ['plan-b'])
    const bad = await asViewer('POST', `/api/v1/jobs/${jobId}/plan`, { parameters: { svc: 'NGINX!', token: 'x' } })
    assert.equal(bad.status, 400)
    assert.deepEqual(paths(bad.body), ['parameters.svc'])
    assert.equal(await runCount(), before)
    assert.equal((await t.ctx.db.select({ id: stepRun.id }).from(stepRun)).length, stepRunsBefore)
  })

  test('an explicit target list: any length (a retry names every target that failed), every entry must be an enabled target', async () => {
    const ids: string[] = []
    for (let i = 0; i < 150; i++) {
      const created = await createTarget(t.ctx, {
        name: `list-${i}`,
        address: '127.0.0.1',
        os_type: 'linux',
        enabled: i !== 149,
        tags: {},
        connection: { type: 'ssh', port: 22, credential_id: null, host_key_policy: 'tofu', jump: [] },
      })
      ids.push(created.id)
    }
    const jobId = await api.createJob({ name: 'listed', steps: [{ type: 'exec', command: 'true' }] })
    const many = await asViewer('POST', `/api/v1/jobs/${jobId}/plan`, { targets: [...ids.slice(0, 140), 'LIST-140', ids[0]] })
    assert.equal(many.status, 200, JSON.stringify(many.body))
    assert.equal(many.body.target_count, 141, 'ids and names (any case), duplicates once')
    const bad = await asViewer('POST', `/api/v1/jobs/${jobId}/plan`, { targets: [ids[0], 'no-such-host', ids[149]] })
    assert.equal(bad.status, 400)
    assert.deepEqual(paths(bad.body), ['targets[1]', 'targets[2]'])
    assert.match(bad.body.error.message, /no target "no-such-host".*list-149 is disabled/)
  })
})

describe('cancel and retry', () => {
  test('cancelling a running wait ends the run as cancelled within seconds; a finished or unknown run cannot be cancelled', async () => {
    const jobId = await api.createJob({ name: 'long wait', steps: [wait(30, { id: 'nap' }), wait(0.1, { id: 'after' })] })
    const runId = await api.run(jobId)
    await waitUntil(async () => (await api.steps(runId))[0]?.status === 'running', 10_000, 'the wait step to start')
    assert.equal((await asViewer('POST', `/api/v1/runs/${runId}/cancel`)).status, 403)
    const started = Date.now()
    const res = await api.call('POST', `/api/v1/runs/${runId}/cancel`)
    const answered = Date.now() - started
    assert.equal(res.status, 202, JSON.stringify(res.body))
    assert.ok(res.body.cancel_requested_at)
    const done = await api.waitForRun(runId, 5_000)
    assert.equal(done.status, 'cancelled')
    const took = Date.now() - started
    assert.ok(took < 5_000, `cancel answered after ${answered} ms, run cancelled after ${took} ms`)
    assert.deepEqual(await stepSummary(runId), [
      ['nap', 1, 'cancelled'],
      ['after', 1, 'cancelled'],
    ])
    const again = await api.call('POST', `/api/v1/runs/${runId}/cancel`)
    assert.equal(again.status, 409)
    assert.equal(again.body.error.code, 'CONFLICT')
    assert.equal((await api.call('POST', `/api/v1/runs/${randomUUID()}/cancel`)).status, 404)
    assert.equal((await api.call('POST', '/api/v1/runs/abc/cancel')).status, 404)
  })

  test('retry of a failed run: a new run of the same version and parameters (secrets included); a succeeded run cannot be retried', async () => {
    http.failing = true
    const jobId = await api.createJob({
      name: 'toggle',
      parameters: [{ name: 'label', default: 'one' }, { name: 'token', type: 'secret' }],
      steps: [get('/toggle', { id: 'probe', headers: { 'x-label': '{{ label }}', 'x-token': '{{ token }}' } })],
    })
    const failedRun = await api.run(jobId, { parameters: { label: 'first', token: 'tok-123-secret' } })
    const failed = await api.waitForRun(failedRun, 15_000)
    assert.equal(failed.status, 'failed')
    assert.deepEqual(failed.parameters, { label: 'first', token: '****' })
    assert.deepEqual(await stepSummary(failedRun), [['probe', 1, 'failed']])
    const [failedStep] = await api.steps(failedRun)
    assert.match(failedStep.error, /HTTP 500/)
    assert.equal(failedStep.rendered.headers['x-token'], '****')

    // The job moves on to version 2 meanwhile; the retry keeps version 1.
    const v2 = await api.call('PUT', `/api/v1/jobs/${jobId}`, { name: 'toggle', parameters: [{ name: 'label', default: 'two' }], steps: [get('/fail')] })
    assert.equal(v2.status, 200)
    assert.equal((await asViewer('POST', `/api/v1/runs/${failedRun}/retry`)).status, 403)
    http.failing = false
    http.seen.delete('/toggle')
    const retried = await api.call('POST', `/api/v1/runs/${failedRun}/retry`)
    assert.equal(retried.status, 202, JSON.stringify(retried.body))
    assert.equal(retried.body.retry_of, failedRun)
    const retryRun = await api.waitForRun(retried.body.run_id, 15_000)
    assert.equal(retryRun.status, 'succeeded', JSON.stringify(retryRun))
    assert.equal(retryRun.retry_of, failedRun)
    assert.equal(retryRun.trigger, 'retry')
    assert.equal(retryRun.job_version, 1)
    assert.deepEqual(retryRun.parameters, { label: 'first', token: '****' })
    const headers = http.seen.get('/toggle')!.at(-1)!
    assert.equal(headers['x-label'], 'first')
    assert.equal(headers['x-token'], 'tok-123-secret', 'the secret parameter is carried into the retry')
    const again = await api.call('POST', `/api/v1/runs/${retried.body.run_id}/retry`)
    assert.equal(again.status, 409)
    // The runs list filters by trigger (the console's "Trigger" filter).
    const byTrigger = async (trigger: string) => (await asViewer('GET', `/api/v1/runs?job_id=${jobId}&trigger=${trigger}`)).body.items.map((r: { id: string }) => r.id)
    assert.deepEqual(await byTrigger('retry'), [retried.body.run_id])
    assert.deepEqual(await byTrigger('manual'), [failedRun])
    assert.deepEqual(await byTrigger('schedule'), [])
    assert.equal((await asViewer('GET', '/api/v1/runs?trigger=cron')).status, 400)
    assert.equal((await api.call('POST', `/api/v1/runs/${randomUUID()}/retry`)).status, 404)
  })

  test('a step with retries: attempt 1 fails, attempt 2 succeeds, the run succeeds', async () => {
    const key = `/flaky/${randomUUID()}`
    const jobId = await api.createJob({ name: 'flaky', steps: [get(key, { id: 'probe', retries: 1, retry_backoff_sec: 0 }), wait(0.05, { id: 'next' })] })
    const runId = await api.run(jobId)
    const done = await api.waitForRun(runId, 15_000)
    assert.equal(done.status, 'succeeded', JSON.stringify(done))
    assert.deepEqual(await stepSummary(runId), [
      ['probe', 1, 'failed'],
      ['probe', 2, 'succeeded'],
      ['next', 1, 'succeeded'],
    ])
    assert.deepEqual(done.step_counts, { succeeded: 2 }, 'counts look at the latest attempt')
    assert.equal(http.flaky.get(key), 2)
    assert.equal((await api.call('POST', `/api/v1/runs/${runId}/retry`)).status, 409)
  })
})

describe('output and events', () => {
  test('step output as text and as JSON chunks, resumable with from_seq; unknown step runs are 404', async () => {
    const jobId = await api.createJob({ name: 'output', steps: [get('/ok', { id: 'ok' }), get('/long', { id: 'long', capture_body_bytes: 5 })] })
    const runId = await api.run(jobId)
    assert.equal((await api.waitForRun(runId, 15_000)).status, 'succeeded')
    const [ok, long] = await api.steps(runId)
    const text = await asViewer('GET', `/api/v1/runs/${runId}/steps/${ok.id}/output`)
    assert.equal(text.status, 200)
    assert.match(text.headers.get('content-type') ?? '', /^text\/plain/)
    assert.match(text.body, /GET http:\/\/127\.0\.0\.1:\d+\/ok → HTTP 200/)
    assert.match(text.body, /hello from the test server/)

    // The truncated reply writes the body to stdout, then a note to stderr: two chunks.
    const json = await asViewer('GET', `/api/v1/runs/${runId}/steps/${long.id}/output?format=json`)
    assert.equal(json.status, 200)
    assert.equal(json.body.step_run_id, long.id)
    assert.equal(json.body.status, 'succeeded')
    assert.equal(json.body.complete, true)
    const chunks = json.body.chunks as { seq: number; stream: string; data: string }[]
    assert.deepEqual(chunks.map((c) => [c.seq, c.stream]), [
      [1, 'stdout'],
      [2, 'stderr'],
    ])
    const decoded = chunks.map((c) => Buffer.from(c.data, 'base64').toString('utf8'))
    assert.match(decoded[0]!, /01234/)
    assert.doesNotMatch(decoded[0]!, /56789/)
    assert.match(decoded[1]!, /truncated at 5 bytes/)
    assert.equal(json.body.next_from_seq, 2)
    const resumed = await asViewer('GET', `/api/v1/runs/${runId}/steps/${long.id}/output?format=json&from_seq=1`)
    assert.deepEqual(resumed.body.chunks.map((c: { seq: number }) => c.seq), [2])
    const end = await asViewer('GET', `/api/v1/runs/${runId}/steps/${long.id}/output?format=json&from_seq=2`)
    assert.deepEqual(end.body.chunks, [])
    assert.equal(end.body.next_from_seq, 2)
    const stdoutOnly = await asViewer('GET', `/api/v1/runs/${runId}/steps/${long.id}/output?stream=stdout`)
    assert.doesNotMatch(stdoutOnly.body, /truncated/)
    const limited = await asViewer('GET', `/api/v1/runs/${runId}/steps/${long.id}/output?format=json&limit=1`)
    assert.deepEqual(limited.body.chunks.map((c: { seq: number }) => c.seq), [1])
    assert.equal(limited.body.complete, false)

    assert.equal((await asViewer('GET', `/api/v1/runs/${runId}/steps/${randomUUID()}/output`)).status, 404)
    assert.equal((await asViewer('GET', `/api/v1/runs/${runId}/steps/nope/output`)).status, 404)
    assert.equal((await asViewer('GET', `/api/v1/runs/${randomUUID()}/steps/${ok.id}/output`)).status, 404, 'a step run of another run')
    assert.equal((await asViewer('GET', `/api/v1/runs/${runId}/steps/${ok.id}/output?format=xml`)).status, 400)
  })

  test('a viewer that disconnects mid-run and comes back with Last-Event-ID misses nothing and sees nothing twice', async () => {
    const jobId = await api.createJob({ name: 'watched', steps: [get('/ok', { id: 'a' }), wait(0.6, { id: 'p1' }), get('/ok', { id: 'b' }), wait(0.6, { id: 'p2' }), get('/ok', { id: 'c' })] })
    const runId = await api.run(jobId)
    const first = await api.events(runId)
    await waitUntil(() => first.events.some((e) => e.event === 'output'), 15_000, 'the first output')
    await first.close()
    const seenBefore = first.events.filter((e) => e.event !== 'end')
    assert.equal((await api.waitForRun(runId, 15_000)).status, 'succeeded', 'the run does not care that its viewer left')
    const second = await api.events(runId, seenBefore.at(-1)!.id)
    await second.done
    const whole = await api.events(runId)
    await whole.done
    const ids = (events: { id: number; event: string }[]) => events.filter((e) => e.event !== 'end').map((e) => e.id)
    assert.deepEqual([...ids(seenBefore), ...ids(second.events)], ids(whole.events))
    assert.ok(ids(second.events).length > 0, 'the second viewer got what came after the first left')
    assert.equal(first.output() + second.output(), whole.output())
  })

  test('SSE on a finished run replays its events and ends with end; Last-Event-ID resumes; a bad one is a 400', async () => {
    const jobId = await api.createJob({ name: 'events', steps: [get('/ok', { id: 'ok' }), wait(0.05, { id: 'pause' })] })
    const runId = await api.run(jobId)
    assert.equal((await api.waitForRun(runId, 15_000)).status, 'succeeded')
    const reader = await api.events(runId)
    await reader.done
    const events = reader.events
    assert.ok(events.length > 0)
    const last = events.at(-1)!
    assert.equal(last.event, 'end')
    assert.deepEqual(last.data, { status: 'succeeded' })
    assert.equal(events.filter((e) => e.event === 'end').length, 1)
    const runStatuses = events.filter((e) => e.event === 'run').map((e) => e.data.status)
    assert.equal(runStatuses.at(-1), 'succeeded')
    assert.ok(runStatuses.includes('running'))
    const stepEvents = events.filter((e) => e.event === 'step')
    assert.ok(stepEvents.some((e) => e.data.step_id === 'ok' && e.data.status === 'succeeded'))
    assert.ok(stepEvents.some((e) => e.data.step_id === 'pause' && e.data.status === 'succeeded'))
    assert.match(reader.output(), /hello from the test server/)
    const ids = events.slice(0, -1).map((e) => e.id)
    assert.deepEqual(ids, [...ids].sort((x, y) => x - y), 'event ids ascend')

    const middle = ids[Math.floor(ids.length / 2)]!
    const resumed = await api.events(runId, middle)
    await resumed.done
    assert.deepEqual(
      resumed.events.map((e) => e.id),
      events.filter((e) => e.id > middle || e.event === 'end').map((e) => e.id),
    )

    for (const header of ['abc', '-1', '1.5']) {
      const res = await app.request(`/api/v1/runs/${runId}/events`, { headers: { authorization: `Bearer ${viewer.token}`, 'last-event-id': header } })
      assert.equal(res.status, 400, header)
      assert.equal(((await res.json()) as any).error.code, 'VALIDATION')
    }
    assert.equal((await app.request(`/api/v1/runs/${randomUUID()}/events`, { headers: { authorization: `Bearer ${viewer.token}` } })).status, 404)
    assert.equal((await app.request(`/api/v1/runs/${runId}/events`)).status, 401)
  })
})

describe('run_if, continue_on_error and timeouts', () => {
  test('a run_if: failure step runs only after a failure', async () => {
    const steps = (first: unknown) => [first, wait(0.05, { id: 'on_failure', run_if: 'failure' }), wait(0.05, { id: 'on_success' }), wait(0.05, { id: 'always', run_if: 'always' })]
    const failing = await api.createJob({ name: 'run_if failing', steps: steps(get('/fail', { id: 'probe' })) })
    const failedRun = await api.run(failing)
    assert.equal((await api.waitForRun(failedRun, 15_000)).status, 'failed')
    assert.deepEqual(await stepSummary(failedRun), [
      ['probe', 1, 'failed'],
      ['on_failure', 1, 'succeeded'],
      ['on_success', 1, 'skipped'],
      ['always', 1, 'succeeded'],
    ])
    const passing = await api.createJob({ name: 'run_if passing', steps: steps(get('/ok', { id: 'probe' })) })
    const okRun = await api.run(passing)
    assert.equal((await api.waitForRun(okRun, 15_000)).status, 'succeeded')
    assert.deepEqual(await stepSummary(okRun), [
      ['probe', 1, 'succeeded'],
      ['on_failure', 1, 'skipped'],
      ['on_success', 1, 'succeeded'],
      ['always', 1, 'succeeded'],
    ])
  })

  test('continue_on_error lets later steps run and the run succeed', async () => {
    const jobId = await api.createJob({ name: 'carry on', steps: [get('/fail', { id: 'probe', continue_on_error: true }), wait(0.05, { id: 'next' })] })
    const runId = await api.run(jobId)
    const done = await api.waitForRun(runId, 15_000)
    assert.equal(done.status, 'succeeded', JSON.stringify(done))
    assert.deepEqual(await stepSummary(runId), [
      ['probe', 1, 'failed'],
      ['next', 1, 'succeeded'],
    ])
  })

  test('a job timeout ends a long step and the run as timed_out', async () => {
    const jobId = await api.createJob({ name: 'too slow', timeout_sec: 1, steps: [wait(10, { id: 'nap' }), wait(0.05, { id: 'after' })] })
    const started = Date.now()
    const runId = await api.run(jobId)
    const done = await api.waitForRun(runId, 6_000)
    assert.equal(done.status, 'timed_out', JSON.stringify(done))
    assert.ok(Date.now() - started < 6_000)
    assert.ok(done.deadline)
    assert.deepEqual(await stepSummary(runId), [
      ['nap', 1, 'timed_out'],
      ['after', 1, 'timed_out'],
    ])
  })
})
