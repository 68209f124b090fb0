import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import parsePrometheusTextFormat from 'parse-prometheus-text-format'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createApp } from '../app.ts'
import { createTarget } from '../targets/service.ts'
import { RunsApi } from '../../../test/harness/runs.ts'
import { registerFleetMetrics } from './fleet-metrics.ts'
import { registerControllerNode } from './service.ts'

let t: TestContext
let uiDir: string

before(async () => {
  t = await createTestContext()
  uiDir = mkdtempSync(path.join(tmpdir(), 'opsc-ui-'))
  mkdirSync(path.join(uiDir, 'assets'))
  writeFileSync(path.join(uiDir, 'index.html'), '<!doctype html><title>OpsConductor</title><div id="root"></div>')
  writeFileSync(path.join(uiDir, 'assets', 'app-abc123.js'), 'console.log("app")')
})
after(() => t.close())

const app = () => createApp(t.ctx, { uiDir })

describe('probes', () => {
  test('healthz answers 200 while the process lives', async () => {
    const res = await app().request('/healthz')
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), { status: 'ok' })
  })

  test('readyz reports the database and migrations as ok', async () => {
    const res = await app().request('/readyz')
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), { status: 'ready', checks: { database: 'ok', migrations: 'ok' } })
  })

  test('version names the build, protocol, installation and backend', async () => {
    const res = await app().request('/api/v1/version')
    assert.equal(res.status, 200)
    const body = (await res.json()) as Record<string, unknown>
    assert.equal(body.version, t.ctx.version)
    assert.deepEqual(body.protocol, { major: 1, minor: 0 })
    assert.equal(body.installation_id, t.ctx.installationId)
    assert.equal(body.database, t.testDb.backend)
  })
})

describe('metrics', () => {
  test('serves Prometheus text with process and per-route HTTP metrics', async () => {
    const a = app()
    await a.request('/api/v1/version')
    await a.request('/api/v1/nope')
    const res = await a.request('/metrics')
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/)
    const families = parsePrometheusTextFormat(await res.text())
    const byName = new Map(families.map((f) => [f.name, f]))
    assert.ok(byName.has('process_cpu_user_seconds_total'))
    assert.ok(byName.has('process_resident_memory_bytes'))
    assert.ok(byName.has('opsc_http_request_duration_seconds'))
    const requests = byName.get('opsc_http_requests_total')!
    const labels = requests.metrics.map((m) => m.labels ?? {})
    assert.ok(labels.some((l) => l.route === '/api/v1/version' && l.status === '200' && l.method === 'GET'))
    // Unknown paths share one label so a scanner cannot blow up the series count.
    assert.ok(labels.some((l) => l.route === 'unmatched' && l.status === '404'))
    assert.ok(!labels.some((l) => l.route?.includes('nope')))
  })
})

