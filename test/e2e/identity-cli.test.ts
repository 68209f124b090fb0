import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { after, test } from 'node:test'
import postgres from 'postgres'
import { CONTROLLER_BIN, REPO_ROOT, runCli, startControllerProcess, tempDataDir, type ControllerProcess } from '../harness/controller-process.ts'
import { createPostgresDatabase, dropPostgresDatabase, testBackend } from '../harness/db.ts'
import { httpsRequest } from '../harness/https.ts'

const running: ControllerProcess[] = []
const databases: string[] = []
after(async () => {
  for (const c of running) await c.stop('SIGKILL')
  for (const url of databases) await dropPostgresDatabase(url)
})

/** Settings for a controller and the CLI on one database: Postgres when reachable, else PGlite in the data dir. */
async function installation(): Promise<Record<string, string>> {
  const env: Record<string, string> = { OPSC_DATA_DIR: tempDataDir() }
  if ((await testBackend()) === 'postgres') {
    const url = await createPostgresDatabase({ migrated: false })
    databases.push(url)
    env.DATABASE_URL = url
  }
  return env
}

function login(c: ControllerProcess, username: string, password: string) {
  return httpsRequest(`${c.baseUrl}/api/v1/auth/login`, {
    ca: c.ca,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  })
}

function cliWithStdin(args: string[], env: Record<string, string>, stdin: string) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const proc = spawn(process.execPath, [CONTROLLER_BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env } })
    let stdout = ''
    let stderr = ''
    proc.stdout.on('data', (d) => (stdout += d))
    proc.stderr.on('data', (d) => (stderr += d))
    proc.on('exit', (code) => resolve({ code, stdout, stderr }))
    proc.stdin.end(stdin)
  })
}

test('first start prints the initial admin password once and stores it 0600; admin/admin123 does not work', async () => {
  const env = await installation()
  const c = await startControllerProcess({ dataDir: env.OPSC_DATA_DIR, env })
  running.push(c)
  const file = path.join(c.dataDir, 'initial-admin-password')
  const password = readFileSync(file, 'utf8').trim()
  assert.equal(statSync(file).mode & 0o777, 0o600)
  assert.ok(password.length >= 20)
  assert.equal((await login(c, 'admin', 'admin123')).status, 401)
  const ok = await login(c, 'admin', password)
  assert.equal(ok.status, 200)
  assert.equal(ok.json<{ must_change_password: boolean }>().must_change_password, true)
  // The password appears once, as the plain line, and in no structured log record.
  assert.ok(c.logs.every((l) => !JSON.stringify(l).includes(password)))
  assert.ok(c.logs.some((l) => l.msg === 'auth.initial_admin_created'))
  await c.stop()
  const again = await startControllerProcess({ dataDir: env.OPSC_DATA_DIR, env })
  running.push(again)
  assert.ok(!again.logs.some((l) => l.msg === 'auth.initial_admin_created'))
  await again.stop()
})

test('OPSC_ADMIN_PASSWORD sets the first password; a weak one is refused at start', async () => {
  const weak = await installation()
  const refused = await runCli(['controller'], { ...weak, OPSC_ADMIN_PASSWORD: 'admin123', OPSC_HTTP_PORT: '0', OPSC_GRPC_PORT: '0' })
  assert.equal(refused.code, 2)
  assert.match(refused.stderr, /^opsconductor: OPSC_ADMIN_PASSWORD: must be at least 12 characters\n$/)

  const env: Record<string, string> = { ...(await installation()), OPSC_ADMIN_PASSWORD: 'unattended install secret' }
  const c = await startControllerProcess({ dataDir: env.OPSC_DATA_DIR, env })
  running.push(c)
  assert.equal((await login(c, 'admin', 'unattended install secret')).status, 200)
  assert.ok(!c.logs.some((l) => JSON.stringify(l).includes('unattended install secret')))
  await c.stop()
})

test('`admin create` and `admin reset-password` work against the configured database', async () => {
  const env = await installation()
  const created = await cliWithStdin(['admin', 'create', '--username', 'ops-alice', '--role', 'operator', '--password-stdin'], env, 'alice picked this phrase\n')
  assert.equal(created.code, 0, created.stderr)
  assert.equal(created.stdout, 'created operator ops-alice\n')
  const duplicate = await cliWithStdin(['admin', 'create', '--username', 'ops-alice', '--password-stdin'], env, 'another long phrase\n')
  assert.equal(duplicate.code, 1)
  assert.match(duplicate.stderr, /^opsconductor: username ops-alice is taken\n$/)
  const generated = await runCli(['admin', 'reset-password', 'ops-alice'], env)
  assert.equal(generated.code, 0, generated.stderr)
  const newPassword = /new password \(must be changed at first sign-in\): (\S+)/.exec(generated.stdout)![1]!
  const missing = await runCli(['admin', 'reset-password', 'nobody'], env)
  assert.equal(missing.code, 1)
  assert.match(missing.stderr, /user nobody not found/)

  const c = await startControllerProcess({ dataDir: env.OPSC_DATA_DIR, env })
  running.push(c)
  assert.equal((await login(c, 'ops-alice', 'alice picked this phrase')).status, 401)
  const ok = await login(c, 'ops-alice', newPassword)
  assert.equal(ok.status, 200)
  assert.equal(ok.json<{ user: { role: string } }>().user.role, 'operator')
  await c.stop()
})

test('`audit verify` passes on an intact log and names the row edited behind its back', async (t) => {
  if ((await testBackend()) !== 'postgres') return t.skip('edits the table through a second connection (Postgres only)')
  const env = await installation()
  const c = await startControllerProcess({ dataDir: env.OPSC_DATA_DIR, env })
  running.push(c)
  await login(c, 'admin', 'wrong password one')
  await login(c, 'admin', 'wrong password two')
  await c.stop()
  const intact = await runCli(['audit', 'verify'], env)
  assert.equal(intact.code, 0, intact.stderr)
  assert.match(intact.stdout, /^audit chain intact: \d+ rows/)

  const sql = postgres(env.DATABASE_URL!, { max: 1, onnotice: () => {} })
  const [row] = await sql<{ id: string }[]>`select id from audit_log where action = 'auth.login' order by id desc limit 1`
  await sql`update audit_log set outcome = 'success' where id = ${row!.id}`
  await sql.end()
  const broken = await runCli(['audit', 'verify'], env)
  assert.equal(broken.code, 1)
  assert.match(broken.stdout, new RegExp(`^audit chain broken at row ${row!.id}: `))
})
