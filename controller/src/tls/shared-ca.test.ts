import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { eq, sql } from 'drizzle-orm'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { agent } from '../agents/agents.sql.ts'
import { setting } from '../settings/settings.sql.ts'
import { controllerNode } from '../system/system.sql.ts'
import { AGENT_CA_SETTING, checkSharedCa } from './shared-ca.ts'

let t: TestContext
before(async () => {
  t = await createTestContext()
})
after(() => t?.close())

const A = `sha256:${'a'.repeat(64)}`
const B = `sha256:${'b'.repeat(64)}`
const recorded = async () => (await t.ctx.db.select().from(setting).where(eq(setting.key, AGENT_CA_SETTING)))[0]?.value
function captureLog() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = []
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) => lines.push({ level, obj, msg })
  return { lines, log: { info: at('info'), warn: at('warn') } as unknown as Parameters<typeof checkSharedCa>[2] }
}

test('the first controller records its CA; the same CA passes; without agents another CA is simply recorded', async () => {
  await t.ctx.db.delete(setting).where(eq(setting.key, AGENT_CA_SETTING))
  await checkSharedCa(t.ctx.db, A)
  assert.equal(await recorded(), A)
  await checkSharedCa(t.ctx.db, A)
  const { lines, log } = captureLog()
  await checkSharedCa(t.ctx.db, B, log)
  assert.equal(await recorded(), B)
  assert.deepEqual(lines.map((l) => l.msg), ['tls.agent_ca_recorded'])
})

test('agents enrolled, other controllers running with the recorded CA: a controller with another CA does not start', async () => {
  await t.ctx.db.delete(setting).where(eq(setting.key, AGENT_CA_SETTING))
  await checkSharedCa(t.ctx.db, A)
  const [a] = await t.ctx.db.insert(agent).values({ name: 'pinned', hostname: 'pinned', identityPublicKey: 'k', boxPublicKey: 'b', agentVersion: '1.0.0', protocolVersion: '1.0' }).returning()
  const node = randomUUID()
  await t.ctx.db.insert(controllerNode).values({ id: node, hostname: 'other', pid: 1, version: '1', httpPort: 1, grpcPort: 2 })
  await assert.rejects(checkSharedCa(t.ctx.db, B), (err: Error) => {
    assert.equal(err.name, 'ConfigError')
    assert.equal(
      err.message,
      `TLS: this controller presents the CA ${B}, but the 1 other controller(s) running on this database present ${A}, the CA the 1 enrolled agent(s) pinned. ` +
        "Every controller of one installation must present the same CA: copy tls/ca.crt and tls/ca.key from another controller's data dir into this one's " +
        '(or give every controller the same OPSC_TLS_CERT chain), then start it again (docs/ha.md)',
    )
    return true
  })
  assert.equal(await recorded(), A, 'the recorded CA stays')
  await checkSharedCa(t.ctx.db, A) // the right CA starts

  // Alone (the other controller stopped): a different CA is a deliberate replacement, recorded with a warning.
  await t.ctx.db.update(controllerNode).set({ stoppedAt: new Date() }).where(eq(controllerNode.id, node))
  const { lines, log } = captureLog()
  await checkSharedCa(t.ctx.db, B, log)
  assert.equal(await recorded(), B)
  assert.equal(lines[0]?.level, 'warn')
  assert.equal(lines[0]?.msg, 'tls.agent_ca_replaced')
  assert.equal(lines[0]?.obj.agents, 1)

  // A revoked agent pins nothing that matters.
  await t.ctx.db.update(controllerNode).set({ stoppedAt: null, lastSeenAt: sql`now()` }).where(eq(controllerNode.id, node))
  await t.ctx.db.update(agent).set({ revokedAt: new Date() }).where(eq(agent.id, a!.id))
  await checkSharedCa(t.ctx.db, A)
  assert.equal(await recorded(), A)
})
