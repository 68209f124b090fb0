// Hostile input against every API route of a real controller over HTTPS: random JSON, wrong types,
// deep nesting, oversized and invalid-UTF-8 bodies, wrong content types, hostile path parameters and
// query strings, as an admin, a viewer and anonymous callers. No 5xx, every 4xx in the shared error
// shape, the controller stays up, memory settles, and stored data is not corrupted.
//
// OPSC_FUZZ_PER_ROUTE (default 40) sets requests per route and caller mix; OPSC_FUZZ_SEED the seed.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { createApp } from '../../controller/src/app.ts'
import { createTestUser, type TestUser } from '../harness/auth.ts'
import { TestController } from '../harness/agents.ts'
import { deeplyNested, hostilePathValue, HOSTILE_STRINGS, encodeURIComponentSafe, invalidUtf8, randomJson, rawClient, Rng, settledMemory, wrongTypes, type RawRequest, type RawResponse } from './fuzz-lib.ts'

const PER_ROUTE = Number(process.env.OPSC_FUZZ_PER_ROUTE ?? 40)
const SEED = Number(process.env.OPSC_FUZZ_SEED ?? 20240605)
const CONCURRENCY = 8
const MAX_BODY = 1024 * 1024

let controller: TestController
let client: ReturnType<typeof rawClient>
let admin: TestUser
let sacrificialAdmin: TestUser
let viewer: TestUser
/** Rows only viewers and anonymous callers aim at: they must come out byte-identical. */
const protectedRows: { path: string; before?: unknown }[] = []
/** Rows the admin fuzz aims at (may legitimately change). */
const adminIds: string[] = []

before(async () => {
  controller = await TestController.start({ OPSC_HTTP_RATE_LIMIT_RPS: '0', OPSC_LOG_LEVEL: 'silent' })
  const ca = readFileSync(path.join(controller.dataDir, 'tls', 'ca.crt'), 'utf8')
  client = rawClient(controller.running.httpPort, ca, CONCURRENCY)
  admin = await createTestUser(controller.ctx, 'admin')
  sacrificialAdmin = await createTestUser(controller.ctx, 'admin')
  viewer = await createTestUser(controller.ctx, 'viewer')
  for (const set of ['protected', 'fuzz'] as const) {
    const made = await seed(set)
    if (set === 'protected') protectedRows.push(...made)
    else adminIds.push(...made.map((m) => m.path.split('/').pop()!))
  }
  for (const row of protectedRows) row.before = await getJson(row.path)
})
after(async () => {
  client?.close()
  await controller?.stop()
})

