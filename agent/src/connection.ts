import { create } from '@bufbuild/protobuf'
import * as grpc from '@grpc/grpc-js'
import type { KeyObject } from 'node:crypto'
import type { Logger } from 'pino'
import {
  AgentService,
  ConnectRequestSchema,
  type ConnectRequest,
  type ConnectResponse,
  type SessionReady,
  type SigningKey,
} from '../../proto/gen/opsconductor/agent/v1/agent_pb.ts'
import type { Cancel, FileChunk, OutputAck, SignedAssignment } from '../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { ChannelBindingCredentials, tlsChannelBinding } from '../../proto/src/channel-binding.ts'
import { grpcServiceDefinition } from '../../proto/src/grpc.ts'
import { VERSION } from '../../proto/src/product-version.ts'
import { signChallenge } from '../../proto/src/sign.ts'
import { PROTOCOL_VERSION } from '../../proto/src/version.ts'
import { collectHostFacts } from './host-facts.ts'

type RequestFrame = NonNullable<Parameters<typeof create<typeof ConnectRequestSchema>>[1]>['frame']

/** What the agent does with an authenticated session. */
export interface SessionHandlers {
  /** Assignment ids still running or with unacked output/results (sent in Hello). */
  inFlight(): string[]
  /** Ids running right now (sent in heartbeats). */
  running(): string[]
  signingKeyIds(): string[]
  onReady(ready: SessionReady): void
  onAssignment(signed: SignedAssignment): void
  onCancel(cancel: Cancel): void
  onFileChunk(chunk: FileChunk): void
  onOutputAck(ack: OutputAck): void
  onResultAck(assignmentId: string): void
  onSigningKeys(keys: SigningKey[]): void
  onDisconnected(): void
}

export interface ConnectionOptions {
  agentId: string
  controllers: string[]
  caCertPem: string
  identityKey: KeyObject
  handlers: SessionHandlers
  log: Logger
  /** Reconnect backoff: full jitter, delay = random(0, min(cap, base · 2^attempt)). */
  backoffBaseMs?: number
  backoffCapMs?: number
  /** Picks the first controller to dial and the next one after a lost session (tests pass a fixed one); default Math.random. */
  random?: () => number
  /** Session up or down (with why it ended), for the status file. */
  onState?(state: { connected: boolean; controller: string; error?: string | undefined }): void
}

const AgentClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(AgentService), 'AgentService')

/** Full-jitter exponential backoff (AWS architecture blog): spreads reconnects of many agents evenly. */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random = Math.random): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30)))
}

/** After a session was lost: any controller but the one just used (it may be the one that died), picked at random. */
export function nextAfterLostSession(current: number, count: number, random = Math.random): number {
  if (count <= 1) return 0
  return (current + 1 + Math.min(count - 2, Math.floor(random() * (count - 1)))) % count
}

type SessionEnd = { ready: boolean; drainWindowMs?: number; status?: grpc.status; details?: string; error?: string }

/**
 * The controller's explicit word that this identity will never be accepted: revoked (the gateway sends
 * PERMISSION_DENIED for nothing else) or unknown, i.e. deleted. Reached only over the pinned CA, so no one else
 * can say it. Other refusals (stale clock, a channel binding a proxy broke) may heal and are retried.
 */
export function identityRefusal(end: Pick<SessionEnd, 'status' | 'details'>): string | undefined {
  if (end.status === grpc.status.PERMISSION_DENIED) return end.details || 'this agent has been revoked'
  if (end.status === grpc.status.UNAUTHENTICATED && /^unknown agent|has been deleted/.test(end.details ?? '')) return end.details
  return undefined
}

function describeEnd(end: SessionEnd): string | undefined {
  if (end.error) return end.error
  if (end.status === undefined || end.status === grpc.status.OK || end.status === grpc.status.CANCELLED) return undefined
  return `${grpc.status[end.status]}: ${end.details ?? ''}`.trim()
}

/**
 * The agent's outbound connection: dials a controller, proves its identity over this TLS
 * connection, keeps the session alive with heartbeats and reconnects with jittered backoff.
 * The agent never listens on any port.
 */
export class ControllerConnection {
  private stopped = false
  private call: grpc.ClientDuplexStream<ConnectRequest, ConnectResponse> | undefined
  private ready = false
  private wakeUp: (() => void) | undefined

  constructor(private readonly opts: ConnectionOptions) {}

  get isReady(): boolean {
    return this.ready
  }

  /** Sends a frame on the live session; false when there is none or its buffer is full (the spool keeps what matters). */
  send(frame: RequestFrame): boolean {
    if (!this.ready || !this.call) return false
    return this.call.write(create(ConnectRequestSchema, { frame }))
  }

  /** Calls `fn` once the live session's send buffer has room again (never if the session ends first). */
  onceWritable(fn: () => void): void {
    this.call?.once('drain', fn)
  }

