import { create } from '@bufbuild/protobuf'
import * as grpc from '@grpc/grpc-js'
import { HealthImplementation, type ServingStatus } from 'grpc-health-check'
import {
  AgentService,
  GetControllerInfoResponseSchema,
  ProtocolVersionSchema,
  type ConnectRequest,
  type ConnectResponse,
  type EnrollRequest,
  type EnrollResponse,
  type GetControllerInfoRequest,
  type GetControllerInfoResponse,
} from '../../../proto/gen/opsconductor/agent/v1/agent_pb.ts'
import { grpcServiceDefinition } from '../../../proto/src/grpc.ts'
import { isCompatibleProtocol, PROTOCOL_VERSION } from '../../../proto/src/version.ts'
import { listenError } from '../http/server.ts'
import type { Logger } from '../log.ts'
import type { TlsMaterial } from '../tls/pki.ts'

export interface RunningGrpcServer {
  port: number
  setServing(status: ServingStatus): void
  close(graceMs: number): Promise<void>
}

export interface GrpcServerOptions {
  tls: TlsMaterial
  host: string
  port: number
  log: Logger
  version: string
  installationId: string
}

/** The agent gateway listener: TLS with the controller's certificate, the AgentService and gRPC health. */
export async function startGrpcServer(opts: GrpcServerOptions): Promise<RunningGrpcServer> {
  const server = new grpc.Server({ 'grpc.keepalive_permit_without_calls': 1, 'grpc.max_receive_message_length': 16 * 1024 * 1024 })
  const health = new HealthImplementation({ '': 'NOT_SERVING', [AgentService.typeName]: 'NOT_SERVING' })
  health.addToServer(server)
  server.addService(grpcServiceDefinition(AgentService), {
    getControllerInfo: (
      call: grpc.ServerUnaryCall<GetControllerInfoRequest, GetControllerInfoResponse>,
      callback: grpc.sendUnaryData<GetControllerInfoResponse>,
    ) => {
      const agent = call.request.agentProtocol ?? { major: 0, minor: 0 }
      callback(
        null,
        create(GetControllerInfoResponseSchema, {
          controllerVersion: opts.version,
          controllerProtocol: create(ProtocolVersionSchema, PROTOCOL_VERSION),
          compatible: isCompatibleProtocol(agent, PROTOCOL_VERSION),
          installationId: opts.installationId,
        }),
      )
    },
    // Served explicitly so a client learns the method exists but is not ready, rather than grpc-js's "unknown method".
    enroll: (_call: grpc.ServerUnaryCall<EnrollRequest, EnrollResponse>, callback: grpc.sendUnaryData<EnrollResponse>) => {
      callback({ code: grpc.status.UNIMPLEMENTED, details: notYetServed('Enroll') })
    },
    connect: (call: grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>) => {
      call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: notYetServed('Connect') })
    },
  })
  const credentials = grpc.ServerCredentials.createSsl(null, [
    { private_key: Buffer.from(opts.tls.keyPem), cert_chain: Buffer.from(opts.tls.certPem) },
  ])
  const address = opts.host.includes(':') ? `[${opts.host}]:${opts.port}` : `${opts.host}:${opts.port}`
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, credentials, (err, bound) => {
      if (err) reject(listenError(grpcBindCode(err), opts.host, opts.port, 'OPSC_GRPC_PORT'))
      else resolve(bound)
    }),
  )
  const setServing = (status: ServingStatus) => {
    health.setStatus('', status)
    health.setStatus(AgentService.typeName, status)
  }
  let closing: Promise<void> | undefined
  return {
    port,
    setServing,
    close: (graceMs) =>
      (closing ??= new Promise<void>((resolve) => {
        setServing('NOT_SERVING')
        const timer = setTimeout(() => server.forceShutdown(), graceMs)
        timer.unref()
        server.tryShutdown(() => {
          clearTimeout(timer)
          resolve()
        })
      })),
  }
}

/** The UNIMPLEMENTED detail for AgentService methods this controller does not serve yet. */
function notYetServed(method: string): string {
  return `AgentService.${method} is not served by this controller yet`
}

/** grpc-js reports bind failures as plain messages; recover the errno for a clear operator message. */
function grpcBindCode(err: Error): NodeJS.ErrnoException {
  const code = /EADDRINUSE|EACCES|EADDRNOTAVAIL|ENOTFOUND/.exec(err.message)?.[0]
  return Object.assign(new Error(err.message), { code: code ?? 'EBIND' })
}