describe('fleet metrics', () => {
  test('report this controller, the cluster backlog and who leads, read from the database', async () => {
    registerFleetMetrics(t.ctx)
    await registerControllerNode(t.ctx.db, { id: t.ctx.nodeId, version: t.ctx.version, httpPort: 1, grpcPort: 2 })
    await createTarget(t.ctx, { name: 'fm-1', address: '127.0.0.1', os_type: 'linux', enabled: true, tags: { fm: '1' }, connection: { type: 'ssh', port: 22, credential_id: null, host_key_policy: 'tofu', jump: [] } })
    await createTarget(t.ctx, { name: 'fm-2', address: '127.0.0.1', os_type: 'linux', enabled: true, tags: { fm: '1' }, connection: { type: 'ssh', port: 22, credential_id: null, host_key_policy: 'tofu', jump: [] } })
    // No run engine in this context: the admitted run stays running with its step runs waiting to be claimed.
    const api = await RunsApi.as(t.ctx)
    await api.run(await api.createJob({ name: 'fm', targets: 'fm=1', steps: [{ type: 'exec', command: 'true' }] }))
    const res = await app().request('/metrics')
    const samples = new Map<string, number>()
    for (const f of parsePrometheusTextFormat(await res.text())) {
      for (const m of f.metrics as { value?: string; labels?: Record<string, string> }[]) {
        const labels = Object.entries(m.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(',')
        samples.set(labels ? `${f.name}{${labels}}` : f.name, Number(m.value))
      }
    }
    assert.equal(samples.get('opsc_agent_sessions'), 0)
    assert.equal(samples.get('opsc_runs_active{status=queued}'), 0)
    assert.equal(samples.get('opsc_runs_active{status=running}'), 1)
    assert.equal(samples.get('opsc_step_runs_claimable'), 2)
    assert.ok(samples.get('opsc_step_runs_claimable_oldest_seconds')! >= 0)
    assert.equal(samples.get('opsc_controllers_alive'), 1)
    assert.equal(samples.get('opsc_scheduler_leader'), 0)
    assert.equal(samples.get('opsc_notifications_pending'), 0)
    assert.equal(samples.get('opsc_agent_assignments_open{status=pending}'), 0)
  })
})

describe('errors and routing', () => {
  test('unknown API paths get the shared JSON error shape, for any method', async () => {
    for (const [method, url] of [['GET', '/api/v1/nope'], ['POST', '/api/v1/jobs/x/y'], ['DELETE', '/api/v2/anything']] as const) {
      const res = await app().request(url, { method })
      assert.equal(res.status, 404, `${method} ${url}`)
      assert.match(res.headers.get('content-type') ?? '', /application\/json/)
      const body = (await res.json()) as { error: { code: string; message: string; request_id: string } }
      assert.equal(body.error.code, 'NOT_FOUND')
      assert.equal(body.error.message, `no route for ${method} ${url}`)
      assert.equal(body.error.request_id, res.headers.get('x-request-id'))
    }
  })

  test('keeps a caller-supplied request id', async () => {
    const res = await app().request('/api/v1/version', { headers: { 'x-request-id': 'trace-123' } })
    assert.equal(res.headers.get('x-request-id'), 'trace-123')
  })

  test('sends security headers', async () => {
    const res = await app().request('/')
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/)
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff')
    assert.match(res.headers.get('strict-transport-security') ?? '', /max-age=/)
  })
})

describe('web UI', () => {
  test('serves index.html at the root and for client-side routes', async () => {
    for (const url of ['/', '/runs/123', '/targets?q=web']) {
      const res = await app().request(url)
      assert.equal(res.status, 200, url)
      assert.match(res.headers.get('content-type') ?? '', /text\/html/)
      assert.match(await res.text(), /<div id="root">/)
      assert.equal(res.headers.get('cache-control'), 'no-cache', url)
    }
  })

  test('serves hashed assets with long-lived caching and 404s missing ones', async () => {
    const res = await app().request('/assets/app-abc123.js')
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /javascript/)
    assert.match(res.headers.get('cache-control') ?? '', /immutable/)
    assert.equal(await res.text(), 'console.log("app")')
    const missing = await app().request('/assets/gone-000.js')
    assert.equal(missing.status, 404)
    assert.equal(missing.headers.get('cache-control'), null)
  })

  test('does not serve files outside the UI directory', async () => {
    const res = await app().request('/..%2f..%2fetc%2fpasswd')
    assert.ok(!(await res.text()).includes('root:'))
  })

  test('explains how to build the UI when it is missing', async () => {
    const res = await createApp(t.ctx, { uiDir: path.join(uiDir, 'missing') }).request('/dashboard')
    assert.equal(res.status, 503)
    assert.match(await res.text(), /npm run build:ui/)
  })
})

describe('readiness when the database goes away', () => {
  test('readyz turns 503 and names the database, healthz stays 200', async () => {
    const own = await createTestContext()
    await own.testDb.database.close()
    const a = createApp(own.ctx, { uiDir })
    const res = await a.request('/readyz')
    assert.equal(res.status, 503)
    const body = (await res.json()) as { status: string; checks: { database: string } }
    assert.equal(body.status, 'not_ready')
    assert.notEqual(body.checks.database, 'ok')
    assert.equal((await a.request('/healthz')).status, 200)
    await own.close().catch(() => {})
  })
})
