import assert from 'node:assert/strict'
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import postgres from 'postgres'
import { createCredential } from '../../controller/src/credentials/service.ts'
import { createTarget } from '../../controller/src/targets/service.ts'
import { TestController } from '../harness/agents.ts'
import { createMariadbDatabase, mariadbUnavailable, type TestMariadbDatabase } from '../harness/mariadb.ts'
import { RunsApi } from '../harness/runs.ts'
import { SNMP_SYS_NAME_OID, snmpdUnavailable, startSnmpd, type TestSnmpd } from '../harness/snmpd.ts'

/*
 * Controller-side step types end to end: jobs created and run through the API, with the real
 * controller (job engine included) in this process, against real peers on loopback: a node:http
 * server (http.get, webhook.call), PostgreSQL and MariaDB (sql.query), snmpd (snmp.get).
 */

async function postgresUnavailable(): Promise<string | undefined> {
  const sql = postgres({ host: '127.0.0.1', port: 5432, username: 'postgres', database: 'postgres', max: 1, connect_timeout: 3, onnotice: () => {} })
  try {
    await sql`select 1`
    return undefined
  } catch (err) {
    return `PostgreSQL not reachable on 127.0.0.1:5432 (${(err as Error).message})`
  } finally {
    await sql.end({ timeout: 1 })
  }
}

const noPostgres = await postgresUnavailable()
const noMariadb = await mariadbUnavailable()
const noSnmpd = snmpdUnavailable()
for (const reason of [noPostgres, noMariadb, noSnmpd]) if (reason) console.log(`# skipping: ${reason}`)

const HOOK_TOKEN = `hook-secret-${randomBytes(12).toString('hex')}`

/** What the local HTTP server saw, per path. */
const seen = new Map<string, { headers: IncomingHttpHeaders; body: string }[]>()
let server: Server
let base: string
let controller: TestController
let api: RunsApi
let mariadb: TestMariadbDatabase | undefined
let snmpd: TestSnmpd | undefined

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0]!
      const body = Buffer.concat(chunks).toString('utf8')
      seen.set(path, [...(seen.get(path) ?? []), { headers: req.headers, body }])
      if (path === '/status') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('all systems nominal\n')
      // Echoes the Authorization header back, as some misbehaving services do (with a 500 on /echo-fail).
      if (path.startsWith('/echo')) return void res.writeHead(path === '/echo-fail' ? 500 : 200, { 'content-type': 'application/json' }).end(JSON.stringify({ you_sent: req.headers.authorization ?? null }))
      if (path === '/hook') {
        // A receiver as the webhook executor documents: HMAC-SHA256(secret, "<ts>.<body>").
        const ts = String(req.headers['x-opsconductor-timestamp'] ?? '')
        const given = Buffer.from(String(req.headers['x-opsconductor-signature'] ?? ''))
        const expected = Buffer.from(`sha256=${createHmac('sha256', HOOK_TOKEN).update(`${ts}.${body}`).digest('hex')}`)
        const fresh = Math.abs(Date.now() / 1000 - Number(ts)) < 300
        const valid = fresh && given.length === expected.length && timingSafeEqual(given, expected)
        return void res.writeHead(valid ? 200 : 401, { 'content-type': 'application/json' }).end(JSON.stringify({ verified: valid }))
      }
      res.writeHead(404).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  controller = await TestController.start()
  api = await RunsApi.as(controller.ctx)
  await createCredential(controller.ctx, undefined, { type: 'http_auth', name: 'hook', scheme: 'bearer', token: HOOK_TOKEN })
  if (!noPostgres) {
    await createCredential(controller.ctx, undefined, {
      type: 'database',
      name: 'pg-local',
      driver: 'postgres',
      host: '127.0.0.1',
      port: 5432,
      database: 'postgres',
      username: 'postgres',
      // Required by the schema; the local server trusts 127.0.0.1 and ignores it.
      password: 'unused-with-trust',
      tls_mode: 'disable',
    })
  }
  if (!noMariadb) {
    mariadb = await createMariadbDatabase()
    await createCredential(controller.ctx, undefined, {
      type: 'database',
      name: 'maria-local',
      driver: 'mysql',
      host: mariadb.host,
      port: mariadb.port,
      database: mariadb.database,
      username: mariadb.user,
      password: mariadb.password,
      tls_mode: 'disable',
    })
  }
  if (!noSnmpd) {
    snmpd = await startSnmpd()
    await createCredential(controller.ctx, undefined, { type: 'snmp', name: 'snmp-local', version: 'v2c', community: snmpd.community })
    // SNMP only uses the target's address; the SSH connection is never opened.
    await createTarget(controller.ctx, {
      name: 'snmp-peer',
      address: '127.0.0.1',
      os_type: 'network',
      enabled: true,
      tags: {},
      connection: { type: 'ssh', port: 22, credential_id: null, host_key_policy: 'tofu', jump: [] },
    })
  }
})

