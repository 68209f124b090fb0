import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { eq } from 'drizzle-orm'
import { agentAssignment } from '../../controller/src/agents/assignments/assignments.sql.ts'
import { getAgent } from '../../controller/src/agents/service.ts'
import { rotateSigningKey } from '../../controller/src/agents/signing-keys.ts'
import { Shell } from '../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { AgentProcess, enrollAgent, TestController, storedOutput, waitUntil } from '../harness/agents.ts'

let controller: TestController
let agentId: string
let agent: AgentProcess
const work = mkdtempSync(path.join(tmpdir(), 'opsc-actions-'))

before(async () => {
  controller = await TestController.start({ OPSC_AGENT_HEARTBEAT_MS: '500', OPSC_AGENT_LOST_GRACE_MS: '2000' })
  const enrolled = await enrollAgent(controller)
  agentId = enrolled.agentId
  agent = AgentProcess.start(enrolled.stateDir, ['--max-concurrent', '1', '--allowed-root', work])
  await agent.waitFor('agent.session_ready')
})
after(async () => {
  await agent?.kill('SIGTERM')
  await controller?.stop()
})

const bash = (text: string) => ({ case: 'exec', value: { command: { case: 'script', value: { shell: Shell.BASH, script: text } } } }) as const


test('put_file writes the streamed content atomically with its mode; get_file streams a file back with its checksum', async () => {
  const content = randomBytes(300 * 1024) // several FileChunk frames
  const sha256 = createHash('sha256').update(content).digest()
  const dest = path.join(work, 'deployed.bin')
  const put = await controller.dispatcher.dispatch(
    agentId,
    { case: 'putFile', value: { path: dest, size: BigInt(content.length), sha256, mode: 0o640, overwrite: true } },
    { content },
  )
  const putOutcome = await put.done
  assert.equal(putOutcome.status, 'succeeded', JSON.stringify(putOutcome))
  assert.deepEqual(readFileSync(dest), content)
  assert.equal(statSync(dest).mode & 0o777, 0o640)
  assert.equal(putOutcome.fileSha256, sha256.toString('hex'))

  const bad = await controller.dispatcher.dispatch(
    agentId,
    { case: 'putFile', value: { path: path.join(work, 'corrupt.bin'), size: BigInt(content.length), sha256: Buffer.alloc(32), overwrite: true } },
    { content },
  )
  const badOutcome = await bad.done
  assert.equal(badOutcome.status, 'failed')
  assert.match(badOutcome.error ?? '', /sha-?256|checksum/i)

  const outside = await controller.dispatcher.dispatch(agentId, { case: 'getFile', value: { path: '/etc/hostname' } })
  assert.equal((await outside.done).status, 'failed', 'paths outside --allowed-root are refused')

  const source = path.join(work, 'source.txt')
  writeFileSync(source, 'line one\nline two\n')
  const get = await controller.dispatcher.dispatch(agentId, { case: 'getFile', value: { path: source } })
  const getOutcome = await get.done
  assert.equal(getOutcome.status, 'succeeded')
  assert.equal((await storedOutput(controller, get.assignmentId, 4)).toString(), 'line one\nline two\n')
  assert.equal(getOutcome.fileSize, 18)
})

test('assignments beyond --max-concurrent wait in order; cancel interrupts a running one and a queued one', async () => {
  const log = path.join(work, 'order.log')
  const first = await controller.dispatcher.dispatch(agentId, bash(`echo first >> ${log}; sleep 300`))
  const second = await controller.dispatcher.dispatch(agentId, bash(`echo second >> ${log}`))
  const third = await controller.dispatcher.dispatch(agentId, bash(`echo third >> ${log}`))
  await waitUntil(async () => (await controller.dispatcher.outcome(first.assignmentId))?.status === 'running')
  await controller.dispatcher.cancel(third.assignmentId, 'not needed') // still queued on the agent
  assert.equal((await third.done).status, 'interrupted')
  await controller.dispatcher.cancel(first.assignmentId, 'operator cancelled')
  const firstOutcome = await first.done
  assert.equal(firstOutcome.status, 'interrupted')
  assert.equal((await second.done).status, 'succeeded')
  assert.equal(readFileSync(log, 'utf8'), 'first\nsecond\n')
})

test('a rotated signing key is announced over the session before it signs anything', async () => {
  const updated = agent.waitForNext('agent.signing_keys_updated')
  const keyId = await rotateSigningKey(controller.ctx.db, controller.ctx.keyring)
  // What the gateway's periodic check does (every 10 s): reload, announce on every session, then sign with it.
  await controller.dispatcher.announceKeysIfChanged()
  const run = await controller.dispatcher.dispatch(agentId, bash('echo signed with the new key'))
  const [row] = await controller.ctx.db.select({ keyId: agentAssignment.keyId }).from(agentAssignment).where(eq(agentAssignment.id, run.assignmentId))
  assert.equal(row!.keyId, keyId)
  const outcome = await run.done
  assert.equal(outcome.status, 'succeeded', 'the agent accepted the new key id')
  assert.match(String((await updated).keyIds), new RegExp(keyId))
})

test('a silent agent goes offline within three heartbeats; its running work ends agent_lost after the grace, undeliverable work undelivered', async () => {
  const running = await controller.dispatcher.dispatch(agentId, bash('sleep 4'))
  await waitUntil(async () => (await controller.dispatcher.outcome(running.assignmentId))?.status === 'running')
  agent.proc.kill('SIGSTOP')
  try {
    await waitUntil(async () => (await getAgent(controller.ctx, agentId)).status === 'offline', 20_000)
    assert.equal(controller.ctx.agentGateway!.registry.get(agentId), undefined)
    const lost = await running.done
    assert.equal(lost.status, 'agent_lost')
    const late = await controller.dispatcher.dispatch(agentId, bash('echo too late'), { ttlMs: 300 })
    assert.equal((await late.done).status, 'undelivered')
  } finally {
    agent.proc.kill('SIGCONT')
  }
  await waitUntil(async () => (await getAgent(controller.ctx, agentId)).status === 'online', 30_000)
  // The agent's late result does not overturn the verdict, and it is acked so the agent forgets it.
  await agent.waitFor('agent.assignment_finished', { assignmentId: running.assignmentId })
  assert.equal((await controller.dispatcher.outcome(running.assignmentId))!.status, 'agent_lost')
})

