import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { asc, eq } from 'drizzle-orm'
import { agentAssignment, agentOutput } from '../../controller/src/agents/assignments/assignments.sql.ts'
import { Shell } from '../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { AgentProcess, CuttableProxy, enrollAgent, TestController, waitUntil } from '../harness/agents.ts'

// 50 MB of incompressible output, checked byte for byte: every byte exactly once, in order.
const OUTPUT_BYTES = 50 * 1024 * 1024

let controller: TestController
let proxy: CuttableProxy
let agent: AgentProcess
let agentId: string
let payload: string
let payloadSha: string

before(async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'opsc-output-'))
  payload = path.join(dir, 'payload.bin')
  const bytes = randomBytes(OUTPUT_BYTES)
  writeFileSync(payload, bytes)
  payloadSha = createHash('sha256').update(bytes).digest('hex')
  // A short drain window: the restarted controller's agents come back within a second, not 30.
  controller = await TestController.start({ OPSC_AGENT_HEARTBEAT_MS: '1000', OPSC_AGENT_DRAIN_WINDOW_MS: '1000' })
  proxy = await CuttableProxy.start(controller.grpcPort)
  // The agent knows the controller only through the proxy, so the test can cut its connection.
  const enrolled = await enrollAgent(controller, proxy.address)
  agentId = enrolled.agentId
  agent = AgentProcess.start(enrolled.stateDir)
  await agent.waitFor('agent.session_ready')
})
after(async () => {
  await agent?.kill('SIGTERM')
  await proxy?.close()
  await controller?.stop()
})

/** Streams a 50 MB file as stdout (slowed to ~25 MB/s so the cut lands mid-output), running `disrupt` once some of it is stored. */
async function fiftyMegabytes(disrupt: () => Promise<void>): Promise<void> {
  const pv = `for i in $(seq 0 49); do dd if=${payload} bs=1M skip=$i count=1 status=none; sleep 0.04; done`
  const { assignmentId } = await controller.dispatcher.dispatch(agentId, {
    case: 'exec',
    value: { command: { case: 'script', value: { shell: Shell.BASH, script: `${pv}; exit 0` } } },
  })
  await waitUntil(async () => {
    const [row] = await controller.ctx.db.select({ bytes: agentAssignment.outputBytes }).from(agentAssignment).where(eq(agentAssignment.id, assignmentId))
    return (row?.bytes ?? 0) > 5 * 1024 * 1024
  })
  await disrupt()
  // Asked after the disruption: a restarted controller is a new dispatcher that knows it only from the database.
  const outcome = await controller.dispatcher.waitFor(assignmentId)
  assert.equal(outcome.status, 'succeeded', JSON.stringify(outcome))
  assert.equal(outcome.outputBytes, OUTPUT_BYTES)
  assert.equal(outcome.truncated, false)

  const hash = createHash('sha256')
  let expectedSeq = 1
  let expectedOffset = 0
  const rows = await controller.ctx.db
    .select({ seq: agentOutput.seq, byteOffset: agentOutput.byteOffset, data: agentOutput.data, stream: agentOutput.stream })
    .from(agentOutput)
    .where(eq(agentOutput.assignmentId, assignmentId))
    .orderBy(asc(agentOutput.seq))
  for (const row of rows) {
    assert.equal(row.seq, expectedSeq++, 'seqs are contiguous')
    assert.equal(row.byteOffset, expectedOffset, 'byte offsets are contiguous')
    assert.ok(row.data.length <= 32 * 1024, 'chunks are coalesced to at most 32 KiB')
    expectedOffset += row.data.length
    hash.update(row.data)
  }
  assert.equal(expectedOffset, OUTPUT_BYTES)
  assert.equal(hash.digest('hex'), payloadSha, 'every byte arrived exactly once, in order')
}

test('cutting the connection during 50 MB of output loses and duplicates nothing', async () => {
  await fiftyMegabytes(async () => {
    const reconnected = agent.waitForNext('agent.session_ready')
    assert.ok(proxy.cut() > 0, 'a live connection was cut')
    await reconnected
  })
})

test('restarting the controller during 50 MB of output loses and duplicates nothing', async () => {
  await fiftyMegabytes(async () => {
    const reconnected = agent.waitForNext('agent.session_ready')
    await controller.restart()
    await reconnected
  })
})