async function api(method: string, p: string, body?: unknown, token = admin.token): Promise<RawResponse> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` }
  if (body !== undefined) headers['content-type'] = 'application/json'
  return client.send({ method, path: p, headers, body: body === undefined ? undefined : Buffer.from(JSON.stringify(body)) })
}

async function getJson(p: string): Promise<unknown> {
  const res = await api('GET', p)
  assert.equal(res.status, 200, `GET ${p}: ${res.body}`)
  return JSON.parse(res.body.toString())
}

/** One of each main resource; returns their GET paths. */
async function seed(set: string): Promise<{ path: string }[]> {
  const created: { path: string }[] = []
  const make = async (collection: string, body: unknown) => {
    const res = await api('POST', `/api/v1/${collection}`, body)
    assert.equal(res.status, 201, `seed ${collection}: ${res.status} ${res.body}`)
    created.push({ path: `/api/v1/${collection}/${(JSON.parse(res.body.toString()) as { id: string }).id}` })
  }
  await make('credentials', { name: `${set}-cred`, type: 'ssh_password', username: 'root', password: 'a stored secret 123' })
  await make('targets', { name: `${set}-target`, address: `${set}.example.test`, tags: { env: set }, connection: { type: 'agent' } })
  await make('target-groups', { name: `${set}-group` })
  await make('jobs', { name: `${set}-job`, steps: [{ type: 'wait', seconds: 0.1 }] })
  await make('users', { username: `${set}-user`, password: 'a long enough passphrase', role: 'viewer', display_name: set, email: `${set}@example.test` })
  return created
}

type Caller = 'admin' | 'sacrificial' | 'viewer' | 'anonymous' | 'garbage'
/** Routes that end the caller's own session: fuzzed with a throwaway admin so the main token survives. */
const SESSION_ENDING = /^\/api\/v1\/auth\/(logout|revoke-all|me)$|^\/api\/v1\/settings\/security$/

function authHeaders(caller: Caller, rng: Rng): Record<string, string> {
  switch (caller) {
    case 'admin':
      return { authorization: `Bearer ${admin.token}` }
    case 'sacrificial':
      return { authorization: `Bearer ${sacrificialAdmin.token}` }
    case 'viewer':
      return { authorization: `Bearer ${viewer.token}` }
    case 'anonymous':
      return {}
    case 'garbage':
      return rng.pick<Record<string, string>>([
        { authorization: 'Bearer ' + 'x'.repeat(rng.int(5000)) },
        { authorization: 'Basic YWRtaW46YWRtaW4=' },
        { authorization: "Bearer ' OR 1=1--" },
        { authorization: 'Bearer opsc_' + rng.bytes(24).toString('hex') },
        { authorization: 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.' },
        { cookie: 'opsc_access=' + rng.bytes(40).toString('base64url') + '; opsc_csrf=x', 'x-csrf-token': 'x' },
        { cookie: '%zz=%zz; ;;; =' },
      ])
  }
}

function randomQuery(rng: Rng): string {
  if (rng.chance(0.5)) return ''
  const keys = ['limit', 'cursor', 'q', 'status', 'sort', 'order', 'selector', 'since', 'until', 'format', 'dry_run', 'page', 'tag', 'action', rng.string(8)]
  const parts: string[] = []
  for (let i = 0; i < 1 + rng.int(6); i++) {
    const key = rng.chance(0.1) ? rng.pick(['%zz', '%00', '', '__proto__', 'a[b]']) : encodeURIComponentSafe(rng.pick(keys))
    const value = rng.chance(0.2) ? rng.pick(['%zz', '%', '%00', '%FF%FE', '-1', '1e999', '99999999999999999999']) : encodeURIComponentSafe(rng.pick(HOSTILE_STRINGS))
    parts.push(`${key}=${value}`)
  }
  return '?' + parts.join('&')
}

interface Planned {
  req: RawRequest
  kind: string
  caller: Caller
  /** What the response must be beyond "no 5xx, error shape on 4xx". */
  expect413?: boolean
  hugeBody?: { size: number; fill: string }
}

/** One big buffer per fill byte, sliced per request: the client's own allocations stay out of the RSS figure. */
const hugeBuffers = new Map<string, Buffer>()
/** The request with its body materialised (huge bodies are slices of a shared buffer). */
function withBody(p: Planned): RawRequest {
  if (!p.hugeBody) return p.req
  let buf = hugeBuffers.get(p.hugeBody.fill)
  if (!buf) hugeBuffers.set(p.hugeBody.fill, (buf = Buffer.alloc(33 * MAX_BODY + 1024, p.hugeBody.fill)))
  return { ...p.req, body: buf.subarray(0, p.hugeBody.size) }
}

/** One hostile request for a route. */
function plan(rng: Rng, method: string, pattern: string): Planned {
  let caller: Caller = rng.pick<Caller>(['admin', 'admin', 'admin', 'admin', 'admin', 'admin', 'viewer', 'anonymous', 'garbage'])
  if (caller === 'admin' && SESSION_ENDING.test(pattern)) caller = 'sacrificial'
  const protectedIds = protectedRows.map((r) => r.path.split('/').pop()!)
  const p = pattern.replace(/:[A-Za-z_]+/g, () => {
    // Viewers and anonymous callers also aim at the protected rows; the admin at its own fixtures.
    if (caller !== 'admin' && caller !== 'sacrificial' && rng.chance(0.5)) return rng.pick(protectedIds)
    if ((caller === 'admin' || caller === 'sacrificial') && rng.chance(0.3)) return rng.pick(adminIds)
    return hostilePathValue(rng)
  })
  const headers: Record<string, string> = { ...authHeaders(caller, rng) }
  const json = 'application/json'
  let body: Buffer | undefined
  let chunked = false
  let expect413 = false
  let hugeBody: { size: number; fill: string } | undefined
  const kind = rng.pick(['json', 'json', 'wrong-types', 'wrong-types', 'nested', 'huge', 'huge-chunked', 'utf8', 'content-type', 'query', 'empty', 'proto'])
  switch (kind) {
    case 'json':
      headers['content-type'] = json
      body = Buffer.from(JSON.stringify(randomJson(rng)) ?? 'null')
      break
    case 'wrong-types':
      headers['content-type'] = json
      body = Buffer.from(JSON.stringify(rng.chance(0.2) ? [wrongTypes(rng)] : wrongTypes(rng)))
      break
    case 'nested':
      headers['content-type'] = json
      body = Buffer.from(deeplyNested(rng, rng.pick([100, 1000, 10_000, 100_000, 400_000])))
      break
    case 'huge':
    case 'huge-chunked': {
      const large = /\/import$/.test(pattern) && method === 'POST'
      const size = (large ? 32 * MAX_BODY : MAX_BODY) + 1 + rng.int(large ? 1024 : MAX_BODY)
      headers['content-type'] = rng.pick([json, 'text/csv', 'application/octet-stream'])
      // Made just before sending (see bodyOf), so thousands of planned requests do not hold gigabytes.
      hugeBody = { size, fill: rng.pick(['a', '[', '{', ' ']) }
      chunked = kind === 'huge-chunked'
      // The server answers 413 without reading the rest and then closes: do not reuse that socket.
      headers.connection = 'close'
      // GET/DELETE bodies are not read by the server; everything else must be refused.
      expect413 = method === 'POST' || method === 'PUT'
      break
    }
    case 'utf8':
      headers['content-type'] = rng.pick([json, 'application/json; charset=utf-8', 'text/csv'])
      body = invalidUtf8(rng)
      break
    case 'content-type':
      headers['content-type'] = rng.pick(['text/plain', 'multipart/form-data; boundary=xyz', 'application/x-www-form-urlencoded', 'application/xml', 'application/json; charset=latin1', '', 'application/json\u0000', '*/*', 'a'.repeat(3000)]).replace(/\u0000/g, '')
      body = Buffer.from(rng.pick(['a=1&b=2', '--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--xyz--', '<a>1</a>', JSON.stringify(randomJson(rng)) ?? '']))
      break
    case 'query':
      break
    case 'empty':
      headers['content-type'] = json
      body = Buffer.alloc(0)
      break
    case 'proto':
      headers['content-type'] = json
      body = Buffer.from('{"__proto__":{"role":"admin","isAdmin":true},"constructor":{"prototype":{"polluted":1}},"name":"proto"}')
      break
  }
  const q = kind === 'query' || rng.chance(0.3) ? randomQuery(rng) : ''
  return { req: { method, path: p + q, headers, body, chunked }, kind, caller, expect413, hugeBody }
}

function describeFailure(planned: Planned, res: RawResponse | Error): string {
  const req = planned.req
  const bodyPreview = req.body ? `${req.body.length} bytes: ${JSON.stringify(req.body.subarray(0, 300).toString('latin1'))}` : 'none'
  const resPart = res instanceof Error ? `error ${res.message}` : `${res.status} ${res.body.subarray(0, 500).toString()}`
  return `${planned.caller} ${req.method} ${req.path.slice(0, 300)} [${planned.kind}] content-type=${req.headers['content-type'] ?? '-'} body=${bodyPreview}\n  → ${resPart}`
}

/** The shared error shape: {"error":{"code","message",...}}. */
function isErrorShape(res: RawResponse): boolean {
  try {
    const body = JSON.parse(res.body.toString()) as { error?: { code?: unknown; message?: unknown } }
    return typeof body.error?.code === 'string' && typeof body.error.message === 'string'
  } catch {
    return false
  }
}

test('every API route survives thousands of hostile requests: no 5xx, error shape on every 4xx, memory settles, nothing corrupted', async () => {
  const routes = [...new Map(createApp(controller.ctx).routes.filter((r) => r.method !== 'ALL' && !r.path.includes('*')).map((r) => [`${r.method} ${r.path}`, r])).values()]
  assert.ok(routes.length > 100, `found ${routes.length} routes`)
  const rng = new Rng(SEED)
  const planned: Planned[] = []
  for (const r of routes) for (let i = 0; i < PER_ROUTE; i++) planned.push(plan(rng, r.method, r.path))
  // Route-independent hostile paths under /api.
  for (let i = 0; i < PER_ROUTE * 5; i++) planned.push(plan(rng, rng.pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']), '/api/v1/' + hostilePathValue(rng) + '/' + hostilePathValue(rng)))
  // Shuffle (deterministically) so one route's requests do not all land at once.
  for (let i = planned.length - 1; i > 0; i--) {
    const j = rng.int(i + 1)
    ;[planned[i], planned[j]] = [planned[j]!, planned[i]!]
  }

  // Warm up so the baseline includes what any first request allocates (JIT, pools, caches).
  for (const p of planned.slice(0, 100)) await client.send(withBody(p)).catch(() => undefined)
  for (const fill of ['a', '[', '{', ' ']) withBody({ req: { method: 'POST', path: '/', headers: {} }, kind: 'huge', caller: 'admin', hugeBody: { size: 1, fill } })
  const memBefore = await settledMemory()
  const started = Date.now()
  const failures: string[] = []
  const statuses = new Map<number, number>()
  let next = 0
  let transportResets = 0
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < planned.length) {
        const p = planned[next++]!
        const req = withBody(p)
        let res: RawResponse
        try {
          res = await client.send(req)
        } catch (first) {
          // A server that answers early (413, or a GET that never reads its body) may close before a
          // client finished writing a huge body; and a keep-alive socket the server is closing can be
          // picked for the next request. Both are transport races, not server failures: send once
          // more on a fresh connection; only a second failure counts.
          transportResets++
          if (p.hugeBody) continue
          try {
            res = await client.send({ ...req, headers: { ...req.headers, connection: 'close' } }, 30_000, true)
          } catch (err) {
            failures.push(describeFailure(p, new Error(`${(first as Error).message}, then ${(err as Error).message}`)))
            continue
          }
        }
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
        if (res.status >= 500) failures.push(describeFailure(p, res))
        else if (res.status >= 400 && !isErrorShape(res)) failures.push(`not the error shape: ${describeFailure(p, res)}`)
        else if (p.expect413 && res.status !== 413 && !(res.status === 404 && p.caller !== 'admin')) {
          // Oversized bodies are refused before anything else looks at them (a 404 only for a path outside the API tree).
          if (!(res.status === 404 && !p.req.path.startsWith('/api/'))) failures.push(`oversized body not refused with 413: ${describeFailure(p, res)}`)
        }
      }
    }),
  )
  const seconds = (Date.now() - started) / 1000

  // Still up and serving.
  const health = await client.send({ method: 'GET', path: '/healthz', headers: {} })
  assert.equal(health.status, 200)
  const memAfter = await settledMemory()
  console.log(
    `api fuzz: ${planned.length} requests over ${routes.length} routes in ${seconds.toFixed(1)} s (${Math.round(planned.length / seconds)}/s); ` +
      `statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}; transport resets (retried): ${transportResets}; ` +
      `RSS ${memBefore.rssMiB} → ${memAfter.rssMiB} MiB, heap ${memBefore.heapMiB} → ${memAfter.heapMiB} MiB (controller in-process)`,
  )
  assert.deepEqual(failures.slice(0, 20), [], `${failures.length} failures (first 20 shown)`)
  assert.ok(memAfter.rssMiB - memBefore.rssMiB < 150, `RSS grew by ${memAfter.rssMiB - memBefore.rssMiB} MiB`)
  assert.ok(memAfter.heapMiB - memBefore.heapMiB < 64, `heap grew by ${memAfter.heapMiB - memBefore.heapMiB} MiB`)

  // No stored corruption: rows only viewers and anonymous callers aimed at are unchanged, every list
  // still reads, and the audit chain still verifies.
  for (const row of protectedRows) assert.deepEqual(await getJson(row.path), row.before, `${row.path} unchanged`)
  for (const list of ['/api/v1/users', '/api/v1/targets', '/api/v1/jobs', '/api/v1/credentials', '/api/v1/target-groups', '/api/v1/audit?limit=200']) {
    assert.ok(await getJson(list))
  }
  const verify = (await getJson('/api/v1/audit/verify')) as { ok: boolean; entries_checked: number }
  assert.equal(verify.ok, true, `audit chain verifies: ${JSON.stringify(verify)}`)
  assert.ok(verify.entries_checked > 0)
  // The main admin's session survived (only the throwaway admin hit session-ending routes).
  assert.equal((await api('GET', '/api/v1/users')).status, 200)
})
