import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { after, before, test } from 'node:test'
import { createCredential } from '../../controller/src/credentials/service.ts'
import { createTarget } from '../../controller/src/targets/service.ts'
import { AgentProcess, enrollAgent, TestController, waitUntil } from '../harness/agents.ts'
import { agentTargetId, RunsApi } from '../harness/runs.ts'
import { startSshd, sshdUnavailable, type TestSshd } from '../harness/sshd.ts'

let controller: TestController
const agents: AgentProcess[] = []
const targetIds: string[] = []
let api: RunsApi
let sshd: TestSshd | undefined
let sshTargetId: string | undefined
const noSshd = sshdUnavailable()
const work = mkdtempSync(path.join(tmpdir(), 'opsc-runs-'))

before(async () => {
  controller = await TestController.start({ OPSC_AGENT_HEARTBEAT_MS: '500', OPSC_AGENT_LOST_GRACE_MS: '3000', OPSC_WORK_LEASE_MS: '3000' })
  for (let i = 0; i < 3; i++) {
    const enrolled = await enrollAgent(controller)
    const a = AgentProcess.start(enrolled.stateDir)
    agents.push(a)
    await a.waitFor('agent.session_ready')
    targetIds.push(await agentTargetId(controller.ctx, enrolled.agentId))
  }
  api = await RunsApi.as(controller.ctx)
  if (!noSshd) {
    sshd = await startSshd()
    const cred = await createCredential(controller.ctx, undefined, { type: 'ssh_password', name: 'runs-ssh', username: sshd.user, password: sshd.password })
    const t = await createTarget(controller.ctx, {
      name: 'ssh-host',
      address: sshd.host,
      os_type: 'linux',
      enabled: true,
      tags: {},
      connection: { type: 'ssh', port: sshd.port, credential_id: cred.id, host_key_policy: 'tofu', jump: [] },
    })
    sshTargetId = t.id
  }
})
after(async () => {
  for (const a of agents) await a.kill('SIGTERM')
  await controller?.stop()
  await sshd?.stop()
})

/** The 3 agent targets and, where sshd can run, 1 SSH target. */
const allTargets = () => [...targetIds, ...(sshTargetId ? [sshTargetId] : [])]
const targets = () => allTargets().map((id) => `id:${id}`).join(' | ')

test('an exec step over 3 agents and 1 SSH target streams output live (before the step ends) and succeeds', async () => {
  const jobId = await api.createJob({
    name: 'live output',
    targets: targets(),
    steps: [{ id: 'hello', type: 'exec', shell: 'bash', command: 'echo "early {{ target.name }}"; sleep 2; echo late' }],
  })
  const runId = await api.run(jobId)
  const sse = await api.events(runId)
  await sse.done
  if (process.env.DEBUG_SSE) for (const e of sse.events) console.log(e.receivedAt, e.id, e.event, JSON.stringify(e.data).slice(0, 120))
  const firstEarly = sse.events.find((e) => e.event === 'output' && Buffer.from(e.data.data, 'base64').toString().includes('early'))
  assert.ok(firstEarly, 'output arrived')
  const stepEnd = sse.events.find((e) => e.event === 'step' && e.data.step_run_id === firstEarly.data.step_run_id && e.data.status === 'succeeded')
  assert.ok(stepEnd && firstEarly.id < stepEnd.id, 'the output event came before the step finished')
  assert.ok(stepEnd.receivedAt - firstEarly.receivedAt >= 1000, 'and it was delivered while the step was still running')
  assert.equal(sse.events.at(-1)?.event, 'end')
  assert.equal(sse.events.at(-1)?.data.status, 'succeeded')
  const run = await api.waitForRun(runId)
  assert.equal(run.status, 'succeeded')
  assert.equal(run.target_counts.succeeded, allTargets().length)
  const steps = await api.steps(runId)
  assert.equal(steps.length, allTargets().length)
  if (sshTargetId) assert.equal(steps.find((s) => s.target_id === sshTargetId)?.transport, 'ssh')
  for (const s of steps) {
    const early = sse.events.find((e) => e.event === 'output' && e.data.step_run_id === s.id)
    const end = sse.events.find((e) => e.event === 'step' && e.data.step_run_id === s.id && e.data.status === 'succeeded')
    assert.ok(early && end && end.receivedAt - early.receivedAt >= 1000, `live output before the end on ${s.target_name} (${s.transport})`)
  }
  for (const s of steps) {
    assert.equal(s.status, 'succeeded')
    assert.equal(s.exit_code, 0)
    assert.equal(await api.output(runId, s.id), `early ${s.target_name}\nlate\n`)
  }
  // Resuming after an event id replays only what came after it.
  const resumed = await api.events(runId, firstEarly.id)
  await resumed.done
  assert.ok(resumed.events.every((e) => e.id > firstEarly.id || e.event === 'end'))
})

