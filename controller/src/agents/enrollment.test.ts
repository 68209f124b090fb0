import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { create } from '@bufbuild/protobuf'
import * as grpc from '@grpc/grpc-js'
import { and, eq } from 'drizzle-orm'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { AgentService, EnrollRequestSchema, OperatingSystem, type EnrollRequest, type EnrollResponse } from '../../../proto/gen/opsconductor/agent/v1/agent_pb.ts'
import { grpcServiceDefinition } from '../../../proto/src/grpc.ts'
import { generateEd25519KeyPair } from '../../../proto/src/sign.ts'
import { auditLog } from '../audit/audit.sql.ts'
import { sha256Hex } from '../auth/sessions.ts'
import { createGroup } from '../target-groups/service.ts'
import { target, targetGroupMember } from '../targets/targets.sql.ts'
import { ensureTls, type TlsMaterial } from '../tls/pki.ts'
import { agent, enrollmentToken } from './agents.sql.ts'
import { createEnrollmentToken, enrollAgent, enrollResponse, revokeEnrollmentToken, type CreateEnrollmentTokenInput } from './enrollment.ts'
import { startGrpcServer, type RunningGrpcServer } from './grpc-server.ts'
import { activeSigningPublicKeys } from './signing-keys.ts'

let t: TestContext
let tls: TlsMaterial
let server: RunningGrpcServer
let address: string

before(async () => {
  t = await createTestContext()
  tls = await ensureTls({ dataDir: mkdtempSync(path.join(tmpdir(), 'opsc-enroll-')) })
  const ca = { caCertPem: tls.caCertPem! }
  server = await startGrpcServer({
    tls,
    host: '127.0.0.1',
    port: 0,
    log: t.ctx.log,
    version: t.ctx.version,
    installationId: t.ctx.installationId,
    services: { enroll: async (request, peer) => enrollResponse(await enrollAgent(t.ctx, ca, request, peer)) },
  })
  address = `localhost:${server.port}`
})
after(async () => {
  await server.close(1000)
  await t.close()
})

const AgentClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(AgentService), 'AgentService')
type UnaryFn<Req, Res> = (req: Req, cb: (err: grpc.ServiceError | null, res: Res) => void) => void

/** A real Enroll call over TLS, trusting only the controller CA. */
function enroll(request: EnrollRequest): Promise<EnrollResponse> {
  const client = new AgentClient(address, grpc.credentials.createSsl(Buffer.from(tls.caCertPem!)))
  const call = (client as unknown as { enroll: UnaryFn<EnrollRequest, EnrollResponse> }).enroll.bind(client)
  return new Promise((resolve, reject) =>
    call(request, (err, res) => {
      client.close()
      if (err) reject(err)
      else resolve(res)
    }),
  )
}

function request(token: string, hostname: string, overrides: Partial<{ identity: Uint8Array; box: Uint8Array; major: number }> = {}): EnrollRequest {
  return create(EnrollRequestSchema, {
    enrollmentToken: token,
    agentProtocol: { major: overrides.major ?? 1, minor: 0 },
    agentVersion: '0.1.0-test',
    identityPublicKey: overrides.identity ?? generateEd25519KeyPair().publicKeyRaw,
    boxPublicKey: overrides.box ?? new Uint8Array(32).fill(7),
    host: { hostname, fqdn: `${hostname}.example.test`, os: OperatingSystem.LINUX, osVersion: 'Debian 12', arch: 'x64', ipAddresses: ['10.0.0.5'], cpuCount: 4, memoryBytes: 8n << 30n },
  })
}

async function newToken(input: Partial<CreateEnrollmentTokenInput> = {}) {
  return createEnrollmentToken(t.ctx, undefined, { expires_in_seconds: 3600, max_uses: 1, ...input })
}

function rejectsWith(promise: Promise<unknown>, code: grpc.status, message: RegExp) {
  return assert.rejects(promise, (err: grpc.ServiceError) => {
    assert.equal(err.code, code, err.details)
    assert.match(err.details, message)
    return true
  })
}

const agentCount = async () => (await t.ctx.db.select({ id: agent.id }).from(agent)).length

