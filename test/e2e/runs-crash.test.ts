import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { sql } from 'drizzle-orm'
import { createEnrollmentToken } from '../../controller/src/agents/enrollment.ts'
import { rowsOf } from '../../controller/src/db/migrate.ts'
import { AgentProcess, agentCli, freePort, waitUntil } from '../harness/agents.ts'
import { createTestContext, type TestContext } from '../harness/context.ts'
import { startControllerProcess, tempDataDir, type ControllerProcess } from '../harness/controller-process.ts'
import { testBackend } from '../harness/db.ts'
import { agentTargetId, RunsApi } from '../harness/runs.ts'
import { sshdUnavailable, startSshd } from '../harness/sshd.ts'
import { createCredential } from '../../controller/src/credentials/service.ts'
import { createTarget } from '../../controller/src/targets/service.ts'
import { execFileSync } from 'node:child_process'

// kill -9 of a controller process needs a database that outlives it and another process can open:
// the shared Postgres (the embedded PGlite belongs to the killed process).
const skip = (await testBackend()) !== 'postgres' ? 'needs Postgres' : false

let t: TestContext
let controller: ControllerProcess
const agents: AgentProcess[] = []
const targetIds: string[] = []
const masterKey = randomBytes(32)
let env: Record<string, string>
const work = mkdtempSync(path.join(tmpdir(), 'opsc-crash-'))

before(async () => {
  if (skip) return
  t = await createTestContext({ masterKey })
  env = {
    DATABASE_URL: t.testDb.url!,
    OPSC_MASTER_KEY: masterKey.toString('base64'),
    OPSC_GRPC_PORT: String(await freePort()),
    OPSC_WORK_LEASE_MS: '2000',
    OPSC_AGENT_HEARTBEAT_MS: '500',
    OPSC_AGENT_LOST_GRACE_MS: '60000',
  }
  controller = await startControllerProcess({ dataDir: tempDataDir(), env })
  const fingerprint = String(controller.logs.find((l) => l.msg === 'controller.started')!.caFingerprint)
  for (let i = 0; i < 2; i++) {
    const { token } = await createEnrollmentToken(t.ctx, undefined, { expires_in_seconds: 600, max_uses: 1 })
    const stateDir = path.join(mkdtempSync(path.join(tmpdir(), 'opsc-agent-')), 'state')
    const res = await agentCli(['enroll', '--controller', `127.0.0.1:${controller.grpcPort}`, '--token', token, '--ca-fingerprint', fingerprint, '--state-dir', stateDir])
    assert.equal(res.code, 0, res.stderr)
    const agentId = /enrolled as agent ([0-9a-f-]{36})/.exec(res.stdout)![1]!
    const a = AgentProcess.start(stateDir)
    agents.push(a)
    await a.waitFor('agent.session_ready')
    targetIds.push(await agentTargetId(t.ctx, agentId))
  }
})
after(async () => {
  for (const a of agents) await a.kill('SIGTERM')
  await controller?.stop('SIGKILL')
  await t?.close()
})

test('kill -9 of the controller mid-run: the run completes, every step run once, output whole', { skip }, async () => {
  const api = await RunsApi.as(t.ctx)
  const marks = path.join(work, 'executions')
  const jobId = await api.createJob({
    name: 'survives a controller crash',
    targets: targetIds.map((id) => `id:${id}`).join(' | '),
    steps: [
      { id: 'count', type: 'exec', shell: 'bash', command: `echo "$$ {{ target.name }} count" >> ${marks}; for i in $(seq 1 60); do echo line-$i; sleep 0.1; done` },
      { id: 'after', type: 'exec', shell: 'bash', command: `echo "$$ {{ target.name }} after" >> ${marks}; echo second step` },
    ],
  })
  const runId = await api.run(jobId)
  const outputChunks = async () => Number(rowsOf<{ n: number }>(await t.ctx.db.execute(sql`select count(*)::int as n from agent_output o join step_run s on s.id = o.assignment_id where s.run_id = ${runId}`))[0]!.n)
  await waitUntil(async () => (await outputChunks()) >= 4, 30_000, 'output flowing')

  await controller.stop('SIGKILL')
  // Same data dir: the agents pinned its CA.
  controller = await startControllerProcess({ dataDir: controller.dataDir, env })

  const run = await api.waitForRun(runId, 90_000)
  assert.equal(run.status, 'succeeded', JSON.stringify(run))
  const steps = await api.steps(runId)
  assert.equal(steps.length, 4, 'one step run per (step, target): no second attempt')
  for (const s of steps) {
    assert.equal(s.status, 'succeeded')
    assert.equal(s.attempt, 1)
    const expected = s.step_id === 'count' ? Array.from({ length: 60 }, (_, i) => `line-${i + 1}\n`).join('') : 'second step\n'
    assert.equal(await api.output(runId, s.id), expected, `output of ${s.step_id} on ${s.target_name}: nothing lost, nothing twice`)
  }
  const executions = readFileSync(marks, 'utf8').trim().split('\n')
  assert.equal(executions.length, 4, `each step ran exactly once on each target:\n${executions.join('\n')}`)
  const assignments = rowsOf<{ n: number }>(await t.ctx.db.execute(sql`select count(*)::int as n from agent_assignment where run_id = ${runId}`))[0]!.n
  assert.equal(Number(assignments), 4, 'no step was dispatched twice')
})

const sleepers = (user: string): string => {
  try {
    return execFileSync('pgrep', ['-u', user, '-x', 'sleep'], { encoding: 'utf8' }).trim()
  } catch {
    return ''
  }
}

test('kill -9 mid SSH step: the controller that takes over kills the remote process group', { skip: skip || sshdUnavailable() }, async () => {
  const sshd = await startSshd()
  try {
    const cred = await createCredential(t.ctx, undefined, { type: 'ssh_password', name: 'crash-ssh', username: sshd.user, password: sshd.password })
    const target = await createTarget(t.ctx, {
      name: 'crash-ssh-host',
      address: sshd.host,
      os_type: 'linux',
      enabled: true,
      tags: {},
      connection: { type: 'ssh', port: sshd.port, credential_id: cred.id, host_key_policy: 'tofu', jump: [] },
    })
    const api = await RunsApi.as(t.ctx)
    const jobId = await api.createJob({ name: 'orphaned by a crash', targets: `id:${target.id}`, steps: [{ id: 'long', type: 'ssh.exec', command: 'sleep 600; echo done' }] })
    const runId = await api.run(jobId)
    const remote = async () => rowsOf<{ remote: unknown }>(await t.ctx.db.execute(sql`select remote from step_run where run_id = ${runId}`))[0]?.remote
    await waitUntil(async () => Boolean(await remote()), 30_000, 'the remote process group recorded')
    assert.ok(sleepers(sshd.user), 'the step runs on the host')

    await controller.stop('SIGKILL')
    assert.ok(sleepers(sshd.user), 'a dead controller leaves the remote command running')
    controller = await startControllerProcess({ dataDir: controller.dataDir, env })

    const run = await api.waitForRun(runId, 60_000)
    assert.equal((await api.steps(runId))[0].status, 'interrupted', JSON.stringify(run))
    await waitUntil(async () => sleepers(sshd.user) === '', 30_000, 'the remote sleep killed by the controller that took over')
    // The sleep dies on TERM while the kill script is still confirming; the log line follows.
    await waitUntil(async () => controller.logs.some((l) => l.msg === 'runs.remote_cleaned_up'), 30_000, 'the clean-up logged')
  } finally {
    await sshd.stop()
  }
})
