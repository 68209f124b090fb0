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
import { AppError, type ErrorCode } from '../errors.ts'
import { listenWithChannelBinding } from './gateway/listener.ts'
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
  /** What the gateway serves beyond GetControllerInfo; a method without a service answers UNIMPLEMENTED. */
  services?: AgentGatewayServices
  /** Bounds on what one connection may hold, against slow or idle clients; defaults in DEFAULT_CONNECTION_LIMITS. */
  limits?: Partial<ConnectionLimits>
}

export interface ConnectionLimits {
  /** A TLS handshake not finished in this time is cut (a client that connects and says nothing). */
  tlsHandshakeTimeoutMs: number
  /** A connection that carries no call for this long is closed (an agent always holds its Connect stream). */
  idleConnectionMs: number
  /** Connections beyond this many are closed at once (the agents one controller can hold, plus headroom). */
  maxConnections: number
  /** Calls one connection may have open at once: an agent needs one Connect stream and a unary call or two. */
  maxStreamsPerConnection: number
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  tlsHandshakeTimeoutMs: 10_000,
  idleConnectionMs: 60_000,
  maxConnections: 50_000,
  maxStreamsPerConnection: 16,
}

export interface AgentGatewayServices {
  /** Enrolls an agent; an AppError is answered with the matching gRPC status and its message. */
  enroll?(request: EnrollRequest, peer: string | null): Promise<EnrollResponse>
  /** Serves a Connect stream; `channelBinding` gives the TLS exporter of the connection a call arrived on. */
  connect?(call: grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>, channelBinding: (peer: string) => Uint8Array | undefined): void
}

const GRPC_STATUS: Partial<Record<ErrorCode, grpc.status>> = {
  FORBIDDEN: grpc.status.PERMISSION_DENIED,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  VALIDATION: grpc.status.INVALID_ARGUMENT,
  PRECONDITION_FAILED: grpc.status.FAILED_PRECONDITION,
  NOT_FOUND: grpc.status.NOT_FOUND,
  CONFLICT: grpc.status.ABORTED,
  RATE_LIMITED: grpc.status.RESOURCE_EXHAUSTED,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
}

/** An error as a gRPC status: AppErrors keep their (safe) message, anything else is a bare INTERNAL. */
function toGrpcError(err: unknown, log: Logger, method: string): Partial<grpc.StatusObject> {
  if (err instanceof AppError && err.code !== 'INTERNAL') return { code: GRPC_STATUS[err.code] ?? grpc.status.UNKNOWN, details: err.message }
  log.error({ err, method }, 'grpc.internal_error')
  return { code: grpc.status.INTERNAL, details: `AgentService.${method} failed on the controller; see the controller log` }
}

/** The client's address as grpc-js reports it (`ipv4:1.2.3.4:5678`), without the scheme prefix. */
function peerAddress(call: grpc.ServerUnaryCall<unknown, unknown>): string | null {
  const peer = call.getPeer()
  return peer ? peer.replace(/^ipv[46]:/, '') : null
}

/** The agent gateway listener: TLS with the controller's certificate, the AgentService and gRPC health. */
export async function startGrpcServer(opts: GrpcServerOptions): Promise<RunningGrpcServer> {
  const limits = { ...DEFAULT_CONNECTION_LIMITS, ...opts.limits }
  const server = new grpc.Server({
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
    'grpc.max_connection_idle_ms': limits.idleConnectionMs,
    'grpc.max_concurrent_streams': limits.maxStreamsPerConnection,
  })
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
    enroll: (call: grpc.ServerUnaryCall<EnrollRequest, EnrollResponse>, callback: grpc.sendUnaryData<EnrollResponse>) => {
      const enroll = opts.services?.enroll
      if (!enroll) return callback({ code: grpc.status.UNIMPLEMENTED, details: notYetServed('Enroll') })
      enroll(call.request, peerAddress(call)).then(
        (response) => callback(null, response),
        (err: unknown) => callback(toGrpcError(err, opts.log, 'Enroll')),
      )
    },
    connect: (call: grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>) => {
      const connect = opts.services?.connect
      if (!connect) return call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: notYetServed('Connect') })
      connect(call, (peer) => listener.channelBinding(peer))
    },
  })
  // The CA travels in the chain so an enrolling agent can pin it by fingerprint before it trusts anything.
  const listener = await listenWithChannelBinding(server, { tls: opts.tls, certChainPem: presentedChain(opts.tls), host: opts.host, port: opts.port, log: opts.log, limits })
  const port = listener.port
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
        void listener.close()
        // Not unref'd: streams still in their handshake (or stuck peers) must not hold the process open.
        const timer = setTimeout(() => {
          server.forceShutdown()
          listener.destroyConnections()
        }, graceMs)
        server.tryShutdown(() => {
          clearTimeout(timer)
          // grpc-js considers its injected sessions done; a connection still in its handshake is not.
          listener.destroyConnections()
          resolve()
        })
      })),
  }
}

/** The server certificate followed by the CA (when known and not already in the file). */
function presentedChain(tls: TlsMaterial): string {
  const ca = tls.caCertPem?.trim()
  if (!ca || tls.certPem.includes(ca)) return tls.certPem
  return `${tls.certPem.trimEnd()}\n${ca}\n`
}

/** The UNIMPLEMENTED detail for AgentService methods this controller does not serve yet. */
function notYetServed(method: string): string {
  return `AgentService.${method} is not served by this controller yet`
}
