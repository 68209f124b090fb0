import assert from 'node:assert/strict'
import { randomUUID, type KeyObject } from 'node:crypto'
import { cpSync, existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { create, toBinary } from '@bufbuild/protobuf'
import { and, eq } from 'drizzle-orm'
import { agentAssignment } from '../../controller/src/agents/assignments/assignments.sql.ts'
import { frame } from '../../controller/src/agents/gateway/frames.ts'
import { getAgent, revokeAgent } from '../../controller/src/agents/service.ts'
import { activeSigningKeys } from '../../controller/src/agents/signing-keys.ts'
import { auditLog } from '../../controller/src/audit/audit.sql.ts'
import { AssignmentSchema, Shell } from '../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { generateEd25519KeyPair, signAssignment } from '../../proto/src/sign.ts'
import { AgentProcess, enrollAgent, TestController, storedOutput, waitUntil } from '../harness/agents.ts'

let controller: TestController
let agentId: string
let agentStateDir: string
let agent: AgentProcess

before(async () => {
  controller = await TestController.start({ OPSC_AGENT_HEARTBEAT_MS: '1000' })
  const enrolled = await enrollAgent(controller)
  agentId = enrolled.agentId
  agentStateDir = enrolled.stateDir
  agent = AgentProcess.start(enrolled.stateDir)
  await agent.waitFor('agent.session_ready')
})
after(async () => {
  await agent?.kill('SIGTERM')
  await controller?.stop()
})


const script = (text: string, extra: { timeoutMs?: bigint } = {}) =>
  ({ case: 'exec', value: { command: { case: 'script', value: { shell: Shell.BASH, script: text } }, ...extra } }) as const

test('a connected agent is online with its address and version; echo runs and its output and exit code are stored', async () => {
  const listed = await getAgent(controller.ctx, agentId)
  assert.equal(listed.status, 'online')
  assert.equal(listed.address, '127.0.0.1')
  assert.equal(controller.ctx.agentGateway!.registry.get(agentId)?.agentId, agentId)

  const { assignmentId, done } = await controller.dispatcher.dispatch(agentId, script('echo hello from $HOSTNAME_CHECK; echo length ${#HOSTNAME_CHECK}; echo oops >&2; exit 3'), {
    secrets: { HOSTNAME_CHECK: 'the-agent' },
  })
  const outcome = await done
  assert.equal(outcome.status, 'failed')
  assert.equal(outcome.exitCode, 3)
  // The process gets the secret (its length shows it); the output shows it masked.
  assert.equal((await storedOutput(controller, assignmentId, 1)).toString(), 'hello from ****\nlength 9\n')
  assert.equal((await storedOutput(controller, assignmentId, 2)).toString(), 'oops\n')
  assert.ok(!agent.logs.some((r) => JSON.stringify(r).includes('the-agent')), 'the secret value never reaches the agent log')
})

/** Sends a hand-made signed assignment down the agent's live session, as a compromised path would. */
async function inject(assignment: Parameters<typeof create<typeof AssignmentSchema>>[1], signWith?: KeyObject): Promise<Uint8Array> {
  const [current] = await activeSigningKeys(controller.ctx.db, controller.ctx.keyring)
  const now = Date.now()
  const bytes = toBinary(
    AssignmentSchema,
    create(AssignmentSchema, { agentId, issuedAtUnixMs: BigInt(now), notBeforeUnixMs: BigInt(now), expiresAtUnixMs: BigInt(now + 60_000), keyId: current!.keyId, ...assignment }),
  )
  const signed = signAssignment(signWith ?? current!.privateKey, current!.keyId, bytes)
  await controller.ctx.agentGateway!.registry.get(agentId)!.send(frame({ case: 'assignment', value: signed }))
  return bytes
}

async function securityEvents(): Promise<{ kind: string; assignment_id: string | null }[]> {
  const rows = await controller.ctx.db.select().from(auditLog).where(eq(auditLog.action, 'agents.security_event'))
  return rows.map((r) => r.summary as { kind: string; assignment_id: string | null })
}

test('forged, misaddressed, expired and replayed assignments are refused, reported and audited; none runs', async () => {
  const marker = path.join(mkdtempSync(path.join(tmpdir(), 'opsc-forged-')), 'ran')
  const touch = script(`touch ${marker}`)
  const ids = { forged: randomUUID(), wrongAgent: randomUUID(), expired: randomUUID() }
  await inject({ assignmentId: ids.forged, action: touch }, generateEd25519KeyPair().privateKey)
  await inject({ assignmentId: ids.wrongAgent, agentId: randomUUID(), action: touch })
  await inject({ assignmentId: ids.expired, expiresAtUnixMs: BigInt(Date.now() - 120_000), action: touch })
  // A replay: the exact bytes of an assignment the agent already ran.
  const first = await controller.dispatcher.dispatch(agentId, script('true'))
  await first.done
  const [row] = await controller.ctx.db.select().from(agentAssignment).where(eq(agentAssignment.id, first.assignmentId))
  await controller.ctx.agentGateway!.registry.get(agentId)!.send(frame({ case: 'assignment', value: { assignment: row!.signed, signature: row!.signature, keyId: row!.keyId } }))

  await waitUntil(async () => (await securityEvents()).length >= 4)
  const events = await securityEvents()
  assert.deepEqual(events.map((e) => e.kind).sort(), ['bad_signature', 'expired', 'replayed', 'wrong_agent'])
  // Ids are reported only when read from verified bytes: never for a bad signature.
  assert.equal(events.find((e) => e.kind === 'bad_signature')!.assignment_id, null)
  assert.equal(events.find((e) => e.kind === 'replayed')!.assignment_id, first.assignmentId)
  assert.equal(existsSync(marker), false, 'no refused assignment ran')
  assert.equal((await controller.dispatcher.outcome(first.assignmentId))!.status, 'succeeded', 'the replay did not change the original')
})

test('a timeout kills the whole process tree, grandchildren included', async () => {
  const tree = "bash -c 'sleep 300 & echo $!; bash -c \"sleep 300 & echo \\$!; wait\" & wait' & echo $!; echo $$; wait"
  const { assignmentId, done } = await controller.dispatcher.dispatch(agentId, script(tree, { timeoutMs: 1500n }))
  const outcome = await done
  assert.equal(outcome.status, 'timed_out')
  const pids = (await storedOutput(controller, assignmentId, 1)).toString().trim().split('\n').map(Number)
  assert.ok(pids.length >= 4, `pids printed: ${pids}`)
  for (const pid of pids) assert.equal(isAlive(pid), false, `process ${pid} survived the timeout`)
})

test('kill -9 of the agent mid-command: after restart the assignment is reported interrupted, never re-run', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'opsc-kill9-'))
  const { assignmentId, done } = await controller.dispatcher.dispatch(agentId, script(`echo $$ > ${dir}/pid; echo started >> ${dir}/log; exec sleep 300`))
  await waitUntil(() => existsSync(path.join(dir, 'pid')) && readFileSync(path.join(dir, 'log'), 'utf8').includes('started'))
  await agent.kill('SIGKILL')
  const orphan = Number(readFileSync(path.join(dir, 'pid'), 'utf8'))
  try {
    agent = AgentProcess.start(agentStateDir)
    const outcome = await done
    assert.equal(outcome.status, 'interrupted')
    assert.match(outcome.error ?? '', /not run again/)
    assert.equal(readFileSync(path.join(dir, 'log'), 'utf8'), 'started\n', 'ran exactly once')
    await agent.waitFor('agent.session_ready')
  } finally {
    if (isAlive(orphan)) process.kill(orphan, 'SIGKILL')
  }
  assert.equal((await controller.dispatcher.outcome(assignmentId))!.status, 'interrupted')
})