after(async () => {
  await controller?.stop()
  await mariadb?.drop()
  await snmpd?.stop()
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
})

/** Creates and runs a job, waits for it; returns the run, its only step run and that step's output. */
async function runJob(definition: Record<string, unknown>, request: Record<string, unknown> = {}) {
  const jobId = await api.createJob(definition)
  const runId = await api.run(jobId, request)
  const run = await api.waitForRun(runId, 30_000)
  const steps = await api.steps(runId)
  assert.equal(steps.length, 1, JSON.stringify(steps))
  const step = steps[0]!
  const output = await api.output(runId, step.id)
  return { run, step, output }
}

function assertSucceeded(run: any, step: any, output: string): void {
  assert.equal(run.status, 'succeeded', JSON.stringify({ run, step, output }))
  assert.equal(step.status, 'succeeded', JSON.stringify({ step, output }))
}

test('http.get: the reply status and body are stored, and a header templated from a parameter reaches the server', async () => {
  const trace = `trace-${randomBytes(6).toString('hex')}`
  const { run, step, output } = await runJob(
    {
      name: 'http probe',
      parameters: [{ name: 'trace', required: true }],
      steps: [{ id: 'probe', type: 'http.get', url: `${base}/status`, headers: { 'x-trace-id': '{{ params.trace }}' } }],
    },
    { parameters: { trace } },
  )
  assertSucceeded(run, step, output)
  assert.equal(step.step_type, 'http.get')
  assert.equal(step.transport, 'controller')
  assert.equal(step.result.status, 200)
  assert.equal(step.result.body, 'all systems nominal\n')
  assert.match(output, /GET http:\/\/127\.0\.0\.1:\d+\/status → HTTP 200/)
  assert.ok(output.includes('all systems nominal'), output)
  assert.equal(step.rendered.headers['x-trace-id'], trace)
  const requests = seen.get('/status') ?? []
  assert.equal(requests.length, 1)
  assert.equal(requests[0]!.headers['x-trace-id'], trace)
})

test('http.get: a credential secret the server echoes back is masked in the stored result, output and error', async () => {
  const token = `echoed-${randomBytes(10).toString('hex')}`
  await createCredential(controller.ctx, undefined, { type: 'http_auth', name: 'echo-bearer', scheme: 'bearer', token })
  const { step, output } = await runJob({ name: 'echo probe', steps: [{ id: 'echo', type: 'http.get', url: `${base}/echo`, credential: 'echo-bearer' }] })
  assert.equal(step.status, 'succeeded')
  assert.equal((seen.get('/echo') ?? [])[0]?.headers.authorization, `Bearer ${token}`, 'the server got the real token')
  assert.deepEqual(step.result.body, { you_sent: 'Bearer ****' })
  assert.ok(!output.includes(token) && output.includes('****'), output)
  const failed = await runJob({ name: 'echo failing probe', steps: [{ id: 'echo', type: 'http.get', url: `${base}/echo-fail`, credential: 'echo-bearer' }] })
  assert.equal(failed.step.status, 'failed')
  assert.ok(!JSON.stringify(failed.step).includes(token), JSON.stringify(failed.step))
})

