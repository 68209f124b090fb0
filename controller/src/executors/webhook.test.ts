import assert from 'node:assert/strict'
import { createHmac, timingSafeEqual } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, beforeEach, describe, test } from 'node:test'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createCredential } from '../credentials/service.ts'
import { CreateCredentialInput } from '../credentials/types.ts'
import { executionContext } from './testing.ts'
import type { ExecutionContext } from './types.ts'
import { WebhookInput, webhookExecutor } from './webhook.ts'

let t: TestContext
let server: Server
let base: string

interface Received {
  at: number
  path: string
  headers: IncomingHttpHeaders
  body: string
}
const received: Received[] = []
/** Statuses the next requests get, in order (then 200); with an optional Retry-After. */
let script: { status: number; retryAfter?: string }[] = []

before(async () => {
  t = await createTestContext()
  await createCredential(t.ctx, undefined, CreateCredentialInput.parse({ name: 'hook-token', type: 'http_auth', scheme: 'bearer', token: 'hook-bearer-secret' }))
  server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      received.push({ at: Date.now(), path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') })
      const next = script.shift() ?? { status: 200 }
      const headers: Record<string, string> = { 'content-type': 'application/json' }
      if (next.retryAfter !== undefined) headers['retry-after'] = next.retryAfter
      res.writeHead(next.status, headers).end(JSON.stringify({ n: received.length }))
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

after(async () => {
  server?.closeAllConnections()
  await new Promise((r) => server?.close(r))
  await t?.close()
})

beforeEach(() => {
  received.length = 0
  script = []
})

function call(input: Record<string, unknown>, overrides: Partial<ExecutionContext> = {}) {
  const x = executionContext(t.ctx, overrides)
  return { x, outcome: webhookExecutor.run('webhook.call', WebhookInput.parse(input), x) }
}

/** What a receiver does: recompute the HMAC over "<timestamp>.<raw body>" and compare in constant time. */
function verify(headers: IncomingHttpHeaders, body: string, secret: string): boolean {
  const ts = headers['x-opsconductor-timestamp']
  const sig = headers['x-opsconductor-signature']
  if (typeof ts !== 'string' || typeof sig !== 'string') return false
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex')}`)
  return expected.length === Buffer.from(sig).length && timingSafeEqual(expected, Buffer.from(sig))
}

describe('webhook executor', () => {
  test('posts the payload as JSON, signed so the receiver can verify it with the secret', async () => {
    const payload = { event: 'run.finished', ok: true, items: [1, 'two', null] }
    const { x, outcome } = call({ url: `${base}/hook`, payload, signing_secret: 'whsec-123', headers: { 'X-Source': 'ops' } })
    const result = await outcome
    assert.equal(result.status, 'succeeded', result.error ?? '')
    assert.deepEqual(result.result, { status: 200, attempts: 1, body: { n: 1 } })
    assert.equal(received.length, 1)
    const got = received[0]!
    assert.equal(got.headers['content-type'], 'application/json')
    assert.equal(got.headers['x-source'], 'ops')
    assert.deepEqual(JSON.parse(got.body), payload)
    assert.ok(verify(got.headers, got.body, 'whsec-123'))
    assert.ok(!verify(got.headers, got.body, 'another-secret'))
    assert.ok(Math.abs(Number(got.headers['x-opsconductor-timestamp']) - Date.now() / 1000) < 5)
    assert.ok(!(x.stdout() + x.stderr() + JSON.stringify(result)).includes('whsec-123'))
  })

  test('without a signing secret no signature headers are sent; a credential adds its header', async () => {
    const result = await call({ url: `${base}/hook`, payload: 'just a string', credential: 'hook-token' }).outcome
    assert.equal(result.status, 'succeeded')
    const got = received[0]!
    assert.equal(got.headers['x-opsconductor-signature'], undefined)
    assert.equal(got.headers['x-opsconductor-timestamp'], undefined)
    assert.equal(got.headers.authorization, 'Bearer hook-bearer-secret')
    assert.equal(got.body, '"just a string"')
  })

  test('retries after two 503s and succeeds on the third attempt, each attempt signed afresh', async () => {
    script = [{ status: 503 }, { status: 503 }]
    const { x, outcome } = call({ url: `${base}/hook`, payload: { a: 1 }, signing_secret: 's3', backoff_ms: 50 })
    const result = await outcome
    assert.equal(result.status, 'succeeded', result.error ?? '')
    assert.deepEqual(result.result, { status: 200, attempts: 3, body: { n: 3 } })
    assert.equal(received.length, 3)
    for (const r of received) assert.ok(verify(r.headers, r.body, 's3'))
    // Backoff: ≥ 25 ms before the 2nd attempt (50 ms with jitter), ≥ 50 ms before the 3rd (100 ms with jitter).
    assert.ok(received[1]!.at - received[0]!.at >= 24)
    assert.ok(received[2]!.at - received[1]!.at >= 49)
    assert.match(x.stderr(), /attempt 1 of 3: HTTP 503; retrying in/)
    assert.match(x.stderr(), /attempt 2 of 3: HTTP 503; retrying in/)
  })

  test('gives up after `attempts`, failing with the last status', async () => {
    script = [{ status: 502 }, { status: 503 }, { status: 500 }, { status: 500 }]
    const result = await call({ url: `${base}/hook`, payload: {}, attempts: 2, backoff_ms: 10 }).outcome
    assert.equal(result.status, 'failed')
    assert.equal(result.error, 'HTTP 503 (expected 2xx) after 2 attempts')
    assert.deepEqual(result.result, { status: 503, attempts: 2, body: { n: 2 } })
    assert.equal(received.length, 2)
  })

  test('a 4xx other than 429 is not retried; 429 honours Retry-After', async () => {
    script = [{ status: 400 }]
    const bad = await call({ url: `${base}/hook`, payload: {}, backoff_ms: 10 }).outcome
    assert.equal(bad.error, 'HTTP 400 (expected 2xx)')
    assert.equal(received.length, 1)

    received.length = 0
    script = [{ status: 429, retryAfter: '1' }]
    const limited = await call({ url: `${base}/hook`, payload: {}, backoff_ms: 10 }).outcome
    assert.equal(limited.status, 'succeeded')
    assert.equal(received.length, 2)
    assert.ok(received[1]!.at - received[0]!.at >= 950, 'waited for Retry-After: 1')
  })

  test('network errors are retried, then reported with the attempt count', async () => {
    const probe = createServer().listen(0, '127.0.0.1')
    await once(probe, 'listening')
    const port = (probe.address() as AddressInfo).port
    await new Promise((r) => probe.close(r))
    const { x, outcome } = call({ url: `http://127.0.0.1:${port}/hook`, payload: {}, attempts: 3, backoff_ms: 10 })
    const result = await outcome
    assert.equal(result.status, 'failed')
    assert.equal(result.error, `connection refused by 127.0.0.1:${port} after 3 attempts`)
    assert.equal(x.stderr().match(/retrying in/g)?.length, 2)
  })

  test('a cancel during the backoff ends the step at once', async () => {
    script = [{ status: 503 }]
    const { x, outcome } = call({ url: `${base}/hook`, payload: {}, backoff_ms: 60_000 })
    setTimeout(() => x.abort('cancelled'), 200)
    const started = Date.now()
    assert.deepEqual(await outcome, { status: 'cancelled' })
    assert.ok(Date.now() - started < 2000)
    assert.equal(received.length, 1)
  })

  test('the input schema: attempts 1..10, payload required, strict', () => {
    assert.equal(WebhookInput.safeParse({ url: base, payload: {}, attempts: 11 }).success, false)
    assert.equal(WebhookInput.safeParse({ url: base }).success, false)
    assert.equal(WebhookInput.safeParse({ url: base, payload: {}, body: {} }).success, false)
    assert.deepEqual(WebhookInput.parse({ url: 'https://hooks.example.com/x', payload: null }), {
      url: 'https://hooks.example.com/x',
      payload: null,
      headers: {},
      expected_status: ['2xx'],
      tls_verify: true,
      attempts: 3,
      backoff_ms: 1000,
    })
  })
})