  /** Connects until stopped, or until the controller refuses this identity for good (resolves with why). */
  async run(): Promise<{ refused?: string }> {
    const base = this.opts.backoffBaseMs ?? 1_000
    const cap = this.opts.backoffCapMs ?? 30_000
    const { controllers } = this.opts
    const random = this.opts.random ?? Math.random
    let attempt = 0
    // A random first controller spreads a fleet over every controller. A failed attempt moves on to the
    // next one in the list; a lost session to a random other one, so the agents of a controller that
    // died spread over the others instead of all landing on its neighbour in the list.
    let next = Math.floor(random() * controllers.length)
    while (!this.stopped) {
      const current = next % controllers.length
      const address = controllers[current]!
      next = current + 1
      const end = await this.session(address).catch((err: Error): SessionEnd => {
        this.opts.log.warn({ controller: address, err: err.message }, 'agent.session_failed')
        return { ready: false, error: err.message }
      })
      if (this.stopped) break
      this.opts.onState?.({ connected: false, controller: address, error: describeEnd(end) })
      const refused = identityRefusal(end)
      if (refused) return { refused }
      if (end.ready) {
        attempt = 0
        next = nextAfterLostSession(current, controllers.length, random)
      }
      let delay: number
      if (end.drainWindowMs !== undefined) delay = Math.floor(Math.random() * end.drainWindowMs)
      else if (end.status === grpc.status.PERMISSION_DENIED || end.status === grpc.status.UNAUTHENTICATED) delay = cap // refused: keep trying, slowly
      else delay = backoffDelay(attempt++, base, cap)
      this.opts.log.info({ controller: address, status: end.status, details: end.details, reconnectInMs: delay }, 'agent.disconnected')
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay)
        this.wakeUp = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    return {}
  }

  stop(): void {
    this.stopped = true
    this.call?.cancel()
    this.wakeUp?.()
  }

  private session(address: string): Promise<SessionEnd> {
    const { handlers, log } = this.opts
    const bindings: Uint8Array[] = []
    const credentials = new ChannelBindingCredentials(grpc.credentials.createSsl(Buffer.from(this.opts.caCertPem)), (socket) => bindings.push(tlsChannelBinding(socket)))
    const client = new AgentClient(address, credentials, { 'grpc.max_receive_message_length': 16 * 1024 * 1024 })
    const call = (client as unknown as { connect(): grpc.ClientDuplexStream<ConnectRequest, ConnectResponse> }).connect()
    this.call = call
    return new Promise<SessionEnd>((resolve) => {
      const end: SessionEnd = { ready: false }
      let heartbeat: NodeJS.Timeout | undefined
      let lastHeard = Date.now()
      const finish = () => {
        clearInterval(heartbeat)
        if (this.ready) handlers.onDisconnected()
        this.ready = false
        this.call = undefined
        client.close()
        resolve(end)
      }
      call.on('data', (response: ConnectResponse) => {
        lastHeard = Date.now()
        const f = response.frame
        switch (f.case) {
          case 'challenge': {
            // Exactly one TLS connection per client: its exporter is the one this stream runs on.
            const binding = bindings.length === 1 ? bindings[0]! : undefined
            if (!binding) {
              log.warn({ connections: bindings.length }, 'agent.no_channel_binding')
              call.cancel()
              return
            }
            const signedAtUnixMs = Date.now()
            const signature = signChallenge(this.opts.identityKey, { agentId: this.opts.agentId, nonce: f.value.nonce, signedAtUnixMs, channelBinding: binding })
            call.write(create(ConnectRequestSchema, { frame: { case: 'challengeResponse', value: { signedAtUnixMs: BigInt(signedAtUnixMs), signature } } }))
            return
          }
          case 'ready': {
            this.ready = true
            end.ready = true
            const interval = Number(f.value.heartbeatIntervalMs) || 15_000
            const timeout = Number(f.value.heartbeatTimeoutMs) || interval * 3
            heartbeat = setInterval(() => {
              if (Date.now() - lastHeard > timeout) {
                log.warn({ silentMs: Date.now() - lastHeard }, 'agent.controller_silent')
                call.cancel()
                return
              }
              this.send({ case: 'heartbeat', value: { sentAtUnixMs: BigInt(Date.now()), runningAssignmentIds: handlers.running() } })
            }, interval)
            log.info({ controller: address, sessionId: f.value.sessionId, controllerVersion: f.value.controllerVersion }, 'agent.session_ready')
            this.opts.onState?.({ connected: true, controller: address })
            if (f.value.signingKeys.length) handlers.onSigningKeys(f.value.signingKeys)
            handlers.onReady(f.value)
            return
          }
          case 'heartbeat':
            return
          case 'assignment':
            return handlers.onAssignment(f.value)
          case 'cancel':
            return handlers.onCancel(f.value)
          case 'fileChunk':
            return handlers.onFileChunk(f.value)
          case 'outputAck':
            return handlers.onOutputAck(f.value)
          case 'resultAck':
            return handlers.onResultAck(f.value.assignmentId)
          case 'signingKey':
            return handlers.onSigningKeys(f.value.signingKeys)
          case 'drain':
            log.info({ reason: f.value.reason, windowMs: Number(f.value.reconnectWindowMs) }, 'agent.drain')
            end.drainWindowMs = Number(f.value.reconnectWindowMs)
            call.cancel()
            return
          default:
            log.warn({ frame: f.case }, 'agent.unexpected_frame')
        }
      })
      call.on('error', (err: grpc.ServiceError) => {
        end.status ??= err.code
        end.details ??= err.details
        if (err.code === grpc.status.PERMISSION_DENIED || err.code === grpc.status.UNAUTHENTICATED) log.error({ details: err.details }, 'agent.refused_by_controller')
      })
      // grpc-js ends every call with exactly one 'status' (after 'error' for a failure).
      call.on('status', (status: grpc.StatusObject) => {
        end.status ??= status.code
        end.details ??= status.details
        finish()
      })
      call.on('end', () => call.end())
      call.write(
        create(ConnectRequestSchema, {
          frame: {
            case: 'hello',
            value: {
              agentId: this.opts.agentId,
              agentProtocol: { ...PROTOCOL_VERSION },
              agentVersion: VERSION,
              host: collectHostFacts(),
              inFlightAssignmentIds: handlers.inFlight(),
              signingKeyIds: handlers.signingKeyIds(),
            },
          },
        }),
      )
    })
  }
}