test('webhook.call: signed with a secret from an http_auth credential, verified by the receiver; the secret is never stored', async () => {
  const { run, step, output } = await runJob({
    name: 'signed hook',
    steps: [
      {
        id: 'notify',
        type: 'webhook.call',
        url: `${base}/hook`,
        payload: { event: 'deploy', ok: true },
        signing_secret: '{{ secret "hook" "token" }}',
        attempts: 1,
      },
    ],
  })
  assertSucceeded(run, step, output)
  assert.equal(step.result.status, 200)
  assert.equal(step.result.attempts, 1)
  assert.deepEqual(step.result.body, { verified: true })
  const requests = seen.get('/hook') ?? []
  assert.equal(requests.length, 1)
  assert.deepEqual(JSON.parse(requests[0]!.body), { event: 'deploy', ok: true })
  assert.match(String(requests[0]!.headers['x-opsconductor-signature']), /^sha256=[0-9a-f]{64}$/)
  assert.ok(!JSON.stringify(step.rendered).includes(HOOK_TOKEN), `rendered: ${JSON.stringify(step.rendered)}`)
  assert.ok(!JSON.stringify(step).includes(HOOK_TOKEN), 'nowhere in the step run')
  assert.ok(!output.includes(HOOK_TOKEN), output)
  assert.equal(step.rendered.signing_secret, '****', 'the rendered input shows the secret masked')
})

test('sql.query on PostgreSQL binds params: select $1::int + 1 with [41] gives n = 42', { skip: noPostgres ?? false }, async () => {
  const { run, step, output } = await runJob({
    name: 'pg query',
    steps: [{ id: 'q', type: 'sql.query', credential: 'pg-local', query: 'select $1::int + 1 as n', params: [41] }],
  })
  assertSucceeded(run, step, output)
  assert.deepEqual(step.result.rows, [{ n: 42 }])
  assert.deepEqual(step.result.columns, ['n'])
  assert.match(output, /^n\s*\n-+\n42\s*$/m)
})

test('sql.query on MariaDB binds params: select ? + 1 with [41] gives n = 42', { skip: noMariadb ?? false }, async () => {
  const { run, step, output } = await runJob({
    name: 'maria query',
    steps: [{ id: 'q', type: 'sql.query', credential: 'maria-local', query: 'select ? + 1 as n, current_user() as who', params: [41] }],
  })
  assertSucceeded(run, step, output)
  assert.equal(step.result.rows.length, 1)
  assert.equal(step.result.rows[0].n, 42)
  assert.match(step.result.rows[0].who, new RegExp(`^${mariadb!.user}@`))
  assert.ok(!JSON.stringify(step).includes(mariadb!.password) && !output.includes(mariadb!.password))
})

test('snmp.get against snmpd via a target address reads sysName', { skip: noSnmpd ?? false }, async () => {
  const { run, step, output } = await runJob({
    name: 'snmp sysName',
    targets: 'name:snmp-peer',
    steps: [{ id: 'sys', type: 'snmp.get', credential: 'snmp-local', oids: [SNMP_SYS_NAME_OID], port: snmpd!.port, timeout_ms: 2000 }],
  })
  assertSucceeded(run, step, output)
  assert.equal(step.target_name, 'snmp-peer')
  assert.deepEqual(step.result.varbinds, [{ oid: SNMP_SYS_NAME_OID, type: 'OctetString', value: snmpd!.sysName }])
  assert.ok(output.includes(`${SNMP_SYS_NAME_OID} = OctetString: ${snmpd!.sysName}`), output)
  assert.ok(!JSON.stringify(step).includes(snmpd!.community), 'the community is never stored')
})

test('wait: 0.5 s succeeds and the step lasts at least 500 ms', async () => {
  const { run, step, output } = await runJob({ name: 'half a second', steps: [{ id: 'pause', type: 'wait', seconds: 0.5 }] })
  assertSucceeded(run, step, output)
  assert.ok(step.duration_ms >= 500, `step took ${step.duration_ms} ms`)
  assert.ok(run.duration_ms >= 500, `run took ${run.duration_ms} ms`)
})
