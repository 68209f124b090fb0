// The agent simulator against the real controller: enrolment through the real Enroll RPC, real
// sessions, jobs run through the API, forged assignments refused, abrupt kills seen as offline.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { create, toBinary } from '@bufbuild/protobuf'
import { eq } from 'drizzle-orm'
import { createEnrollmentToken } from '../../controller/src/agents/enrollment.ts'
import { frame } from '../../controller/src/agents/gateway/frames.ts'
import { activeSigningKeys } from '../../controller/src/agents/signing-keys.ts'
import { auditLog } from '../../controller/src/audit/audit.sql.ts'
import { AssignmentSchema, Shell } from '../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { generateEd25519KeyPair, signAssignment } from '../../proto/src/sign.ts'
import { TestController, waitUntil } from '../harness/agents.ts'
import { RunsApi } from '../harness/runs.ts'
import { Fleet } from './fleet.ts'
import { draws } from './virtual-agent.ts'

const AGENTS = 50
const FLAKY = 20
const FLAKY_SEED = 42
const OUTPUT_BYTES = 100_000

let controller: TestController
let api: RunsApi
let fleet: Fleet | undefined
let flaky: Fleet | undefined
let real: Fleet | undefined

async function token(maxUses: number, tag: string): Promise<string> {
  return (await createEnrollmentToken(controller.ctx, undefined, { expires_in_seconds: 600, max_uses: maxUses, tags: { sim: tag } })).token
}

async function online(): Promise<number> {
  const res = await api.call('GET', '/api/v1/agents/counts')
  assert.equal(res.status, 200)
  return res.body.online as number
}

let jobs = 0
async function runOn(tag: string, command: string) {
  const jobId = await api.createJob({ name: `sim ${tag} ${++jobs}`, targets: `tag:sim=${tag}`, steps: [{ id: 'one', type: 'exec', command }] })
  const runId = await api.run(jobId)
  const run = await api.waitForRun(runId, 60_000)
  return { run, steps: await api.steps(runId) }
}

before(async () => {
  controller = await TestController.start({ OPSC_AGENT_HEARTBEAT_MS: '2000' })
  api = await RunsApi.as(controller.ctx)
})
after(async () => {
  await Promise.all([fleet?.stop(), flaky?.stop(), real?.stop()])
  await controller?.stop()
})

test('50 enrolled virtual agents in 2 processes connect; an exec step on all of them succeeds with the expected output', async () => {
  fleet = await Fleet.start({
    controller: controller.grpcAddress,
    caFingerprint: controller.running.caFingerprint,
    count: AGENTS,
    processes: 2,
    enroll: { token: await token(AGENTS, 'main') },
    behaviour: { mode: 'cheap', latencyMs: [5, 50], seed: 1 },
  })
  assert.equal(new Set(fleet.agentIds).size, AGENTS, 'each agent enrolled with an id of its own')
  const ready = await fleet.ready()
  assert.equal(ready.ready, AGENTS)
  await waitUntil(async () => (await online()) === AGENTS, 20_000, `${AGENTS} agents online`)
  let stats = await fleet.stats()
  assert.equal(stats.connected, AGENTS)

  const { run, steps } = await runOn('main', `emit ${OUTPUT_BYTES}`)
  assert.equal(run.status, 'succeeded')
  assert.equal(steps.length, AGENTS)
  for (const s of steps) {
    assert.equal(s.status, 'succeeded')
    assert.equal(s.transport, 'agent')
    assert.equal(s.exit_code, 0)
    assert.equal(s.output_bytes, OUTPUT_BYTES)
  }
  stats = await fleet.stats()
  assert.deepEqual(
    { received: stats.received, verified: stats.verified, rejected: stats.rejected, executed: stats.executed, succeeded: stats.succeeded, failed: stats.failed, bytesSent: stats.bytesSent },
    { received: AGENTS, verified: AGENTS, rejected: 0, executed: AGENTS, succeeded: AGENTS, failed: 0, bytesSent: AGENTS * OUTPUT_BYTES },
  )

  // echo answers with its text, as the real agent's shell would.
  const echoed = await runOn('main', 'echo hello from the simulator')
  assert.equal(echoed.run.status, 'succeeded')
  assert.equal(await api.output(echoed.run.id, echoed.steps[0].id), 'hello from the simulator\n')
})

