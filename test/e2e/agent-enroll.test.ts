import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { REPO_ROOT, startControllerProcess, type ControllerProcess } from '../harness/controller-process.ts'
import { createPostgresDatabase, dropPostgresDatabase, testBackend } from '../harness/db.ts'
import { httpsRequest } from '../harness/https.ts'

const AGENT_BIN = path.join(REPO_ROOT, 'agent/bin/opsconductor-agent.js')
const ADMIN_PASSWORD = 'e2e enrolment passphrase'

let controller: ControllerProcess
let databaseUrl: string | undefined
let adminToken: string

function api<T = any>(method: string, url: string, body?: unknown) {
  return httpsRequest(`${controller.baseUrl}${url}`, {
    ca: controller.ca,
    method,
    headers: { authorization: `Bearer ${adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  }).then((r) => ({ status: r.status, body: r.json<T>() }))
}

function agentCli(args: string[]) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const proc = spawn(process.execPath, [AGENT_BIN, ...args], { cwd: REPO_ROOT })
    let stdout = ''
    let stderr = ''
    proc.stdout.on('data', (d) => (stdout += d))
    proc.stderr.on('data', (d) => (stderr += d))
    proc.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

const stateDir = () => path.join(mkdtempSync(path.join(tmpdir(), 'opsc-agent-state-')), 'state')

before(async () => {
  const env: Record<string, string> = { OPSC_ADMIN_PASSWORD: ADMIN_PASSWORD }
  if ((await testBackend()) === 'postgres') {
    databaseUrl = await createPostgresDatabase({ migrated: false })
    env.DATABASE_URL = databaseUrl
  }
  controller = await startControllerProcess({ env })
  const login = await httpsRequest(`${controller.baseUrl}/api/v1/auth/login`, {
    ca: controller.ca,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
  })
  adminToken = login.json<{ access_token: string }>().access_token
})
after(async () => {
  await controller?.stop()
  if (databaseUrl) await dropPostgresDatabase(databaseUrl)
})

test('an admin token enrols a real agent process over TLS pinned by fingerprint; the token then is spent', async () => {
  const created = await api('POST', '/api/v1/agents/enrollment-tokens', { max_uses: 1, tags: { env: 'e2e' } })
  assert.equal(created.status, 201, JSON.stringify(created.body))
  const { token, ca_fingerprint, commands } = created.body
  assert.match(commands.linux, new RegExp(`--ca-fingerprint ${ca_fingerprint}`))
  const controllerAddress = `127.0.0.1:${controller.grpcPort}`

  const dir = stateDir()
  const wrongPin = await agentCli(['enroll', '--controller', controllerAddress, '--token', token, '--ca-fingerprint', `sha256:${'ab'.repeat(32)}`, '--state-dir', dir])
  assert.equal(wrongPin.code, 1)
  assert.match(wrongPin.stderr, /^opsconductor-agent: the controller's CA does not match --ca-fingerprint/)
  assert.equal(existsSync(dir), false, 'nothing written')

  const ok = await agentCli(['enroll', '--controller', controllerAddress, '--token', token, '--ca-fingerprint', ca_fingerprint, '--state-dir', dir])
  assert.equal(ok.code, 0, ok.stderr)
  const agentId = /^enrolled as agent ([0-9a-f-]{36});/.exec(ok.stdout)![1]!
  assert.deepEqual(readdirSync(dir).sort(), ['agent.json', 'box.key', 'ca.crt', 'identity.key'])
  assert.equal(statSync(path.join(dir, 'identity.key')).mode & 0o777, 0o600)

  const agents = await api('GET', '/api/v1/agents')
  const agent = agents.body.items.find((a: { id: string }) => a.id === agentId)
  assert.ok(agent, JSON.stringify(agents.body))
  const targets = await api('GET', '/api/v1/targets?connection=agent&tag=env=e2e')
  assert.equal(targets.body.items.length, 1)
  assert.equal(targets.body.items[0].connection.agent_id, agentId)

  const again = await agentCli(['enroll', '--controller', controllerAddress, '--token', token, '--ca-fingerprint', ca_fingerprint, '--state-dir', stateDir()])
  assert.equal(again.code, 1)
  assert.match(again.stderr, /^opsconductor-agent: enrollment refused: /)
  assert.equal((await api('GET', '/api/v1/agents')).body.items.length, 1)
})