test('Enroll over TLS creates the agent, its target (tags, group) and an audit row; the token cannot be reused', async () => {
  const group = await createGroup(t.ctx, { name: 'enrolled-web' })
  const { row, token } = await newToken({ tags: { env: 'prod', role: 'web' }, group_id: group.id })
  const identity = generateEd25519KeyPair().publicKeyRaw
  const res = await enroll(request(token, 'web-01', { identity }))

  assert.match(res.agentId, /^[0-9a-f-]{36}$/)
  assert.equal(res.caCertPem, tls.caCertPem)
  assert.equal(res.installationId, t.ctx.installationId)
  assert.equal(res.controllerVersion, t.ctx.version)
  assert.deepEqual([res.controllerProtocol?.major, res.controllerProtocol?.minor], [1, 0])
  const keys = await activeSigningPublicKeys(t.ctx.db)
  assert.equal(res.signingKeys.length, 1)
  assert.deepEqual(res.signingKeys.map((k) => [k.keyId, Buffer.from(k.publicKey).toString('hex')]), keys.map((k) => [k.keyId, Buffer.from(k.publicKey).toString('hex')]))

  const [stored] = await t.ctx.db.select().from(agent).where(eq(agent.id, res.agentId))
  assert.equal(stored!.hostname, 'web-01')
  assert.equal(stored!.identityPublicKey, Buffer.from(identity).toString('base64'))
  assert.equal(stored!.protocolVersion, '1.0')
  assert.equal(stored!.facts.os, 'linux')
  assert.equal(stored!.facts.memory_bytes, 8 * 2 ** 30)
  const [tgt] = await t.ctx.db.select().from(target).where(eq(target.id, stored!.targetId!))
  assert.equal(tgt!.name, 'web-01')
  assert.equal(tgt!.osType, 'linux')
  assert.deepEqual(tgt!.connection, { type: 'agent', agent_id: res.agentId })
  assert.deepEqual(tgt!.tags, { env: 'prod', role: 'web' })
  const members = await t.ctx.db.select().from(targetGroupMember).where(and(eq(targetGroupMember.groupId, group.id), eq(targetGroupMember.targetId, tgt!.id)))
  assert.equal(members.length, 1)
  const [used] = await t.ctx.db.select().from(enrollmentToken).where(eq(enrollmentToken.id, row.id))
  assert.equal(used!.uses, 1)

  const audits = await t.ctx.db.select().from(auditLog).where(eq(auditLog.action, 'agents.enroll'))
  const success = audits.find((a) => a.outcome === 'success')!
  assert.deepEqual([success.actorType, success.actorId, success.actorName, success.resourceId], ['agent', res.agentId, 'web-01', res.agentId])
  assert.ok(!JSON.stringify(audits).includes(token) && !JSON.stringify(audits).includes(sha256Hex(token)), 'the token is never audited')

  const before = await agentCount()
  await rejectsWith(enroll(request(token, 'web-02')), grpc.status.PERMISSION_DENIED, /maximum number of times/)
  assert.equal(await agentCount(), before, 'no second agent')
  const [still] = await t.ctx.db.select().from(enrollmentToken).where(eq(enrollmentToken.id, row.id))
  assert.equal(still!.uses, 1)
  const denied = (await t.ctx.db.select().from(auditLog).where(eq(auditLog.action, 'agents.enroll'))).filter((a) => a.outcome === 'denied')
  assert.equal(denied.at(-1)!.actorType, 'anonymous')
  assert.equal(denied.at(-1)!.resourceId, row.id)
  assert.equal((denied.at(-1)!.summary as { reason: string }).reason, 'token_exhausted')
})

test('a multi-use token enrolls several hosts; a taken target name gets a suffix', async () => {
  const { token } = await newToken({ max_uses: 3 })
  const a = await enroll(request(token, 'db-01'))
  const b = await enroll(request(token, 'DB-01'))
  const names = await Promise.all(
    [a, b].map(async (r) => {
      const [row] = await t.ctx.db.select().from(agent).where(eq(agent.id, r.agentId))
      const [tgt] = await t.ctx.db.select().from(target).where(eq(target.id, row!.targetId!))
      return tgt!.name
    }),
  )
  assert.deepEqual(names, ['db-01', 'DB-01-2'])
})

test('hosts cloned from one image enroll at once under one hostname and each gets its own target name', async () => {
  const hosts = 12
  // A token each, as an installer would hand out: one shared token would serialise them on its row.
  const tokens = await Promise.all(Array.from({ length: hosts }, () => newToken({ max_uses: 1 })))
  const results = await Promise.all(tokens.map(({ token }) => enroll(request(token, 'clone'))))
  const names = await Promise.all(
    results.map(async (r) => {
      const [row] = await t.ctx.db.select().from(agent).where(eq(agent.id, r.agentId))
      const [tgt] = await t.ctx.db.select().from(target).where(eq(target.id, row!.targetId!))
      return tgt!.name
    }),
  )
  const expected = ['clone', ...Array.from({ length: hosts - 1 }, (_, i) => `clone-${i + 2}`)]
  assert.deepEqual([...names].sort(), [...expected].sort(), 'every host enrolled, no name twice, no gaps')
})