test('with failureRate 0.2 and a fixed seed, the failed step runs are the ones the simulator drew and reports', async () => {
  flaky = await Fleet.start({
    controller: controller.grpcAddress,
    caPem: fleet!.caPem,
    count: FLAKY,
    processes: 1,
    enroll: { token: await token(FLAKY, 'flaky') },
    behaviour: { failureRate: 0.2, seed: FLAKY_SEED, outputBytes: 10 },
  })
  await flaky.ready()
  // The draws are a function of (seed, agent index, n-th assignment): the first assignment's failure draw is the second.
  const expectedFailures = Array.from({ length: FLAKY }, (_, i) => {
    const r = draws(FLAKY_SEED, i, 0)
    r()
    return r() < 0.2
  }).filter(Boolean).length
  assert.ok(expectedFailures > 0 && expectedFailures < FLAKY, `seed ${FLAKY_SEED} draws ${expectedFailures} failures: choose a seed with some of each`)
  const { run, steps } = await runOn('flaky', 'true')
  const failed = steps.filter((s) => s.status === 'failed')
  assert.equal(run.status, 'failed')
  assert.equal(steps.length, FLAKY)
  const stats = await flaky.stats()
  assert.equal(failed.length, stats.failed)
  assert.equal(failed.length, expectedFailures)
  assert.equal(stats.succeeded, FLAKY - expectedFailures)
  for (const s of failed) assert.equal(s.exit_code, 1)
})

test('an assignment signed with a wrong key is refused, counted and reported as a security event', async () => {
  const agentId = fleet!.agentIds[7]!
  const before = await fleet!.stats()
  const [current] = await activeSigningKeys(controller.ctx.db, controller.ctx.keyring)
  const now = Date.now()
  const bytes = toBinary(
    AssignmentSchema,
    create(AssignmentSchema, {
      assignmentId: crypto.randomUUID(),
      agentId,
      issuedAtUnixMs: BigInt(now),
      notBeforeUnixMs: BigInt(now),
      expiresAtUnixMs: BigInt(now + 60_000),
      keyId: current!.keyId,
      action: { case: 'exec', value: { command: { case: 'script', value: { shell: Shell.BASH, script: 'echo forged' } } } },
    }),
  )
  const forged = signAssignment(generateEd25519KeyPair().privateKey, current!.keyId, bytes)
  await controller.ctx.agentGateway!.registry.get(agentId)!.send(frame({ case: 'assignment', value: forged }))
  await waitUntil(async () => (await fleet!.stats()).rejected === before.rejected + 1, 10_000, 'the forged assignment rejected')
  const after = await fleet!.stats()
  assert.equal(after.received, before.received + 1)
  assert.equal(after.verified, before.verified, 'not accepted')
  assert.equal(after.executed, before.executed, 'not run')
  await waitUntil(
    async () => (await controller.ctx.db.select().from(auditLog).where(eq(auditLog.action, 'agents.security_event'))).some((r) => (r.summary as { kind: string }).kind === 'bad_signature'),
    10_000,
    'the bad signature audited',
  )
})

test('kill(n) drops agents abruptly: the controller sees them go offline and they do not come back', async () => {
  const killed = await fleet!.kill(5)
  assert.equal(killed.length, 5)
  await waitUntil(async () => (await online()) === AGENTS + FLAKY - 5, 20_000, 'the killed agents offline')
  const stats = await fleet!.stats()
  assert.equal(stats.killed, 5)
  assert.equal(stats.socketsDropped, 5, 'each killed agent dropped its own TLS connection')
  assert.equal(stats.connected, AGENTS - 5)
  for (const id of killed) assert.equal(controller.ctx.agentGateway!.registry.get(id), undefined)
})

test("'real' mode runs the command through the agent's own runner (journal, spool, a real shell)", async () => {
  real = await Fleet.start({ controller: controller.grpcAddress, caPem: fleet!.caPem, count: 3, processes: 1, enroll: { token: await token(3, 'real') }, behaviour: { mode: 'real' } })
  await real.ready()
  const { run, steps } = await runOn('real', 'echo "real $((1 + 2))"; echo err >&2; exit 0')
  assert.equal(run.status, 'succeeded')
  assert.equal(steps.length, 3)
  for (const s of steps) assert.equal(await api.output(run.id, s.id, 'stdout'), 'real 3\n')
  const failing = await runOn('real', 'exit 4')
  assert.equal(failing.run.status, 'failed')
  const stats = await real.stats()
  assert.deepEqual({ verified: stats.verified, executed: stats.executed, succeeded: stats.succeeded, failed: stats.failed }, { verified: 6, executed: 6, succeeded: 3, failed: 3 })
})
