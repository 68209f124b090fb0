import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { create } from '@bufbuild/protobuf'
import { eq } from 'drizzle-orm'
import { call, createTestUser, type TestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { EnrollRequestSchema, OperatingSystem } from '../../../proto/gen/opsconductor/agent/v1/agent_pb.ts'
import { generateEd25519KeyPair } from '../../../proto/src/sign.ts'
import { generateBoxKeyPair } from '../../../proto/src/seal.ts'
import { createApp } from '../app.ts'
import { auditLog } from '../audit/audit.sql.ts'
import { sha256Hex } from '../auth/sessions.ts'
import { target } from '../targets/targets.sql.ts'
import { agent, enrollmentToken } from './agents.sql.ts'
import { agentSession } from './assignments/assignments.sql.ts'
import { enrollAgent } from './enrollment.ts'

const FINGERPRINT = 'sha256:' + 'ab'.repeat(32)
let t: TestContext
let app: ReturnType<typeof createApp>
let admin: TestUser
let operator: TestUser
let viewer: TestUser
before(async () => {
  t = await createTestContext()
  t.ctx.grpcPort = 18444
  t.ctx.caFingerprint = FINGERPRINT
  app = createApp(t.ctx, { uiDir: '/nonexistent' })
  admin = await createTestUser(t.ctx, 'admin')
  operator = await createTestUser(t.ctx, 'operator')
  viewer = await createTestUser(t.ctx, 'viewer')
})
after(() => t.close())

test('an enrollment token is shown once with paste-ready commands, stored hashed, listed without the secret, and revocable', async () => {
  const res = await call(app, 'POST', '/api/v1/agents/enrollment-tokens', {
    token: admin.token,
    headers: { host: 'ops.example.test:8443' },
    body: { name: 'web rollout', expires_in_seconds: 7200, max_uses: 5, tags: { env: 'prod' } },
  })
  assert.equal(res.status, 201, JSON.stringify(res.body))
  const token: string = res.body.token
  assert.match(token, /^opsc_et_[A-Za-z0-9_-]{40}$/)
  assert.equal(res.body.prefix, token.slice(0, 12))
  assert.equal(res.body.max_uses, 5)
  assert.equal(res.body.status, 'active')
  assert.equal(res.body.ca_fingerprint, FINGERPRINT)
  assert.ok(Math.abs(new Date(res.body.expires_at).getTime() - Date.now() - 7200_000) < 60_000)
  assert.equal(res.body.commands.linux, `sudo opsconductor-agent enroll --controller ops.example.test:18444 --token ${token} --ca-fingerprint ${FINGERPRINT}`)
  assert.equal(
    res.body.commands.windows,
    `& "$env:ProgramFiles\\OpsConductor\\Agent\\opsconductor-agent.cmd" enroll --controller ops.example.test:18444 --token ${token} --ca-fingerprint ${FINGERPRINT}`,
  )

  const [row] = await t.ctx.db.select().from(enrollmentToken).where(eq(enrollmentToken.id, res.body.id))
  assert.equal(row!.tokenHash, sha256Hex(token))
  assert.ok(!JSON.stringify(row).includes(token))
  assert.equal(row!.createdBy, admin.user.id)

  const list = await call(app, 'GET', '/api/v1/agents/enrollment-tokens', { token: admin.token })
  assert.equal(list.status, 200)
  const listed = list.body.items.find((i: { id: string }) => i.id === res.body.id)
  assert.equal(listed.name, 'web rollout')
  assert.ok(!JSON.stringify(list.body).includes(token), 'the list never shows the token')
  for (const key of Object.keys(listed)) assert.ok(!/hash|^token$/.test(key), key)

  const audits = await t.ctx.db.select().from(auditLog).where(eq(auditLog.resourceId, res.body.id))
  assert.deepEqual(audits.map((a) => [a.action, a.outcome]), [['agents.enrollment_tokens.create', 'success']])
  assert.ok(!JSON.stringify(audits).includes(token))

  const revoked = await call(app, 'DELETE', `/api/v1/agents/enrollment-tokens/${res.body.id}`, { token: admin.token })
  assert.equal(revoked.status, 200)
  assert.equal(revoked.body.status, 'revoked')
  assert.equal((await call(app, 'DELETE', `/api/v1/agents/enrollment-tokens/${crypto.randomUUID()}`, { token: admin.token })).status, 404)
})

test('IPv6 hosts stay bracketed; bad input is a 400 listing every field; only admins manage tokens', async () => {
  const v6 = await call(app, 'POST', '/api/v1/agents/enrollment-tokens', { token: admin.token, headers: { host: '[fd00::1]:8443' }, body: {} })
  assert.equal(v6.status, 201)
  assert.equal(v6.body.max_uses, 1)
  assert.ok(v6.body.commands.linux.includes('--controller [fd00::1]:18444 '))
  const bad = await call(app, 'POST', '/api/v1/agents/enrollment-tokens', {
    token: admin.token,
    body: { expires_in_seconds: 10, max_uses: 0, group_id: 'nope', extra: true },
  })
  assert.equal(bad.status, 400)
  assert.deepEqual(bad.body.error.details.map((d: { path: string }) => d.path).sort(), ['', 'expires_in_seconds', 'group_id', 'max_uses'])
  const noGroup = await call(app, 'POST', '/api/v1/agents/enrollment-tokens', { token: admin.token, body: { group_id: crypto.randomUUID() } })
  assert.equal(noGroup.status, 400)
  for (const user of [viewer, operator]) {
    assert.equal((await call(app, 'POST', '/api/v1/agents/enrollment-tokens', { token: user.token, body: {} })).status, 403)
    assert.equal((await call(app, 'GET', '/api/v1/agents/enrollment-tokens', { token: user.token })).status, 403)
  }
})

test('agents: list with status and pagination (operator), get, revoke and delete (admin)', async () => {
  const created = await call(app, 'POST', '/api/v1/agents/enrollment-tokens', { token: admin.token, body: { max_uses: 3 } })
  const ids: string[] = []
  for (const hostname of ['alpha', 'bravo', 'charlie']) {
    const res = await enrollAgent(
      t.ctx,
      { caCertPem: 'ca' },
      create(EnrollRequestSchema, {
        enrollmentToken: created.body.token,
        agentProtocol: { major: 1, minor: 0 },
        agentVersion: '0.1.0',
        identityPublicKey: generateEd25519KeyPair().publicKeyRaw,
        boxPublicKey: generateBoxKeyPair().publicKey,
        host: { hostname, os: OperatingSystem.WINDOWS },
      }),
    )
    ids.push(res.agentId)
  }
  // Online needs a session some controller holds and a recent heartbeat: bravo's went silent.
  for (const id of ids) {
    await t.ctx.db.insert(agentSession).values({ agentId: id, sessionId: crypto.randomUUID(), controllerId: crypto.randomUUID(), peerAddress: '192.0.2.7:40000', connectedAt: new Date() })
  }
  await t.ctx.db.update(agent).set({ lastSeenAt: new Date(Date.now() - 60_000) }).where(eq(agent.id, ids[1]!))

  assert.equal((await call(app, 'GET', '/api/v1/agents', { token: viewer.token })).status, 403)
  const first = await call(app, 'GET', '/api/v1/agents?limit=2', { token: operator.token })
  assert.equal(first.status, 200)
  assert.deepEqual(first.body.items.map((a: { name: string }) => a.name), ['alpha', 'bravo'])
  assert.deepEqual(first.body.items.map((a: { status: string }) => a.status), ['online', 'offline'])
  assert.equal(first.body.items[0].address, '192.0.2.7')
  const second = await call(app, 'GET', `/api/v1/agents?limit=2&cursor=${first.body.next}`, { token: operator.token })
  assert.deepEqual(second.body.items.map((a: { name: string }) => a.name), ['charlie'])
  assert.equal(second.body.next, null)
  const offline = await call(app, 'GET', '/api/v1/agents?status=offline', { token: operator.token })
  assert.deepEqual(offline.body.items.map((a: { id: string }) => a.id), [ids[1]])

  const one = await call(app, 'GET', `/api/v1/agents/${ids[0]}`, { token: operator.token })
  assert.equal(one.body.hostname, 'alpha')
  assert.equal(one.body.facts.os, 'windows')
  assert.equal(Buffer.from(one.body.identity_public_key, 'base64').length, 32)
  assert.equal((await call(app, 'GET', '/api/v1/agents/not-a-uuid', { token: operator.token })).status, 404)

  assert.equal((await call(app, 'POST', `/api/v1/agents/${ids[0]}/revoke`, { token: operator.token, body: {} })).status, 403)
  const revoked = await call(app, 'POST', `/api/v1/agents/${ids[0]}/revoke`, { token: admin.token, body: {} })
  assert.equal(revoked.status, 200)
  assert.equal(revoked.body.status, 'revoked')
  assert.deepEqual((await call(app, 'GET', '/api/v1/agents?status=revoked', { token: operator.token })).body.items.map((a: { id: string }) => a.id), [ids[0]])

  const targetId = one.body.target_id
  const removed = await call(app, 'DELETE', `/api/v1/agents/${ids[0]}`, { token: admin.token })
  assert.equal(removed.status, 200)
  assert.equal((await call(app, 'GET', `/api/v1/agents/${ids[0]}`, { token: operator.token })).status, 404)
  const [tgt] = await t.ctx.db.select().from(target).where(eq(target.id, targetId))
  assert.deepEqual(tgt!.connection, { type: 'agent', agent_id: null }, 'the target stays, unbound')
  const actions = (await t.ctx.db.select().from(auditLog).where(eq(auditLog.resourceId, ids[0]!))).map((a) => `${a.action} ${a.outcome}`)
  assert.deepEqual(actions, ['agents.enroll success', 'agents.revoke denied', 'agents.revoke success', 'agents.delete success'])
})

test('counts by state (operator) and the agents a token enrolled (admin), for the dashboard and the enrol wizard', async () => {
  const before = await call(app, 'GET', '/api/v1/agents/counts', { token: operator.token })
  assert.equal(before.status, 200, JSON.stringify(before.body))
  assert.equal((await call(app, 'GET', '/api/v1/agents/counts', { token: viewer.token })).status, 403)

  const created = await call(app, 'POST', '/api/v1/agents/enrollment-tokens', { token: admin.token, body: { name: 'wizard', max_uses: 2 } })
  const tokenId: string = created.body.id
  const none = await call(app, 'GET', `/api/v1/agents/enrollment-tokens/${tokenId}/agents`, { token: admin.token })
  assert.equal(none.status, 200)
  assert.deepEqual([none.body.token.uses, none.body.agents], [0, []])

  const other = await call(app, 'POST', '/api/v1/agents/enrollment-tokens', { token: admin.token, body: {} })
  const enrolWith = async (token: string, hostname: string) =>
    (
      await enrollAgent(
        t.ctx,
        { caCertPem: 'ca' },
        create(EnrollRequestSchema, {
          enrollmentToken: token,
          agentProtocol: { major: 1, minor: 0 },
          agentVersion: '0.1.0',
          identityPublicKey: generateEd25519KeyPair().publicKeyRaw,
          boxPublicKey: generateBoxKeyPair().publicKey,
          host: { hostname, os: OperatingSystem.LINUX },
        }),
      )
    ).agentId
  const zulu = await enrolWith(created.body.token, 'zulu')
  const yankee = await enrolWith(created.body.token, 'yankee')
  await enrolWith(other.body.token, 'xray')
  await t.ctx.db.insert(agentSession).values({ agentId: zulu, sessionId: crypto.randomUUID(), controllerId: crypto.randomUUID(), peerAddress: '192.0.2.9:40000', connectedAt: new Date() })

  const mine = await call(app, 'GET', `/api/v1/agents/enrollment-tokens/${tokenId}/agents`, { token: admin.token })
  assert.equal(mine.status, 200)
  assert.equal(mine.body.token.uses, 2)
  assert.equal(mine.body.token.status, 'exhausted')
  assert.deepEqual(
    mine.body.agents.map((a: { id: string; hostname: string; status: string }) => [a.id, a.hostname, a.status]),
    [
      [yankee, 'yankee', 'offline'],
      [zulu, 'zulu', 'online'],
    ],
    'only the agents of this token, by name',
  )
  assert.equal((await call(app, 'GET', `/api/v1/agents/enrollment-tokens/${tokenId}/agents`, { token: operator.token })).status, 403)
  assert.equal((await call(app, 'GET', `/api/v1/agents/enrollment-tokens/${crypto.randomUUID()}/agents`, { token: admin.token })).status, 404)
  assert.equal((await call(app, 'GET', '/api/v1/agents/enrollment-tokens/nope/agents', { token: admin.token })).status, 404)

  const after = await call(app, 'GET', '/api/v1/agents/counts', { token: operator.token })
  assert.deepEqual(
    { online: after.body.online - before.body.online, offline: after.body.offline - before.body.offline, revoked: after.body.revoked - before.body.revoked, total: after.body.total - before.body.total },
    { online: 1, offline: 2, revoked: 0, total: 3 },
  )
  await call(app, 'POST', `/api/v1/agents/${zulu}/revoke`, { token: admin.token, body: {} })
  const revoked = await call(app, 'GET', '/api/v1/agents/counts', { token: operator.token })
  assert.deepEqual([revoked.body.online, revoked.body.revoked], [after.body.online - 1, after.body.revoked + 1])
  assert.equal(revoked.body.online + revoked.body.offline + revoked.body.revoked, revoked.body.total)
})
