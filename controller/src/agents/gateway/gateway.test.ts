import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { eq, inArray } from 'drizzle-orm'
import type { ConnectResponse } from '../../../../proto/gen/opsconductor/agent/v1/agent_pb.ts'
import { Shell } from '../../../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { generateBoxKeyPair } from '../../../../proto/src/seal.ts'
import { generateEd25519KeyPair } from '../../../../proto/src/sign.ts'
import { createTestContext, type TestContext } from '../../../../test/harness/context.ts'
import { agent } from '../agents.sql.ts'
import { agentAssignment, agentSession } from '../assignments/assignments.sql.ts'
import { Dispatcher } from '../assignments/dispatcher.ts'
import { ensureSigningKey } from '../signing-keys.ts'
import { redeliverUnreceived, settleFinishedElsewhere } from './gateway.ts'
import { SessionRegistry } from './registry.ts'
import type { AgentSession } from './session.ts'

/*
 * The two timers that keep steps honest across controllers, against the database: verdicts another
 * controller stored reach the steps waiting here, and `sent` rows an agent held here never got are
 * written again — only for agents whose session this controller holds, and once per session.
 */

let t: TestContext
let registry: SessionRegistry
let dispatcher: Dispatcher
const echo = { case: 'exec', value: { command: { case: 'script', value: { shell: Shell.BASH, script: 'echo hi' } } } } as const

/** A session as far as these timers look at it: who, whether it is open, what it was given. */
function fakeSession(agentId: string, heldAtConnect: string[] = []): AgentSession & { written: string[] } {
  const written: string[] = []
  const session = {
    id: randomUUID(),
    agentId,
    isClosed: false,
    delivered: new Set<string>(),
    heldAtConnect: new Set(heldAtConnect),
    written,
    send: async (f: ConnectResponse) => {
      if (f.frame.case === 'assignment') written.push(f.frame.value.signature.length ? 'assignment' : 'unsigned')
    },
  }
  return session as unknown as AgentSession & { written: string[] }
}

async function newAgent(name: string): Promise<string> {
  const [row] = await t.ctx.db
    .insert(agent)
    .values({
      name,
      hostname: name,
      identityPublicKey: Buffer.from(generateEd25519KeyPair().publicKeyRaw).toString('base64'),
      boxPublicKey: Buffer.from(generateBoxKeyPair().publicKey).toString('base64'),
      agentVersion: '0.1.0',
      protocolVersion: '1.0',
    })
    .returning()
  return row!.id
}

/** An assignment stored `sent` `ageMs` ago, as a dispatch to a session that is gone leaves it. */
async function sentRow(agentId: string, ageMs: number): Promise<string> {
  const { assignmentId } = await dispatcher.dispatch(agentId, echo)
  await t.ctx.db
    .update(agentAssignment)
    .set({ status: 'sent', sentAt: new Date(Date.now() - ageMs), createdAt: new Date(Date.now() - ageMs) })
    .where(eq(agentAssignment.id, assignmentId))
  return assignmentId
}

before(async () => {
  t = await createTestContext()
  await ensureSigningKey(t.ctx.db, t.ctx.keyring)
  registry = new SessionRegistry()
  dispatcher = new Dispatcher(t.ctx, registry, { lostGraceMs: 60_000, outputCapBytes: 1024 })
})
after(() => t.close())

test('a verdict stored by another controller reaches the step waiting here; open work keeps waiting', async () => {
  const agentId = await newAgent('settle-host')
  const finished = await dispatcher.dispatch(agentId, echo)
  const open = await dispatcher.dispatch(agentId, echo)
  assert.equal(await settleFinishedElsewhere(t.ctx, dispatcher), 0, 'nothing final yet')
  // What the controller that held the agent writes when the result comes in there.
  await t.ctx.db.update(agentAssignment).set({ status: 'succeeded', exitCode: 0, finishedAt: new Date() }).where(eq(agentAssignment.id, finished.assignmentId))
  assert.equal(await settleFinishedElsewhere(t.ctx, dispatcher), 1)
  const outcome = await finished.done
  assert.equal(outcome.status, 'succeeded')
  assert.equal(outcome.exitCode, 0)
  assert.equal((await dispatcher.outcome(open.assignmentId))!.status, 'pending')
  assert.ok(!(await settleFinishedElsewhere(t.ctx, dispatcher)), 'a settled step is no longer watched')
})

test('sent work an agent held here never got is written again once; what it held, what is fresh and agents held elsewhere are left', async () => {
  const here = await newAgent('redeliver-here')
  const elsewhere = await newAgent('redeliver-elsewhere')
  const lost = await sentRow(here, 10_000)
  const held = await sentRow(here, 10_000)
  await sentRow(here, 0) // just sent: its accept is still on the way
  await sentRow(elsewhere, 10_000)
  await t.ctx.db.insert(agentSession).values([
    { agentId: here, sessionId: randomUUID(), controllerId: t.ctx.nodeId, connectedAt: new Date() },
    // The sessions table says another controller holds this one (a stale session here must not act).
    { agentId: elsewhere, sessionId: randomUUID(), controllerId: randomUUID(), connectedAt: new Date() },
  ])
  const session = fakeSession(here, [held])
  const stale = fakeSession(elsewhere)
  registry.attach(session)
  registry.attach(stale)
  assert.equal(await redeliverUnreceived(t.ctx, registry, dispatcher), 1)
  assert.deepEqual(session.written, ['assignment'])
  assert.ok(session.delivered.has(lost))
  assert.deepEqual(stale.written, [])
  assert.equal(await redeliverUnreceived(t.ctx, registry, dispatcher), 0, 'once per session')
  const rows = await t.ctx.db.select({ status: agentAssignment.status }).from(agentAssignment).where(inArray(agentAssignment.id, [lost, held]))
  assert.deepEqual(rows.map((r) => r.status), ['sent', 'sent'], 'the rows stay as they were until the agent answers')
})