test('cancel stops sleep 600 on every target within 5 s and leaves no process behind', async () => {
  const marker = `600.${Date.now() % 100000}`
  const jobId = await api.createJob({ name: 'long sleep', targets: targets(), steps: [{ type: 'exec', command: `sleep ${marker}` }] })
  const runId = await api.run(jobId)
  await waitUntil(async () => (await api.steps(runId)).every((s) => s.status === 'running'), 30_000, 'all steps running')
  await waitUntil(() => pgrep(`sleep ${marker}`) === allTargets().length, 30_000, 'a sleep running on every target')
  const t0 = Date.now()
  const res = await api.call('POST', `/api/v1/runs/${runId}/cancel`)
  assert.equal(res.status, 202)
  const run = await api.waitForRun(runId, 10_000)
  assert.ok(Date.now() - t0 < 5_000, `cancelled in ${Date.now() - t0} ms`)
  assert.equal(run.status, 'cancelled')
  for (const s of await api.steps(runId)) assert.equal(s.status, 'cancelled')
  await waitUntil(() => pgrep(`sleep ${marker}`) === 0, 5_000, 'no sleep left')
  const again = await api.call('POST', `/api/v1/runs/${runId}/cancel`)
  assert.equal(again.status, 409)
})

test('a parameter quoted with | shell cannot inject a command; the canary survives', async () => {
  const canary = path.join(work, 'canary')
  writeFileSync(canary, 'alive')
  const jobId = await api.createJob({
    name: 'injection',
    parameters: [{ name: 'p', type: 'string', required: true }],
    targets: `id:${targetIds[0]}`,
    steps: [{ type: 'exec', command: 'echo {{ p | shell }}' }],
  })
  const attack = `x; rm -f ${canary}`
  const runId = await api.run(jobId, { parameters: { p: attack } })
  const run = await api.waitForRun(runId)
  assert.equal(run.status, 'succeeded')
  assert.ok(existsSync(canary), 'the canary file survives')
  const [s] = await api.steps(runId)
  assert.equal(await api.output(runId, s.id), `${attack}\n`)
})

test('a secret parameter printed by a step is **** in stored and streamed output, even split across chunks', async () => {
  const secret = 's3cr3t-VALUE-4242'
  const jobId = await api.createJob({
    name: 'secret printer',
    parameters: [{ name: 'token', type: 'secret', required: true }],
    targets: `id:${targetIds[0]}`,
    steps: [{ type: 'exec', shell: 'bash', command: 'printf "a=%s\\n" {{ token | shell }}; printf "b=%s" {{ token | shell }} | head -c 9; sleep 0.4; printf "%s\\n" {{ token | shell }} | tail -c +8' }],
  })
  const runId = await api.run(jobId, { parameters: { token: secret } })
  const sse = await api.events(runId)
  await sse.done
  const run = await api.waitForRun(runId)
  assert.equal(run.status, 'succeeded')
  assert.equal(run.parameters.token, '****')
  const [s] = await api.steps(runId)
  const stored = await api.output(runId, s.id)
  assert.equal(stored, 'a=****\nb=****\n')
  assert.equal(sse.output(s.id), stored)
  assert.ok(!JSON.stringify(s.rendered).includes(secret), 'the rendered command is stored masked')
})

function pgrep(pattern: string): number {
  try {
    return execFileSync('pgrep', ['-f', '-x', pattern]).toString().trim().split('\n').filter(Boolean).length
  } catch {
    return 0
  }
}
