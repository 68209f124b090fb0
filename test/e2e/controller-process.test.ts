import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import { createPostgresDatabase, dropPostgresDatabase, testBackend } from '../harness/db.ts'
import { runCli, startControllerProcess, tempDataDir, type ControllerProcess } from '../harness/controller-process.ts'
import { shippedMigrationCount } from '../../controller/src/db/migrate.ts'
import { grpcHealthCheck } from '../harness/grpc.ts'
import { httpsRequest } from '../harness/https.ts'

/** Polls until the check passes; failures name what was last seen, never a timing assertion. */
async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: T | Error | undefined
  while (Date.now() < deadline) {
    try {
      last = await fn()
      if (ok(last)) return last
    } catch (err) {
      last = err as Error
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`condition not met; last result: ${last instanceof Error ? last.message : JSON.stringify(last)}`)
}

const running: ControllerProcess[] = []
after(async () => {
  for (const c of running) await c.stop('SIGKILL')
})

async function start(opts: Parameters<typeof startControllerProcess>[0] = {}) {
  const c = await startControllerProcess(opts)
  running.push(c)
  return c
}

async function versionOf(c: ControllerProcess) {
  return (await httpsRequest(`${c.baseUrl}/api/v1/version`, { ca: c.ca })).json<{ installation_id: string; database: string }>()
}

async function checkServing(c: ControllerProcess) {
  const health = await httpsRequest(`${c.baseUrl}/healthz`, { ca: c.ca })
  assert.equal(health.status, 200)
  const ready = await eventually(() => httpsRequest(`${c.baseUrl}/readyz`, { ca: c.ca }), (r) => r.status === 200)
  assert.deepEqual(ready.json(), { status: 'ready', checks: { database: 'ok', migrations: 'ok' } })
  // The gRPC listener is verified against the CA the controller wrote into its data dir.
  assert.equal(await eventually(() => grpcHealthCheck(`localhost:${c.grpcPort}`, c.ca), (s) => s === 'SERVING'), 'SERVING')
  const missing = await httpsRequest(`${c.baseUrl}/api/v1/nope`, { ca: c.ca })
  assert.equal(missing.status, 404)
  assert.equal(missing.json<{ error: { code: string } }>().error.code, 'NOT_FOUND')
}

describe('embedded database (no DATABASE_URL)', () => {
  test('serves HTTPS probes and gRPC health, then restarts on the same data dir with the same CA and data', async () => {
    const dataDir = tempDataDir()
    const first = await start({ dataDir })
    await checkServing(first)
    const before = await versionOf(first)
    assert.equal(before.database, 'pglite')
    const ca = readFileSync(path.join(dataDir, 'tls', 'ca.crt'), 'utf8')
    const stopped = await first.stop('SIGTERM')
    assert.equal(stopped.code, 0)
    assert.ok(first.logs.some((l) => l.msg === 'controller.stopped'))

    const second = await start({ dataDir })
    assert.equal(second.ca, ca)
    await checkServing(second)
    assert.equal((await versionOf(second)).installation_id, before.installation_id)
    assert.ok(!second.logs.some((l) => l.msg === 'tls.ca_created'))
    assert.equal((await second.stop('SIGINT')).code, 0)
  })

  test('a second controller on the same data dir is refused with one line', async () => {
    const c = await start()
    const other = await runCli(['controller'], { OPSC_DATA_DIR: c.dataDir, OPSC_HTTP_PORT: '0', OPSC_GRPC_PORT: '0', OPSC_BIND: '127.0.0.1' })
    assert.equal(other.code, 1)
    assert.match(other.stderr, /^opsconductor: OPSC_DATA_DIR: .* is in use by another controller \(pid \d+\)\n$/)
    assert.equal((await c.stop()).code, 0)
  })
})

