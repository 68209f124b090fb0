import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { create } from '@bufbuild/protobuf'
import * as grpc from '@grpc/grpc-js'
import { grpcHealthCheck } from '../../../test/harness/grpc.ts'
import {
  AgentService,
  ConnectRequestSchema,
  EnrollRequestSchema,
  GetControllerInfoRequestSchema,
  type ConnectResponse,
  type EnrollResponse,
  type GetControllerInfoResponse,
} from '../../../proto/gen/opsconductor/agent/v1/agent_pb.ts'
import { grpcServiceDefinition } from '../../../proto/src/grpc.ts'
import { createLogger } from '../log.ts'
import { ensureTls, type TlsMaterial } from '../tls/pki.ts'
import { startGrpcServer, type RunningGrpcServer } from './grpc-server.ts'

let tls: TlsMaterial
let server: RunningGrpcServer
let address: string

before(async () => {
  tls = await ensureTls({ dataDir: mkdtempSync(path.join(tmpdir(), 'opsc-grpc-')) })
  server = await startGrpcServer({ tls, host: '127.0.0.1', port: 0, log: createLogger({ level: 'silent' }), version: '9.9.9', installationId: 'inst-1' })
  address = `localhost:${server.port}`
})
after(() => server.close(1000))

type UnaryFn<Req, Res> = (req: Req, cb: (err: grpc.ServiceError | null, res: Res) => void) => void
const AgentClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(AgentService), 'AgentService')

function controllerInfo(major: number, minor: number): Promise<GetControllerInfoResponse> {
  const client = new AgentClient(address, grpc.credentials.createSsl(Buffer.from(tls.caCertPem!)))
  const request = create(GetControllerInfoRequestSchema, { agentProtocol: { major, minor }, agentVersion: 'test' })
  const call = (client as unknown as { getControllerInfo: UnaryFn<typeof request, GetControllerInfoResponse> }).getControllerInfo.bind(client)
  return new Promise((resolve, reject) =>
    call(request, (err, res) => {
      client.close()
      if (err) reject(err)
      else resolve(res)
    }),
  )
}

test('health reports NOT_SERVING until the controller declares itself ready, then SERVING', async () => {
  server.setServing('NOT_SERVING')
  assert.equal(await grpcHealthCheck(address, tls.caCertPem!), 'NOT_SERVING')
  server.setServing('SERVING')
  assert.equal(await grpcHealthCheck(address, tls.caCertPem!), 'SERVING')
  assert.equal(await grpcHealthCheck(address, tls.caCertPem!, AgentService.typeName), 'SERVING')
})

test('a client that does not trust the controller CA cannot connect', async () => {
  const otherCa = await ensureTls({ dataDir: mkdtempSync(path.join(tmpdir(), 'opsc-grpc-other-')) })
  await assert.rejects(grpcHealthCheck(address, otherCa.caCertPem!, '', 3000), (err: grpc.ServiceError) => {
    assert.equal(err.code, grpc.status.UNAVAILABLE)
    return true
  })
})

test('GetControllerInfo judges the agent protocol version', async () => {
  const same = await controllerInfo(1, 0)
  assert.equal(same.controllerVersion, '9.9.9')
  assert.equal(same.installationId, 'inst-1')
  assert.deepEqual({ major: same.controllerProtocol?.major, minor: same.controllerProtocol?.minor }, { major: 1, minor: 0 })
  assert.equal(same.compatible, true)
  assert.equal((await controllerInfo(1, 1)).compatible, true)
  assert.equal((await controllerInfo(2, 0)).compatible, false)
})

test('Enroll and Connect are served, and answer UNIMPLEMENTED until the gateway implements them', async () => {
  // grpc-js answers UNIMPLEMENTED for unknown methods too; the detail proves the controller registered them.
  const client = new AgentClient(address, grpc.credentials.createSsl(Buffer.from(tls.caCertPem!)))
  try {
    const enroll = (client as unknown as { enroll: UnaryFn<unknown, EnrollResponse> }).enroll.bind(client)
    await assert.rejects(
      new Promise((resolve, reject) => enroll(create(EnrollRequestSchema, { enrollmentToken: 't' }), (err, res) => (err ? reject(err) : resolve(res)))),
      (err: grpc.ServiceError) => {
        assert.equal(err.code, grpc.status.UNIMPLEMENTED)
        assert.match(err.details, /^AgentService\.Enroll is not served by this controller yet$/)
        return true
      },
    )
    const stream = (client as unknown as { connect(): grpc.ClientDuplexStream<unknown, ConnectResponse> }).connect()
    const ended = new Promise<grpc.ServiceError>((resolve) => stream.on('error', resolve))
    stream.on('data', () => assert.fail('Connect must not send frames yet'))
    stream.write(create(ConnectRequestSchema, { frame: { case: 'hello', value: { agentId: 'agent-1' } } }))
    const err = await ended
    assert.equal(err.code, grpc.status.UNIMPLEMENTED)
    assert.match(err.details, /^AgentService\.Connect is not served by this controller yet$/)
  } finally {
    client.close()
  }
})

test('a port already in use is a ListenError naming OPSC_GRPC_PORT', async () => {
  await assert.rejects(
    startGrpcServer({ tls, host: '127.0.0.1', port: server.port, log: createLogger({ level: 'silent' }), version: 'x', installationId: 'y' }),
    (err: Error) => {
      assert.equal(err.name, 'ListenError')
      assert.match(err.message, /^OPSC_GRPC_PORT: /)
      return true
    },
  )
})
