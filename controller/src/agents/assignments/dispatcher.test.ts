import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { eq } from 'drizzle-orm'
import { createTestContext, type TestContext } from '../../../../test/harness/context.ts'
import { Shell } from '../../../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { generateBoxKeyPair } from '../../../../proto/src/seal.ts'
import { generateEd25519KeyPair } from '../../../../proto/src/sign.ts'
import { AppError, NotFoundError } from '../../errors.ts'
import { agent } from '../agents.sql.ts'
import { SessionRegistry } from '../gateway/registry.ts'
import { ensureSigningKey } from '../signing-keys.ts'
import { agentAssignment } from './assignments.sql.ts'
import { Dispatcher } from './dispatcher.ts'

let t: TestContext
let dispatcher: Dispatcher
let agentId: string
const echo = { case: 'exec', value: { command: { case: 'script', value: { shell: Shell.BASH, script: 'echo hi' } } } } as const

before(async () => {
  t = await createTestContext()
  await ensureSigningKey(t.ctx.db, t.ctx.keyring)
  dispatcher = new Dispatcher(t.ctx, new SessionRegistry(), { lostGraceMs: 60_000, outputCapBytes: 1024 })
  const [row] = await t.ctx.db
    .insert(agent)
    .values({
      name: 'offline-host',
      hostname: 'offline-host',
      identityPublicKey: Buffer.from(generateEd25519KeyPair().publicKeyRaw).toString('base64'),
      boxPublicKey: Buffer.from(generateBoxKeyPair().publicKey).toString('base64'),
      agentVersion: '0.1.0',
      protocolVersion: '1.0',
    })
    .returning()
  agentId = row!.id
})
after(() => t.close())

test('dispatch to an unknown or malformed agent id is NOT_FOUND; to a revoked agent CONFLICT; nothing is stored', async () => {
  await assert.rejects(dispatcher.dispatch(randomUUID(), echo), NotFoundError)
  await assert.rejects(dispatcher.dispatch("x'; drop table agent; --", echo), NotFoundError)
  await assert.rejects(dispatcher.dispatch(agentId, { case: undefined } as never), (err: unknown) => err instanceof AppError && err.code === 'VALIDATION')
  const [other] = await t.ctx.db.insert(agent).values({ name: 'gone', hostname: 'gone', identityPublicKey: 'x', boxPublicKey: 'x', agentVersion: '0', protocolVersion: '1.0', revokedAt: new Date() }).returning()
  await assert.rejects(dispatcher.dispatch(other!.id, echo), (err: unknown) => err instanceof AppError && err.code === 'CONFLICT')
  assert.equal((await t.ctx.db.select().from(agentAssignment)).length, 0)
  assert.equal(await dispatcher.outcome('not-a-uuid'), undefined)
  await assert.rejects(dispatcher.cancel('not-a-uuid', 'x'), NotFoundError)
  await assert.rejects(dispatcher.cancel(randomUUID(), 'x'), NotFoundError)
})

test('work for an agent that is not connected waits as pending, then ends undelivered after its deadline', async () => {
  const { assignmentId, done } = await dispatcher.dispatch(agentId, echo, { ttlMs: 1 })
  assert.equal((await dispatcher.outcome(assignmentId))!.status, 'pending')
  await new Promise((r) => setTimeout(r, 5))
  await dispatcher.sweep()
  const outcome = await done
  assert.equal(outcome.status, 'undelivered')
  const [row] = await t.ctx.db.select().from(agentAssignment).where(eq(agentAssignment.id, assignmentId))
  assert.equal(row!.status, 'undelivered')
  await dispatcher.cancel(assignmentId, 'too late') // cancelling a final assignment changes nothing
  assert.equal((await dispatcher.outcome(assignmentId))!.status, 'undelivered')
})

test('cancelling pending work ends it cancelled before any agent sees it', async () => {
  const { assignmentId, done } = await dispatcher.dispatch(agentId, echo)
  await dispatcher.cancel(assignmentId, 'operator changed their mind')
  assert.equal((await done).status, 'cancelled')
})

test('assignments dispatched at once (stored in batches): a row that cannot be stored fails alone, the others are stored', async () => {
  const taken = randomUUID()
  await dispatcher.dispatch(agentId, echo, { assignmentId: taken })
  const results = await Promise.allSettled([
    dispatcher.dispatch(agentId, echo),
    dispatcher.dispatch(agentId, echo, { assignmentId: taken }), // the id exists: a duplicate key
    dispatcher.dispatch(agentId, echo),
  ])
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled'])
  for (const r of results) if (r.status === 'fulfilled') assert.equal((await dispatcher.outcome(r.value.assignmentId))!.status, 'pending')
})
