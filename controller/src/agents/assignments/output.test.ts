import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { create } from '@bufbuild/protobuf'
import { asc, eq } from 'drizzle-orm'
import { createTestContext, type TestContext } from '../../../../test/harness/context.ts'
import { OutputChunkSchema, OutputStream } from '../../../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { agent } from '../agents.sql.ts'
import { agentAssignment, agentOutput } from './assignments.sql.ts'
import { AssignmentEvents } from './events.ts'
import { OutputWriter } from './output.ts'

let t: TestContext
let agentId: string
const CAP = 10

before(async () => {
  t = await createTestContext()
  const [row] = await t.ctx.db
    .insert(agent)
    .values({ name: 'out', hostname: 'out', identityPublicKey: 'x', boxPublicKey: 'x', agentVersion: '0', protocolVersion: '1.0' })
    .returning()
  agentId = row!.id
})
after(() => t.close())

async function newAssignment(): Promise<string> {
  const id = randomUUID()
  const now = new Date()
  await t.ctx.db.insert(agentAssignment).values({ id, agentId, actionKind: 'exec', status: 'running', signed: Buffer.alloc(1), signature: Buffer.alloc(64), keyId: 'k', createdAt: now, expiresAt: now })
  return id
}

const chunk = (assignmentId: string, seq: number, data: string, droppedBytes = 0) =>
  create(OutputChunkSchema, { assignmentId, stream: OutputStream.STDOUT, seq: BigInt(seq), byteOffset: 0n, data: Buffer.from(data), droppedBytes: BigInt(droppedBytes) })

async function stored(id: string) {
  return t.ctx.db.select().from(agentOutput).where(eq(agentOutput.assignmentId, id)).orderBy(asc(agentOutput.seq))
}

test('resent chunks are acked but stored once; a chunk past a missing seq is not stored or acked', async () => {
  const writer = new OutputWriter(t.ctx, new AssignmentEvents(), 1024)
  const id = await newAssignment()
  assert.deepEqual(await writer.persist(agentId, [chunk(id, 1, 'a'), chunk(id, 2, 'b')]), [{ assignmentId: id, ackedSeq: 2n }])
  assert.deepEqual(await writer.persist(agentId, [chunk(id, 1, 'a'), chunk(id, 2, 'b'), chunk(id, 4, 'd')]), [{ assignmentId: id, ackedSeq: 2n }])
  assert.deepEqual((await stored(id)).map((r) => r.data.toString()), ['a', 'b'])
  // A controller restart: a fresh writer knows only what the database says.
  const restarted = new OutputWriter(t.ctx, new AssignmentEvents(), 1024)
  assert.deepEqual(await restarted.persist(agentId, [chunk(id, 2, 'b'), chunk(id, 3, 'c')]), [{ assignmentId: id, ackedSeq: 3n }])
  assert.deepEqual((await stored(id)).map((r) => r.data.toString()), ['a', 'b', 'c'])
})

test('output beyond the cap is acked and marked truncated; a gap marker is kept with its dropped bytes', async () => {
  const writer = new OutputWriter(t.ctx, new AssignmentEvents(), CAP)
  const id = await newAssignment()
  await writer.persist(agentId, [chunk(id, 1, '', 4096), chunk(id, 2, '123456'), chunk(id, 3, '7890ab'), chunk(id, 4, 'cdef')])
  const [row] = await t.ctx.db.select().from(agentAssignment).where(eq(agentAssignment.id, id))
  assert.equal(row!.ackedSeq, 4)
  assert.equal(row!.outputBytes, CAP)
  assert.equal(row!.truncated, true)
  assert.equal(row!.droppedBytes, 4096)
  assert.deepEqual((await stored(id)).map((r) => [r.seq, r.data.toString(), r.droppedBytes]), [[1, '', 4096], [2, '123456', 0], [3, '7890', 0]])
})

test("another agent's or an unknown assignment's output is ignored, never stored", async () => {
  const writer = new OutputWriter(t.ctx, new AssignmentEvents(), 1024)
  const id = await newAssignment()
  assert.deepEqual(await writer.persist(randomUUID(), [chunk(id, 1, 'forged')]), [])
  assert.deepEqual(await writer.persist(agentId, [chunk(randomUUID(), 1, 'x'), chunk('not-a-uuid', 1, 'y')]), [])
  assert.equal((await stored(id)).length, 0)
})
