import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { create } from '@bufbuild/protobuf'
import * as grpc from '@grpc/grpc-js'
import { and, eq } from 'drizzle-orm'
import {
  AgentService,
  ConnectRequestSchema,
  EnrollRequestSchema,
  OperatingSystem,
  type ConnectRequest,
  type ConnectResponse,
} from '../../../../proto/gen/opsconductor/agent/v1/agent_pb.ts'
import { ChannelBindingCredentials, tlsChannelBinding } from '../../../../proto/src/channel-binding.ts'
import { grpcServiceDefinition } from '../../../../proto/src/grpc.ts'
import { generateBoxKeyPair } from '../../../../proto/src/seal.ts'
import { generateEd25519KeyPair, signChallenge } from '../../../../proto/src/sign.ts'
import { TestController } from '../../../../test/harness/agents.ts'
import { auditLog } from '../../audit/audit.sql.ts'
import { enrollAgent } from '../enrollment.ts'

const Client = grpc.makeGenericClientConstructor(grpcServiceDefinition(AgentService), 'AgentService')

let controller: TestController
let agentId: string
const identity = generateEd25519KeyPair()

before(async () => {
  controller = await TestController.start()
  const token = await controller.enrollmentToken()
  const enrolled = await enrollAgent(
    controller.ctx,
    { caCertPem: 'unused' },
    create(EnrollRequestSchema, {
      enrollmentToken: token,
      agentProtocol: { major: 1, minor: 0 },
      agentVersion: '0.1.0',
      identityPublicKey: identity.publicKeyRaw,
      boxPublicKey: generateBoxKeyPair().publicKey,
      host: { hostname: 'handshake-test', os: OperatingSystem.LINUX },
    }),
  )
  agentId = enrolled.agentId
})
after(() => controller?.stop())

/** A raw Connect stream on its own TLS connection, exposing that connection's channel binding. */
function open() {
  const bindings: Uint8Array[] = []
  // The CA the controller generated in its data dir: what an enrolled agent pinned.
  const ca = readFileSync(path.join(controller.dataDir, 'tls', 'ca.crt'), 'utf8')
  const client = new Client(controller.grpcAddress, new ChannelBindingCredentials(grpc.credentials.createSsl(Buffer.from(ca)), (s) => bindings.push(tlsChannelBinding(s))))
  const call = (client as unknown as { connect(): grpc.ClientDuplexStream<ConnectRequest, ConnectResponse> }).connect()
  const frames: ConnectResponse[] = []
  let onFrame: (() => void) | undefined
  call.on('data', (f: ConnectResponse) => {
    frames.push(f)
    onFrame?.()
  })
  const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve))
  call.on('error', () => {})
  return {
    call,
    status,
    binding: () => bindings[0]!,
    send: (frame: NonNullable<Parameters<typeof create<typeof ConnectRequestSchema>>[1]>['frame']) => call.write(create(ConnectRequestSchema, { frame })),
    next: async (): Promise<ConnectResponse> => {
      while (frames.length === 0) await new Promise<void>((r) => (onFrame = r))
      return frames.shift()!
    },
    close: () => {
      call.cancel()
      client.close()
    },
  }
}

const hello = (id = agentId) => ({ case: 'hello', value: { agentId: id, agentProtocol: { major: 1, minor: 0 }, agentVersion: '0.1.0' } }) as const

/** The refusal's audit row is written right after the status is sent. */
async function eventually(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!(await check())) {
    assert.ok(Date.now() < deadline, 'audit row never written')
    await new Promise((r) => setTimeout(r, 25))
  }
}

async function deniedReasons(): Promise<string[]> {
  const rows = await controller.ctx.db.select().from(auditLog).where(and(eq(auditLog.action, 'agents.connect'), eq(auditLog.outcome, 'denied')))
  return rows.map((r) => (r.summary as { reason: string }).reason)
}

test('a challenge answered with the right key over the right connection opens the session', async () => {
  const c = open()
  c.send(hello())
  const challenge = await c.next()
  assert.equal(challenge.frame.case, 'challenge')
  const nonce = challenge.frame.case === 'challenge' ? challenge.frame.value.nonce : new Uint8Array()
  const signedAtUnixMs = Date.now()
  c.send({ case: 'challengeResponse', value: { signedAtUnixMs: BigInt(signedAtUnixMs), signature: signChallenge(identity.privateKey, { agentId, nonce, signedAtUnixMs, channelBinding: c.binding() }) } })
  const ready = await c.next()
  assert.equal(ready.frame.case, 'ready')
  assert.ok(controller.ctx.agentGateway!.registry.get(agentId))
  c.call.end()
  await c.status
  c.close()
})

test('a challenge signature made for another TLS connection is refused (no relaying) and audited', async () => {
  const victim = open()
  const relay = open()
  victim.send(hello())
  relay.send(hello())
  const challenge = await relay.next()
  await victim.next()
  const nonce = challenge.frame.case === 'challenge' ? challenge.frame.value.nonce : new Uint8Array()
  const signedAtUnixMs = Date.now()
  // Signed with the real key, but over the victim's connection binding, then presented on the relay's.
  const signature = signChallenge(identity.privateKey, { agentId, nonce, signedAtUnixMs, channelBinding: victim.binding() })
  relay.send({ case: 'challengeResponse', value: { signedAtUnixMs: BigInt(signedAtUnixMs), signature } })
  const status = await relay.status
  assert.equal(status.code, grpc.status.UNAUTHENTICATED)
  assert.match(status.details, /does not verify/)
  await eventually(async () => (await deniedReasons()).includes('challenge_bad_signature'))
  for (const c of [victim, relay]) c.close()
})

test('a stale challenge response, an unknown agent and a missing Hello are refused with clear statuses', async () => {
  const stale = open()
  stale.send(hello())
  const challenge = await stale.next()
  const nonce = challenge.frame.case === 'challenge' ? challenge.frame.value.nonce : new Uint8Array()
  const signedAtUnixMs = Date.now() - 10 * 60_000
  stale.send({ case: 'challengeResponse', value: { signedAtUnixMs: BigInt(signedAtUnixMs), signature: signChallenge(identity.privateKey, { agentId, nonce, signedAtUnixMs, channelBinding: stale.binding() }) } })
  const staleStatus = await stale.status
  assert.equal(staleStatus.code, grpc.status.UNAUTHENTICATED)
  assert.match(staleStatus.details, /clock-skew/)
  await eventually(async () => (await deniedReasons()).includes('challenge_stale'))

  const unknown = open()
  unknown.send(hello(randomUUID()))
  assert.equal((await unknown.status).code, grpc.status.UNAUTHENTICATED)

  const rude = open()
  rude.send({ case: 'heartbeat', value: { sentAtUnixMs: 1n } })
  const rudeStatus = await rude.status
  assert.equal(rudeStatus.code, grpc.status.FAILED_PRECONDITION)
  assert.match(rudeStatus.details, /first frame must be Hello/)
  for (const c of [stale, unknown, rude]) c.close()
})