describe('Postgres (DATABASE_URL)', () => {
  test('migrates a fresh database at start, serves, and keeps its data across a restart', async (t) => {
    if ((await testBackend()) !== 'postgres') return t.skip('Postgres is not reachable')
    const url = await createPostgresDatabase({ migrated: false })
    try {
      const dataDir = tempDataDir()
      const first = await start({ dataDir, env: { DATABASE_URL: url } })
      await checkServing(first)
      const before = await versionOf(first)
      assert.equal(before.database, 'postgres')
      assert.equal((await first.stop()).code, 0)
      const second = await start({ dataDir, env: { DATABASE_URL: url } })
      assert.equal((await versionOf(second)).installation_id, before.installation_id)
      assert.equal((await second.stop()).code, 0)
    } finally {
      await dropPostgresDatabase(url)
    }
  })

  test('readyz turns 503 when the database disappears, and recovers nothing by crashing', async (t) => {
    if ((await testBackend()) !== 'postgres') return t.skip('Postgres is not reachable')
    const url = await createPostgresDatabase({ migrated: false })
    const c = await start({ env: { DATABASE_URL: url } })
    await dropPostgresDatabase(url)
    // A failure names what the controller said (a crash shows its last words).
    const res = await eventually(() => httpsRequest(`${c.baseUrl}/readyz`, { ca: c.ca }), (r) => r.status === 503).catch((err: Error) => {
      throw new Error(`${err.message}; controller stderr: ${c.stderr().slice(-4000)}`)
    })
    assert.equal(res.json<{ status: string }>().status, 'not_ready')
    assert.equal((await httpsRequest(`${c.baseUrl}/healthz`, { ca: c.ca })).status, 200)
    assert.equal(await eventually(() => grpcHealthCheck(`localhost:${c.grpcPort}`, c.ca), (s) => s === 'NOT_SERVING'), 'NOT_SERVING')
    assert.equal((await c.stop()).code, 0)
  })

  test('`opsconductor migrate` brings a fresh database up to date', async (t) => {
    if ((await testBackend()) !== 'postgres') return t.skip('Postgres is not reachable')
    const url = await createPostgresDatabase({ migrated: false })
    try {
      const res = await runCli(['migrate'], { DATABASE_URL: url })
      assert.equal(res.code, 0, res.stderr)
      assert.match(res.stdout, new RegExp(`^database is at migration ${shippedMigrationCount()} \\(postgres://`))
    } finally {
      await dropPostgresDatabase(url)
    }
  })
})

describe('start-up failures are one clear line', () => {
  test('an invalid port exits 2 naming OPSC_HTTP_PORT, without a stack trace', async () => {
    const res = await runCli(['controller'], { OPSC_HTTP_PORT: 'abc', OPSC_DATA_DIR: tempDataDir() })
    assert.equal(res.code, 2)
    assert.equal(res.stderr, 'opsconductor: OPSC_HTTP_PORT must be a port number from 0 to 65535 (got "abc")\n')
    assert.equal(res.stdout, '')
  })

  test('an unreachable database exits 1 with the reason and no password or stack trace', async () => {
    const res = await runCli(['controller'], { DATABASE_URL: 'postgres://ops:pw-secret@127.0.0.1:1/none', OPSC_DATA_DIR: tempDataDir() })
    assert.equal(res.code, 1)
    const lines = res.stderr.trim().split('\n')
    assert.equal(lines.length, 1)
    assert.match(lines[0]!, /^opsconductor: cannot reach the database \(postgres:\/\/ops:\*\*\*@127\.0\.0\.1:1\/none\): ECONNREFUSED/)
    assert.ok(!(res.stdout + res.stderr).includes('pw-secret'))
    assert.ok(!res.stderr.includes('    at '))
  })

  test('--help lists the subcommands', async () => {
    const res = await runCli(['--help'])
    assert.equal(res.code, 0)
    for (const cmd of ['controller', 'migrate', 'version']) assert.match(res.stdout, new RegExp(`^  ${cmd}\\b`, 'm'))
  })
})

describe('master key', () => {
  test('a different master key stops the start with one clear line', async () => {
    const dataDir = tempDataDir()
    const keyA = Buffer.alloc(32, 1).toString('base64')
    const keyB = Buffer.alloc(32, 2).toString('base64')
    const first = await start({ dataDir, env: { OPSC_MASTER_KEY: keyA } })
    assert.equal((await first.stop()).code, 0)
    const wrong = await runCli(['controller'], { OPSC_DATA_DIR: dataDir, OPSC_MASTER_KEY: keyB, OPSC_HTTP_PORT: '0', OPSC_GRPC_PORT: '0', OPSC_BIND: '127.0.0.1' })
    assert.equal(wrong.code, 2)
    assert.match(wrong.stderr, /^opsconductor: OPSC_MASTER_KEY: cannot decrypt credentials with the configured master key \(key id [0-9a-f]{16}\)\n$/)
    assert.ok(!wrong.stderr.includes(keyB) && !wrong.stdout.includes(keyB))
  })
})
