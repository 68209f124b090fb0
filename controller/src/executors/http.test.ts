import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createCredential } from '../credentials/service.ts'
import { CreateCredentialInput } from '../credentials/types.ts'
import { ensureTls } from '../tls/pki.ts'
import { HttpInput, httpExecutor } from './http.ts'
import { executionContext } from './testing.ts'
import type { ExecutionContext } from './types.ts'

let t: TestContext
let main: Server
let other: Server
let secure: Server
let base: string
let otherBase: string
let secureBase: string
let caPem: string
let tlsDir: string
let bearerId: string
const seenByOther: IncomingMessage['headers'][] = []

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void

/** A real node:http server on 127.0.0.1, with routes by path. */
async function listen(server: Server, routes: Record<string, Handler>, scheme = 'http'): Promise<string> {
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x')
      const route = routes[url.pathname]
      if (!route) return void res.writeHead(404).end('no route')
      route(req, res, Buffer.concat(chunks).toString('utf8'))
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const echo: Handler = (req, res, body) => {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }))
}

const PASSWORD = 'basic pw 9f3k'
const TOKEN = 'bearer-token-7c1d'

before(async () => {
  t = await createTestContext()
  const create = (body: Record<string, unknown>) => createCredential(t.ctx, undefined, CreateCredentialInput.parse(body))
  await create({ name: 'api-basic', type: 'http_auth', scheme: 'basic', username: 'svc', password: PASSWORD })
  bearerId = (await create({ name: 'api-bearer', type: 'http_auth', scheme: 'bearer', token: TOKEN })).id
  await create({ name: 'api-key', type: 'http_auth', scheme: 'api_key', header_name: 'X-Api-Key', api_key: 'key-123' })
  await create({ name: 'api-headers', type: 'http_auth', scheme: 'headers', headers: { 'X-One': 'one-secret', 'X-Two': 'two-secret' } })
  await create({ name: 'ssh-login', type: 'ssh_password', username: 'root', password: 'not for http' })

  other = createHttpServer()
  otherBase = await listen(other, {
    '/echo': (req, res, body) => {
      seenByOther.push(req.headers)
      echo(req, res, body)
    },
  })
  main = createHttpServer()
  base = await listen(main, {
    '/echo': echo,
    '/ok': (_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('fine'),
    '/unavailable': (_req, res) => res.writeHead(503, { 'content-type': 'text/plain' }).end('down for maintenance'),
    '/redirect-same': (_req, res) => res.writeHead(302, { location: '/echo?hop=1' }).end(),
    '/redirect-other': (_req, res) => res.writeHead(302, { location: `${otherBase}/echo` }).end(),
    '/redirect-303': (_req, res) => res.writeHead(303, { location: '/echo' }).end(),
    '/redirect-307': (_req, res) => res.writeHead(307, { location: '/echo' }).end(),
    '/loop': (_req, res) => res.writeHead(302, { location: '/loop' }).end(),
    '/big': (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(Buffer.alloc(3 * 1024 * 1024, 'a')),
    '/hang': () => {},
  })
  tlsDir = mkdtempSync(path.join(tmpdir(), 'opsc-http-tls-'))
  const tls = await ensureTls({ dataDir: tlsDir })
  caPem = tls.caCertPem!
  secure = createHttpsServer({ cert: tls.certPem, key: tls.keyPem })
  secureBase = await listen(secure, { '/echo': echo }, 'https')
})

after(async () => {
  for (const s of [main, other, secure]) s?.closeAllConnections()
  await Promise.all([main, other, secure].map((s) => s && new Promise((r) => s.close(r))))
  if (tlsDir) rmSync(tlsDir, { recursive: true, force: true })
  await t?.close()
})

function run(type: string, input: Record<string, unknown>, overrides: Partial<ExecutionContext> = {}) {
  const x = executionContext(t.ctx, overrides)
  const parsed = HttpInput.parse(input)
  return { x, outcome: httpExecutor.run(type, parsed, x) }
}

async function runOk(type: string, input: Record<string, unknown>) {
  const { x, outcome } = run(type, input)
  const result = await outcome
  assert.equal(result.status, 'succeeded', result.error ?? '')
  return { x, result: result.result as { status: number; headers: Record<string, string>; body: any; truncated: boolean; url: string; redirects: number } }
}

describe('http executor', () => {
  test('GET with a basic credential: Authorization sent, JSON body parsed, status line and body on stdout', async () => {
    const { x, result } = await runOk('http.get', { url: `${base}/echo`, headers: { 'X-Trace': 'abc' }, credential: 'api-basic' })
    assert.equal(result.status, 200)
    assert.equal(result.body.method, 'GET')
    assert.equal(result.body.headers.authorization, `Basic ${Buffer.from(`svc:${PASSWORD}`).toString('base64')}`)
    assert.equal(result.body.headers['x-trace'], 'abc')
    assert.equal(result.headers['content-type'], 'application/json')
    assert.equal(result.truncated, false)
    assert.equal(result.redirects, 0)
    assert.equal(result.url, `${base}/echo`)
    assert.match(x.stdout(), new RegExp(`^GET ${base}/echo → HTTP 200 OK \\(\\d+ ms\\)\\n\\{"method":"GET"`))
  })

  test('bearer, api_key and headers credentials become their request headers; a credential header replaces a step header', async () => {
    const bearer = await runOk('http.get', { url: `${base}/echo`, credential: 'api-bearer', headers: { Authorization: 'Bearer from-step' } })
    assert.equal(bearer.result.body.headers.authorization, `Bearer ${TOKEN}`)
    const key = await runOk('http.get', { url: `${base}/echo`, credential: 'api-key' })
    assert.equal(key.result.body.headers['x-api-key'], 'key-123')
    const headers = await runOk('http.get', { url: `${base}/echo`, credential: 'api-headers' })
    assert.equal(headers.result.body.headers['x-one'], 'one-secret')
    assert.equal(headers.result.body.headers['x-two'], 'two-secret')
  })

  test('the credential is found by id as well as by name', async () => {
    const { result } = await runOk('http.get', { url: `${base}/echo`, credential: bearerId })
    assert.equal(result.body.headers.authorization, `Bearer ${TOKEN}`)
  })

  test('bodies: json, text and form set their content type; a step Content-Type wins', async () => {
    const json = await runOk('http.post', { url: `${base}/echo`, body: { json: { a: [1, null, 'x'] } } })
    assert.equal(json.result.body.method, 'POST')
    assert.equal(json.result.body.headers['content-type'], 'application/json')
    assert.deepEqual(JSON.parse(json.result.body.body), { a: [1, null, 'x'] })
    const text = await runOk('http.put', { url: `${base}/echo`, body: { text: 'hello' } })
    assert.equal(text.result.body.headers['content-type'], 'text/plain; charset=utf-8')
    assert.equal(text.result.body.body, 'hello')
    const form = await runOk('http.patch', { url: `${base}/echo`, body: { form: { a: '1', b: 'x y&z' } } })
    assert.equal(form.result.body.headers['content-type'], 'application/x-www-form-urlencoded')
    assert.equal(form.result.body.body, 'a=1&b=x+y%26z')
    const custom = await runOk('http.delete', { url: `${base}/echo`, body: { json: {} }, headers: { 'content-type': 'application/merge-patch+json' } })
    assert.equal(custom.result.body.method, 'DELETE')
    assert.equal(custom.result.body.headers['content-type'], 'application/merge-patch+json')
  })

  test('http.get with a body fails before sending anything', async () => {
    const outcome = await run('http.get', { url: `${base}/echo`, body: { text: 'x' } }).outcome
    assert.deepEqual(outcome, { status: 'failed', error: 'http.get takes no body' })
  })

  test('a same-origin redirect is followed with the credential; 303 turns a POST into a GET, 307 keeps it', async () => {
    const { result } = await runOk('http.get', { url: `${base}/redirect-same`, credential: 'api-bearer' })
    assert.equal(result.redirects, 1)
    assert.equal(result.url, `${base}/echo?hop=1`)
    assert.equal(result.body.headers.authorization, `Bearer ${TOKEN}`)
    const see = await runOk('http.post', { url: `${base}/redirect-303`, body: { json: { a: 1 } } })
    assert.equal(see.result.body.method, 'GET')
    assert.equal(see.result.body.body, '')
    assert.equal(see.result.body.headers['content-type'], undefined)
    const temp = await runOk('http.post', { url: `${base}/redirect-307`, body: { json: { a: 1 } } })
    assert.equal(temp.result.body.method, 'POST')
    assert.equal(temp.result.body.body, '{"a":1}')
  })

  test('a redirect to another origin drops the credential and Authorization/Cookie headers, keeps the others', async () => {
    seenByOther.length = 0
    const { result } = await runOk('http.get', {
      url: `${base}/redirect-other`,
      credential: 'api-headers',
      headers: { Authorization: 'Bearer step-level', Cookie: 'session=1', 'X-Keep': 'kept' },
    })
    assert.equal(result.url, `${otherBase}/echo`)
    assert.equal(seenByOther.length, 1)
    const seen = seenByOther[0]!
    assert.equal(seen.authorization, undefined)
    assert.equal(seen.cookie, undefined)
    assert.equal(seen['x-one'], undefined)
    assert.equal(seen['x-two'], undefined)
    assert.equal(seen['x-keep'], 'kept')
  })

  test('redirect loops stop after 10 hops; with follow_redirects false the 302 is the answer', async () => {
    const loop = await run('http.get', { url: `${base}/loop` }).outcome
    assert.deepEqual(loop, { status: 'failed', error: 'too many redirects (more than 10)' })
    const { outcome } = run('http.get', { url: `${base}/redirect-same`, follow_redirects: false })
    const noFollow = await outcome
    assert.equal(noFollow.status, 'failed')
    assert.equal(noFollow.error, 'HTTP 302 (expected 2xx)')
    assert.equal((noFollow.result as { headers: Record<string, string> }).headers.location, '/echo?hop=1')
    const accepted = await runOk('http.get', { url: `${base}/redirect-same`, follow_redirects: false, expected_status: [301, '30x'] })
    assert.equal(accepted.result.status, 302)
  })

  test('an unexpected status fails with the status and what was expected, keeping the response', async () => {
    const { x, outcome } = run('http.get', { url: `${base}/unavailable` })
    const result = await outcome
    assert.equal(result.status, 'failed')
    assert.equal(result.error, 'HTTP 503 (expected 2xx)')
    assert.equal((result.result as { body: string }).body, 'down for maintenance')
    assert.match(x.stdout(), /HTTP 503 Service Unavailable/)
    const expected = await runOk('http.get', { url: `${base}/unavailable`, expected_status: ['5xx'] })
    assert.equal(expected.result.status, 503)
    const listed = await run('http.get', { url: `${base}/ok`, expected_status: [201, 204] }).outcome
    assert.equal(listed.error, 'HTTP 200 (expected 201, 204)')
  })

  test('TLS: an unknown CA fails verification; ca_pem or tls_verify false let it through', async () => {
    const refused = await run('http.get', { url: `${secureBase}/echo` }).outcome
    assert.equal(refused.status, 'failed')
    assert.match(refused.error!, /^certificate verify failed: /)
    assert.ok(!refused.error!.includes('\n'))
    const pinned = await runOk('http.get', { url: `${secureBase}/echo`, ca_pem: caPem })
    assert.equal(pinned.result.status, 200)
    const unverified = await runOk('http.get', { url: `${secureBase}/echo`, tls_verify: false })
    assert.equal(unverified.result.status, 200)
  })

  test('the step timeout ends a request that never answers as timed_out', async () => {
    const started = Date.now()
    const outcome = await run('http.get', { url: `${base}/hang` }, { timeoutMs: 300 }).outcome
    assert.deepEqual(outcome, { status: 'timed_out' })
    assert.ok(Date.now() - started < 3000)
  })

  test('a cancel aborts the request promptly; an engine timeout reports timed_out', async () => {
    for (const reason of ['cancelled', 'timed_out'] as const) {
      const { x, outcome } = run('http.get', { url: `${base}/hang` })
      setTimeout(() => x.abort(reason), 100)
      const started = Date.now()
      assert.deepEqual(await outcome, { status: reason })
      assert.ok(Date.now() - started < 2000)
    }
  })

  test('the body is captured up to capture_body_bytes and marked truncated', async () => {
    const { x, result } = await runOk('http.get', { url: `${base}/big`, capture_body_bytes: 1000 })
    assert.equal(result.truncated, true)
    assert.equal(result.body, 'a'.repeat(1000))
    assert.match(x.stderr(), /truncated at 1000 bytes/)
  })

  test('credential problems fail the step: wrong type, unknown name', async () => {
    const wrong = await run('http.get', { url: `${base}/ok`, credential: 'ssh-login' }).outcome
    assert.deepEqual(wrong, { status: 'failed', error: 'credential "ssh-login" is a ssh_password credential, expected http_auth' })
    const missing = await run('http.get', { url: `${base}/ok`, credential: 'nope' }).outcome
    assert.equal(missing.status, 'failed')
    assert.match(missing.error!, /nope/)
  })

  test('no secret reaches the output, the result or the error', async () => {
    for (const credential of ['api-basic', 'api-bearer', 'api-headers']) {
      const { x, outcome } = run('http.get', { url: `${base}/unavailable`, credential })
      const result = await outcome
      const everything = JSON.stringify(result) + x.stdout() + x.stderr()
      for (const secret of [PASSWORD, TOKEN, 'one-secret', Buffer.from(`svc:${PASSWORD}`).toString('base64')]) assert.ok(!everything.includes(secret), secret)
    }
  })

  test('a refused connection fails with one clear line', async () => {
    const probe = createHttpServer().listen(0, '127.0.0.1')
    await once(probe, 'listening')
    const port = (probe.address() as AddressInfo).port
    await new Promise((r) => probe.close(r))
    const outcome = await run('http.get', { url: `http://127.0.0.1:${port}/` }).outcome
    assert.deepEqual(outcome, { status: 'failed', error: `connection refused by 127.0.0.1:${port}` })
  })

  test('the input schema: http(s) URLs without user info, known fields only, status patterns', () => {
    assert.equal(HttpInput.safeParse({ url: 'ftp://example.com/' }).success, false)
    assert.equal(HttpInput.safeParse({ url: 'https://user:pw@example.com/' }).success, false)
    assert.equal(HttpInput.safeParse({ url: 'https://example.com/', retries: 3 }).success, false)
    assert.equal(HttpInput.safeParse({ url: 'https://example.com/', expected_status: ['2xy'] }).success, false)
    assert.equal(HttpInput.safeParse({ url: 'https://example.com/', body: { json: 1, text: 'x' } }).success, false)
    assert.equal(HttpInput.safeParse({ url: 'https://example.com/', headers: { 'bad header': 'x' } }).success, false)
    const parsed = HttpInput.parse({ url: 'https://example.com/' })
    assert.deepEqual(parsed, { url: 'https://example.com/', headers: {}, expected_status: ['2xx'], tls_verify: true, follow_redirects: true, capture_body_bytes: 1024 * 1024 })
    assert.equal(httpExecutor.needsTarget, false)
    assert.deepEqual(httpExecutor.types, ['http.get', 'http.post', 'http.put', 'http.delete', 'http.patch'])
  })
})