test('a pre-registered agent target of the same name is bound instead of duplicated', async () => {
  const [pre] = await t.ctx.db
    .insert(target)
    .values({ name: 'pre-01', address: 'pre-01', osType: 'linux', connection: { type: 'agent', agent_id: null }, tags: { owner: 'ops' } })
    .returning()
  const { token } = await newToken({ tags: { env: 'dev' } })
  const res = await enroll(request(token, 'pre-01'))
  const [row] = await t.ctx.db.select().from(agent).where(eq(agent.id, res.agentId))
  assert.equal(row!.targetId, pre!.id)
  const [bound] = await t.ctx.db.select().from(target).where(eq(target.id, pre!.id))
  assert.deepEqual(bound!.connection, { type: 'agent', agent_id: res.agentId })
  assert.deepEqual(bound!.tags, { owner: 'ops', env: 'dev' })
})

test('expired, revoked and unknown tokens are refused with PERMISSION_DENIED and nothing is written', async () => {
  const expired = await newToken()
  await t.ctx.db.update(enrollmentToken).set({ expiresAt: new Date(Date.now() - 1000) }).where(eq(enrollmentToken.id, expired.row.id))
  const revoked = await newToken()
  await revokeEnrollmentToken(t.ctx, revoked.row.id)
  const before = await agentCount()
  const targetsBefore = (await t.ctx.db.select({ id: target.id }).from(target)).length
  await rejectsWith(enroll(request(expired.token, 'late-01')), grpc.status.PERMISSION_DENIED, /has expired/)
  await rejectsWith(enroll(request(revoked.token, 'gone-01')), grpc.status.PERMISSION_DENIED, /has been revoked/)
  await rejectsWith(enroll(request('opsc_et_not-a-real-token', 'who-01')), grpc.status.PERMISSION_DENIED, /not valid/)
  await rejectsWith(enroll(request('', 'who-01')), grpc.status.PERMISSION_DENIED, /required/)
  assert.equal(await agentCount(), before)
  assert.equal((await t.ctx.db.select({ id: target.id }).from(target)).length, targetsBefore)
  for (const id of [expired.row.id, revoked.row.id]) {
    const [row] = await t.ctx.db.select().from(enrollmentToken).where(eq(enrollmentToken.id, id))
    assert.equal(row!.uses, 0)
  }
  const reasons = (await t.ctx.db.select().from(auditLog).where(and(eq(auditLog.action, 'agents.enroll'), eq(auditLog.outcome, 'denied')))).map(
    (a) => (a.summary as { reason: string }).reason,
  )
  for (const reason of ['token_expired', 'token_revoked', 'token_unknown', 'missing_token']) assert.ok(reasons.includes(reason), reason)
})

test('bad key lengths and a low-order box key are INVALID_ARGUMENT, an incompatible protocol FAILED_PRECONDITION; the token is not consumed', async () => {
  const { row, token } = await newToken()
  const before = await agentCount()
  await rejectsWith(enroll(request(token, 'k-01', { identity: new Uint8Array(31) })), grpc.status.INVALID_ARGUMENT, /identity_public_key must be a raw 32-byte/)
  await rejectsWith(enroll(request(token, 'k-01', { box: new Uint8Array(33) })), grpc.status.INVALID_ARGUMENT, /box_public_key must be a raw 32-byte/)
  await rejectsWith(enroll(request(token, 'k-01', { box: new Uint8Array(32) })), grpc.status.INVALID_ARGUMENT, /low-order X25519 point/)
  await rejectsWith(enroll(request(token, 'k-01', { major: 2 })), grpc.status.FAILED_PRECONDITION, /agent protocol 2\.0 is not compatible/)
  assert.equal(await agentCount(), before)
  const [unused] = await t.ctx.db.select().from(enrollmentToken).where(eq(enrollmentToken.id, row.id))
  assert.equal(unused!.uses, 0)
  await enroll(request(token, 'k-01'))
  assert.equal(await agentCount(), before + 1)
})