test('a second session of the same agent replaces the first (audited); revoking drops the stream at once', async () => {
  const copy = path.join(mkdtempSync(path.join(tmpdir(), 'opsc-agent-copy-')), 'state')
  cpSync(agentStateDir, copy, { recursive: true })
  const twin = AgentProcess.start(copy, ['--reconnect-max-ms', '60000'])
  try {
    await twin.waitFor('agent.session_ready')
    await waitUntil(async () => (await controller.ctx.db.select().from(auditLog).where(eq(auditLog.action, 'agents.session_replaced'))).length > 0)
  } finally {
    await twin.kill('SIGKILL')
  }
  await agent.waitForNext('agent.session_ready') // the original reconnects after losing its session
  const refused = agent.waitFor('agent.refused_by_controller')
  await revokeAgent(controller.ctx, agentId)
  await refused
  assert.equal(await agent.exited, 3, 'a revoked agent stops for good (exit 3: its supervisor does not restart it)')
  assert.equal(controller.ctx.agentGateway!.registry.get(agentId), undefined)
  await waitUntil(async () => (await getAgent(controller.ctx, agentId)).status === 'revoked')
  // Started again anyway, it is refused in the handshake (audited) and exits 3 again.
  const denied = await controller.ctx.db.select().from(auditLog).where(and(eq(auditLog.action, 'agents.connect'), eq(auditLog.outcome, 'denied')))
  agent = AgentProcess.start(agentStateDir)
  assert.equal(await agent.exited, 3)
  await waitUntil(async () => (await controller.ctx.db.select().from(auditLog).where(and(eq(auditLog.action, 'agents.connect'), eq(auditLog.outcome, 'denied')))).length > denied.length)
})

/** A process that exists and is not a zombie (killed, waiting only to be reaped by init). */
function isAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

