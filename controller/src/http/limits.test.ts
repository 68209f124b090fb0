import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { Hono } from 'hono'
import { requestId } from 'hono/request-id'
import { createApp } from '../app.ts'
import type { Principal } from '../auth/principal.ts'
import type { AppEnv } from '../context.ts'
import { createTestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { ensureTls } from '../tls/pki.ts'
import { onError } from './errors.ts'
import { bodyLimitFor, LARGE_BODY_BYTES, rateLimit, requestBodyLimit, TokenBuckets } from './limits.ts'
import { startHttpServer } from './server.ts'

const user = (id: string): Principal => ({ kind: 'user', userId: id, username: id, role: 'admin', sessionId: 's', via: 'bearer', restriction: null })

/** A tiny app: the limits plus a handler that reads the body, with principal/address taken from test headers. */
function limitedApp(opts: { maxBody?: number; rps?: number; burst?: number; now?: () => number } = {}) {
  const app = new Hono<AppEnv>()
  app.use(requestId())
  app.use(requestBodyLimit(opts.maxBody ?? 1024))
  app.use(async (c, next) => {
    const who = c.req.header('x-test-user')
    c.set('principal', who ? user(who) : undefined)
    c.set('clientAddress', c.req.header('x-test-ip') ?? null)
    await next()
  })
  app.use(rateLimit({ rps: opts.rps ?? 0, burst: opts.burst ?? 1, now: opts.now }))
  app.all('/api/v1/*', async (c) => c.json({ got: (await c.req.text()).length }))
  app.onError(onError)
  return app
}

function assertErrorShape(body: any, code: string) {
  assert.equal(typeof body.error, 'object')
  assert.equal(body.error.code, code)
  assert.equal(typeof body.error.message, 'string')
}

describe('request body limit', () => {
  test('a body over the limit is 413 PAYLOAD_TOO_LARGE in the shared error shape; at the limit it passes', async () => {
    const app = limitedApp({ maxBody: 1024 })
    const ok = await app.request('/api/v1/x', { method: 'POST', body: 'a'.repeat(1024) })
    assert.equal(ok.status, 200)
    assert.deepEqual(await ok.json(), { got: 1024 })
    const res = await app.request('/api/v1/x', { method: 'POST', body: 'a'.repeat(1025) })
    assert.equal(res.status, 413)
    const body: any = await res.json()
    assertErrorShape(body, 'PAYLOAD_TOO_LARGE')
    assert.equal(body.error.details.limit_bytes, 1024)
    assert.ok(body.error.request_id)
  })

  test('a chunked body (no Content-Length) is counted as it streams and refused past the limit', async () => {
    const app = limitedApp({ maxBody: 1024 })
    let pulled = 0
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++
        if (pulled > 1000) controller.close()
        else controller.enqueue(new Uint8Array(512))
      },
    })
    const res = await app.request('/api/v1/x', { method: 'POST', body: stream, duplex: 'half' } as RequestInit)
    assert.equal(res.status, 413)
    assertErrorShape(await res.json(), 'PAYLOAD_TOO_LARGE')
    assert.ok(pulled < 10, `stopped reading early (read ${pulled} chunks)`)
  })

  test('a Content-Length that is not a number is a 400', async () => {
    const app = limitedApp()
    const res = await app.request('/api/v1/x', { method: 'POST', headers: { 'content-length': '1e9' }, body: 'x' })
    assert.equal(res.status, 400)
    assertErrorShape(await res.json(), 'VALIDATION')
  })

  test('the import routes take the large limit, every other route the default', () => {
    assert.equal(bodyLimitFor('POST', '/api/v1/targets/import', 1024), LARGE_BODY_BYTES)
    assert.equal(bodyLimitFor('POST', '/api/v1/jobs/import', 1024), LARGE_BODY_BYTES)
    assert.equal(bodyLimitFor('POST', '/api/v1/jobs/import', LARGE_BODY_BYTES * 2), LARGE_BODY_BYTES * 2)
    assert.equal(bodyLimitFor('PUT', '/api/v1/jobs/import', 1024), 1024)
    assert.equal(bodyLimitFor('POST', '/api/v1/jobs', 1024), 1024)
    assert.equal(bodyLimitFor('POST', '/api/v1/targets/import/../x', 1024), 1024)
  })
})

describe('rate limit', () => {
  test('a token bucket allows the burst, then one request per 1/rps, and refills over time', () => {
    let now = 0
    const b = new TokenBuckets(10, 3, { now: () => now })
    assert.deepEqual([b.take('a'), b.take('a'), b.take('a')], [0, 0, 0])
    assert.equal(b.take('a'), 1, 'empty: retry in (at least) 1 s')
    now += 100 // 0.1 s at 10/s: one token
    assert.equal(b.take('a'), 0)
    assert.ok(b.take('a') > 0)
    now += 10_000 // refills to the burst, never above it
    assert.deepEqual([b.take('a'), b.take('a'), b.take('a')], [0, 0, 0])
    assert.ok(b.take('a') > 0)
  })

  test('Retry-After is the whole seconds until a token is back (slow rates)', () => {
    let now = 0
    const b = new TokenBuckets(0.1, 1, { now: () => now })
    assert.equal(b.take('a'), 0)
    assert.equal(b.take('a'), 10)
    now += 5_000
    assert.equal(b.take('a'), 5)
  })

  test('buckets are bounded: past maxClients the idlest are forgotten', () => {
    let now = 0
    const b = new TokenBuckets(1, 5, { now: () => now, maxClients: 100 })
    for (let i = 0; i < 1000; i++) {
      now += 1
      b.take(`ip:${i}`)
    }
    assert.ok(b.size <= 100)
  })

  test('over the limit: 429 RATE_LIMITED with Retry-After, in the shared error shape; other principals are not affected', async () => {
    let now = 0
    const app = limitedApp({ rps: 1, burst: 2, now: () => now })
    const as = (who: string) => app.request('/api/v1/x', { headers: { 'x-test-user': who, 'x-test-ip': '10.0.0.1' } })
    assert.equal((await as('alice')).status, 200)
    assert.equal((await as('alice')).status, 200)
    const limited = await as('alice')
    assert.equal(limited.status, 429)
    assert.equal(limited.headers.get('retry-after'), '1')
    const body: any = await limited.json()
    assertErrorShape(body, 'RATE_LIMITED')
    assert.equal(body.error.details.retry_after_seconds, 1)
    // Bob, from the same address, has his own bucket.
    assert.equal((await as('bob')).status, 200)
    now += 1000
    assert.equal((await as('alice')).status, 200, 'refilled after a second')
  })

  test('without a principal the key is the client IP; without a socket there is nothing to limit', async () => {
    const app = limitedApp({ rps: 1, burst: 1, now: () => 0 })
    const from = (ip?: string) => app.request('/api/v1/x', { headers: ip ? { 'x-test-ip': ip } : {} })
    assert.equal((await from('10.0.0.1')).status, 200)
    assert.equal((await from('10.0.0.1')).status, 429)
    assert.equal((await from('10.0.0.2')).status, 200)
    for (let i = 0; i < 5; i++) assert.equal((await from()).status, 200)
  })

  test('rps 0 disables the limit', async () => {
    const app = limitedApp({ rps: 0, burst: 1 })
    for (let i = 0; i < 50; i++) assert.equal((await app.request('/api/v1/x', { headers: { 'x-test-ip': '10.0.0.1' } })).status, 200)
  })
})

describe('limits on the real app over HTTPS', () => {
  let t: TestContext
  before(async () => {
    t = await createTestContext({ env: { OPSC_HTTP_RATE_LIMIT_RPS: '1', OPSC_HTTP_RATE_LIMIT_BURST: '8', OPSC_HTTP_MAX_BODY_BYTES: '2048' } })
  })
  after(async () => t?.close())

  function send(port: number, ca: string, method: string, p: string, opts: { token?: string; body?: Buffer; headers?: Record<string, string> } = {}) {
    return new Promise<{ status: number; headers: Record<string, unknown>; body: any }>((resolve, reject) => {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...opts.headers }
      if (opts.token) headers.authorization = `Bearer ${opts.token}`
      const req = request(`https://localhost:${port}${p}`, { method, ca, headers }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (d: Buffer) => chunks.push(d))
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') }))
      })
      req.on('error', reject)
      req.end(opts.body)
    })
  }

  test('413 for an oversized body and 429 per principal, each with the shared error shape', async () => {
    const tls = await ensureTls({ dataDir: mkdtempSync(path.join(tmpdir(), 'opsc-limits-')) })
    const server = await startHttpServer({ app: createApp(t.ctx), tls, host: '127.0.0.1', port: 0 })
    try {
      const ca = tls.caCertPem!
      const admin = await createTestUser(t.ctx, 'admin')
      const other = await createTestUser(t.ctx, 'viewer')
      const third = await createTestUser(t.ctx, 'admin')
      const big = await send(server.port, ca, 'POST', '/api/v1/targets', { token: admin.token, body: Buffer.alloc(4096, 'x') })
      assert.equal(big.status, 413)
      assertErrorShape(big.body, 'PAYLOAD_TOO_LARGE')
      const statuses: number[] = []
      for (let i = 0; i < 10; i++) statuses.push((await send(server.port, ca, 'GET', '/api/v1/users', { token: admin.token })).status)
      assert.ok(statuses.includes(429), `some were limited: ${statuses}`)
      const limited = await send(server.port, ca, 'GET', '/api/v1/users', { token: admin.token })
      assert.equal(limited.status, 429)
      assert.match(String(limited.headers['retry-after']), /^\d+$/)
      assertErrorShape(limited.body, 'RATE_LIMITED')
      // Another principal from the same address is not limited by the admin's requests.
      assert.notEqual((await send(server.port, ca, 'GET', '/api/v1/users', { token: other.token })).status, 429)
      // Hostile input that used to reach the database (NUL) or Node's parser (huge headers) gets the error shape too.
      const nulQuery = await send(server.port, ca, 'GET', '/api/v1/jobs?q=%00', { token: other.token })
      assert.equal(nulQuery.status, 400)
      assertErrorShape(nulQuery.body, 'VALIDATION')
      const nulBody = await send(server.port, ca, 'POST', '/api/v1/credentials', { token: third.token, body: Buffer.from('{"name":"a\\u0000b"}') })
      assert.equal(nulBody.status, 400)
      assertErrorShape(nulBody.body, 'VALIDATION')
      const hugeHeaders = await send(server.port, ca, 'GET', '/api/v1/jobs?q=' + 'a'.repeat(20_000), { token: other.token })
      assert.equal(hugeHeaders.status, 431)
      assertErrorShape(hugeHeaders.body, 'PAYLOAD_TOO_LARGE')
      // Probes are outside the API limits.
      const probe = await new Promise<number>((resolve, reject) => {
        request(`https://localhost:${server.port}/healthz`, { ca }, (res) => resolve(res.statusCode!)).on('error', reject).end()
      })
      assert.equal(probe, 200)
    } finally {
      await server.close(1000)
    }
  })
})
