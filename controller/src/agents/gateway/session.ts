import { randomBytes, randomUUID } from 'node:crypto'
import * as grpc from '@grpc/grpc-js'
import { eq, sql } from 'drizzle-orm'
import type { ConnectRequest, ConnectResponse, Hello } from '../../../../proto/gen/opsconductor/agent/v1/agent_pb.ts'
import {
  SecurityEventKind,
  type AssignmentAccepted,
  type AssignmentRejected,
  type AssignmentResult,
  type OutputChunk,
  type SecurityEvent,
} from '../../../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { importEd25519PublicKey, verifyChallengeResponse } from '../../../../proto/src/sign.ts'
import { isCompatibleProtocol, PROTOCOL_VERSION } from '../../../../proto/src/version.ts'
import { appendAudit } from '../../audit/service.ts'
import { appendAuditNotifying } from '../../notify/system-events.ts'
import type { AppContext } from '../../context.ts'
import { agent, type AgentRow } from '../agents.sql.ts'
import { agentSession } from '../assignments/assignments.sql.ts'
import { activeSigningPublicKeys } from '../signing-keys.ts'
import { factsFromHost } from '../facts.ts'
import { frame } from './frames.ts'
import type { SessionRegistry } from './registry.ts'
import { isUuid, uuidArray } from '../../db/client.ts'

/** What the gateway hands to the assignment side once a session is authenticated. */
export interface SessionHooks {
  /** The agent is authenticated; returns the output acks to put in SessionReady, then `afterReady` runs. */
  outputAcksFor(session: AgentSession, hello: Hello): Promise<{ assignmentId: string; ackedSeq: bigint }[]>
  afterReady(session: AgentSession, hello: Hello): Promise<void>
  onClosed(session: AgentSession): void
  onAccepted(session: AgentSession, accepted: AssignmentAccepted): Promise<void>
  onRejected(session: AgentSession, rejected: AssignmentRejected): Promise<void>
  /** Persists a batch of chunks; returns the cumulative acks to send. */
  onOutput(session: AgentSession, chunks: OutputChunk[]): Promise<{ assignmentId: string; ackedSeq: bigint }[]>
  /** Persists a result; true when it may be acked. */
  onResult(session: AgentSession, result: AssignmentResult): Promise<boolean>
}

export interface GatewayDeps {
  ctx: AppContext
  registry: SessionRegistry
  hooks: SessionHooks
  channelBinding(peer: string): Uint8Array | undefined
  heartbeatMs: number
}

const HANDSHAKE_TIMEOUT_MS = 15_000
const MISSED_HEARTBEATS = 3

type Call = grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>

/** One authenticated Connect stream. Frames from the agent are handled strictly in order. */
export class AgentSession {
  readonly id = randomUUID()
  readonly connectedAt: Date
  /** Assignments written on this session: dispatch and the reconnect resend may race for the same one. */
  readonly delivered = new Set<string>()
  /** The assignments the agent said it holds when this session opened (its Hello's in-flight list). */
  readonly heldAtConnect = new Set<string>()
  private queue: Promise<void> = Promise.resolve()
  private pendingOutput: OutputChunk[] = []
  private closed = false
  private lastHeard = Date.now()
  private timer: NodeJS.Timeout | undefined

  constructor(
    readonly agentId: string,
    readonly agentName: string,
    /** Raw X25519 key secrets are sealed to (from the authenticated agent's record). */
    readonly boxPublicKey: Uint8Array,
    readonly peer: string,
    private readonly call: Call,
    private readonly deps: GatewayDeps,
  ) {
    this.connectedAt = deps.ctx.clock()
  }

  get isClosed(): boolean {
    return this.closed
  }

  /** Writes a frame; resolves once the transport can take more (backpressure for file content). */
  send(response: ConnectResponse): Promise<void> {
    if (this.closed || this.call.writableEnded || this.call.destroyed) return Promise.resolve()
    if (this.call.write(response)) return Promise.resolve()
    return new Promise((resolve) => {
      const done = () => {
        this.call.off('drain', done)
        this.call.off('close', done)
        resolve()
      }
      this.call.on('drain', done)
      this.call.on('close', done)
    })
  }

  /** Ends the stream with a status the agent sees (e.g. PERMISSION_DENIED on revoke). */
  close(code: grpc.status, details: string): void {
    if (this.closed) return
    this.finish()
    this.call.emit('error', { code, details })
  }

  /** Called once the stream is gone, however it ended. */
  finish(): void {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    if (this.deps.registry.detach(this)) {
      this.deps.hooks.onClosed(this)
      this.deps.ctx.db
        .delete(agentSession)
        .where(sql`${agentSession.agentId} = ${this.agentId} and ${agentSession.sessionId} = ${this.id}`)
        .catch((err) => this.deps.ctx.log.warn({ err, agentId: this.agentId }, 'agents.session_row_delete_failed'))
    }
    this.deps.ctx.log.info({ agentId: this.agentId, sessionId: this.id }, 'agents.session_closed')
  }

  startHeartbeats(): void {
    if (this.closed) return
    const interval = this.deps.heartbeatMs
    this.timer = setInterval(() => {
      if (Date.now() - this.lastHeard > interval * MISSED_HEARTBEATS) {
        this.deps.ctx.log.warn({ agentId: this.agentId, silentMs: Date.now() - this.lastHeard }, 'agents.heartbeat_timeout')
        this.close(grpc.status.UNAVAILABLE, 'no heartbeat from the agent')
        return
      }
      void this.send(frame({ case: 'heartbeat', value: { sentAtUnixMs: BigInt(Date.now()) } }))
    }, interval)
    this.timer.unref()
  }

  /** Handles one agent frame after authentication. */
  receive(request: ConnectRequest): void {
    this.lastHeard = Date.now()
    markSeen(this.deps.ctx, this.agentId)
    const f = request.frame
    switch (f.case) {
      case 'heartbeat':
        return
      case 'output':
        this.pendingOutput.push(f.value)
        if (this.pendingOutput.length === 1) this.enqueue(() => this.flushOutput())
        return
      case 'accepted':
        return this.enqueue(() => this.deps.hooks.onAccepted(this, f.value))
      case 'rejected':
        return this.enqueue(() => this.deps.hooks.onRejected(this, f.value))
      case 'result':
        return this.enqueue(async () => {
          if (await this.deps.hooks.onResult(this, f.value)) {
            await this.send(frame({ case: 'resultAck', value: { assignmentId: f.value.assignmentId } }))
          }
        })
      case 'securityEvent':
        return this.enqueue(() => auditSecurityEvent(this.deps.ctx, this, f.value))
      default:
        this.deps.ctx.log.warn({ agentId: this.agentId, frame: f.case }, 'agents.unexpected_frame')
    }
  }

  /** Output chunks that arrive while earlier work is in flight are persisted together, in order. */
  private async flushOutput(): Promise<void> {
    const batch = this.pendingOutput
    this.pendingOutput = []
    const acks = await this.deps.hooks.onOutput(this, batch)
    for (const ack of acks) await this.send(frame({ case: 'outputAck', value: ack }))
  }

  enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task).catch((err) => {
      // Unpersisted frames must not be acked: end the session so the agent resends from its spool.
      this.deps.ctx.log.error({ err, agentId: this.agentId }, 'agents.frame_failed')
      this.close(grpc.status.UNAVAILABLE, 'the controller could not persist a frame; reconnect and resend')
    })
  }
}

// last_seen_at is written in batches: one UPDATE per flush, not one per heartbeat.
const seen = new WeakMap<AppContext, Set<string>>()
function markSeen(ctx: AppContext, agentId: string): void {
  let set = seen.get(ctx)
  if (!set) seen.set(ctx, (set = new Set()))
  set.add(agentId)
}

/** Writes the batched last-seen times; called on a timer by the gateway. */
export async function flushLastSeen(ctx: AppContext): Promise<void> {
  const set = seen.get(ctx)
  if (!set || set.size === 0) return
  const ids = [...set]
  set.clear()
  await ctx.db.execute(sql`update agent set last_seen_at = ${ctx.clock().toISOString()}::timestamptz where id = any(${uuidArray(ids)})`)
}

const SECURITY_KIND: Record<number, string> = {
  [SecurityEventKind.BAD_SIGNATURE]: 'bad_signature',
  [SecurityEventKind.UNKNOWN_KEY]: 'unknown_key',
  [SecurityEventKind.WRONG_AGENT]: 'wrong_agent',
  [SecurityEventKind.EXPIRED]: 'expired',
  [SecurityEventKind.NOT_YET_VALID]: 'not_yet_valid',
  [SecurityEventKind.REPLAYED]: 'replayed',
  [SecurityEventKind.MALFORMED]: 'malformed',
  [SecurityEventKind.SECRET_TAMPERED]: 'secret_tampered',
}

async function auditSecurityEvent(ctx: AppContext, session: AgentSession, event: SecurityEvent): Promise<void> {
  const kind = SECURITY_KIND[event.kind] ?? 'unspecified'
  ctx.log.warn({ agentId: session.agentId, kind, assignmentId: event.assignmentId || undefined }, 'agents.security_event')
  // A forged assignment also raises security.forged_assignment, in the audit row's transaction.
  await appendAuditNotifying(ctx, {
    actor: { type: 'agent', id: session.agentId, name: session.agentName },
    action: 'agents.security_event',
    resourceType: 'agent',
    resourceId: session.agentId,
    clientAddress: session.peer,
    outcome: 'denied',
    summary: {
      kind,
      assignment_id: event.assignmentId || null,
      assignment_sha256: Buffer.from(event.assignmentSha256).toString('hex') || null,
      key_id: event.keyId || null,
      detail: event.detail.slice(0, 500),
    },
  })
}

class HandshakeRefused extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
    readonly reason: string,
  ) {
    super(message)
  }
}

/**
 * Serves one Connect stream: Hello → Challenge → ChallengeResponse (signed over the TLS exporter of
 * this very connection) → SessionReady, then frames until either side goes away.
 */
export function serveConnect(call: Call, deps: GatewayDeps): void {
  const { ctx } = deps
  const peer = call.getPeer()
  let session: AgentSession | undefined
  let step: 'hello' | 'challenge' | 'ready' = 'hello'
  let hello: Hello | undefined
  let row: AgentRow | undefined
  let nonce: Uint8Array | undefined
  const handshakeTimer = setTimeout(() => refuse(new HandshakeRefused(grpc.status.DEADLINE_EXCEEDED, 'handshake not completed in time', 'handshake_timeout')), HANDSHAKE_TIMEOUT_MS)
  handshakeTimer.unref()

  const refuse = (err: unknown) => {
    clearTimeout(handshakeTimer)
    const refused = err instanceof HandshakeRefused ? err : undefined
    if (!refused) ctx.log.error({ err, peer }, 'agents.connect_failed')
    const code = refused?.code ?? grpc.status.INTERNAL
    const details = refused?.message ?? 'the controller could not open the session; see its log'
    if (refused && row) {
      void appendAudit(
        ctx.db,
        { actor: { type: 'agent', id: row.id, name: row.name }, action: 'agents.connect', resourceType: 'agent', resourceId: row.id, clientAddress: peer, outcome: 'denied', summary: { reason: refused.reason } },
        ctx.clock(),
      ).catch((auditErr) => ctx.log.error({ err: auditErr }, 'agents.connect_audit_failed'))
    }
    if (refused) ctx.log.warn({ peer, agentId: row?.id, reason: refused.reason }, 'agents.connect_refused')
    step = 'hello'
    call.emit('error', { code, details })
  }

  const handshake = async (request: ConnectRequest) => {
    const f = request.frame
    if (step === 'hello') {
      if (f.case !== 'hello') throw new HandshakeRefused(grpc.status.FAILED_PRECONDITION, 'the first frame must be Hello', 'protocol')
      hello = f.value
      if (!isCompatibleProtocol(hello.agentProtocol ?? { major: 0, minor: 0 }, PROTOCOL_VERSION)) {
        throw new HandshakeRefused(grpc.status.FAILED_PRECONDITION, `protocol ${hello.agentProtocol?.major}.${hello.agentProtocol?.minor} is not compatible with the controller's ${PROTOCOL_VERSION.major}.${PROTOCOL_VERSION.minor}`, 'protocol')
      }
      // Agents exit 3 (do not restart) on PERMISSION_DENIED and on these "unknown agent" refusals; keep the
      // codes and wording in step with identityRefusal in agent/src/connection.ts.
      if (!isUuid(hello.agentId)) throw new HandshakeRefused(grpc.status.UNAUTHENTICATED, 'unknown agent', 'unknown_agent')
      ;[row] = await ctx.db.select().from(agent).where(eq(agent.id, hello.agentId))
      if (!row) throw new HandshakeRefused(grpc.status.UNAUTHENTICATED, 'unknown agent; enrol it again', 'unknown_agent')
      if (row.revokedAt) throw new HandshakeRefused(grpc.status.PERMISSION_DENIED, 'this agent has been revoked', 'revoked')
      nonce = new Uint8Array(randomBytes(32))
      step = 'challenge'
      call.write(frame({ case: 'challenge', value: { nonce, issuedAtUnixMs: BigInt(Date.now()) } }))
      return
    }
    if (f.case !== 'challengeResponse') throw new HandshakeRefused(grpc.status.FAILED_PRECONDITION, 'expected ChallengeResponse', 'protocol')
    const binding = deps.channelBinding(peer)
    if (!binding) throw new HandshakeRefused(grpc.status.UNAUTHENTICATED, 'no TLS channel binding for this connection', 'no_channel_binding')
    const verdict = verifyChallengeResponse(
      importEd25519PublicKey(Buffer.from(row!.identityPublicKey, 'base64')),
      { agentId: row!.id, nonce: nonce!, signedAtUnixMs: Number(f.value.signedAtUnixMs), channelBinding: binding, signature: f.value.signature },
      { now: Date.now() },
    )
    if (!verdict.ok) {
      throw new HandshakeRefused(grpc.status.UNAUTHENTICATED, verdict.reason === 'stale' ? 'challenge response outside the clock-skew window' : 'challenge signature does not verify', `challenge_${verdict.reason}`)
    }
    // Revocation may have happened while the challenge was out.
    const [fresh] = await ctx.db.select({ revokedAt: agent.revokedAt }).from(agent).where(eq(agent.id, row!.id))
    if (!fresh || fresh.revokedAt) throw new HandshakeRefused(grpc.status.PERMISSION_DENIED, 'this agent has been revoked', 'revoked')
    clearTimeout(handshakeTimer)
    // Assigned before any await: a stream that ends mid-setup must still finish this session.
    session = new AgentSession(row!.id, row!.name, new Uint8Array(Buffer.from(row!.boxPublicKey, 'base64')), peer, call, deps)
    for (const id of hello!.inFlightAssignmentIds) session.heldAtConnect.add(id)
    step = 'ready'
    await openSession(session, deps, row!, hello!)
  }

  let handshakeQueue: Promise<void> = Promise.resolve()
  call.on('data', (request: ConnectRequest) => {
    if (step === 'ready' && session) return session.receive(request)
    handshakeQueue = handshakeQueue.then(() => handshake(request)).catch(refuse)
  })
  const ended = () => {
    clearTimeout(handshakeTimer)
    session?.finish()
  }
  call.on('end', () => {
    ended()
    call.end()
  })
  call.on('cancelled', ended)
  call.on('close', ended)
  call.on('error', ended)
}

async function openSession(session: AgentSession, deps: GatewayDeps, row: AgentRow, hello: Hello): Promise<void> {
  const { ctx } = deps
  const peer = session.peer
  const now = ctx.clock()
  const host = hello.host
  await ctx.db
    .update(agent)
    .set({
      lastSeenAt: now,
      agentVersion: hello.agentVersion || row.agentVersion,
      protocolVersion: `${hello.agentProtocol?.major ?? 0}.${hello.agentProtocol?.minor ?? 0}`,
      ...(host ? { facts: { ...factsFromHost(host), address: peer.replace(/:\d+$/, '') }, hostname: host.hostname || row.hostname } : {}),
    })
    .where(eq(agent.id, row.id))
  await ctx.db
    .insert(agentSession)
    .values({ agentId: row.id, sessionId: session.id, controllerId: ctx.nodeId, peerAddress: peer, connectedAt: now })
    .onConflictDoUpdate({ target: agentSession.agentId, set: { sessionId: session.id, controllerId: ctx.nodeId, peerAddress: peer, connectedAt: now } })
  if (session.isClosed) {
    // The stream ended while the session was being recorded: leave nothing behind.
    await ctx.db.delete(agentSession).where(sql`${agentSession.agentId} = ${row.id} and ${agentSession.sessionId} = ${session.id}`)
    return
  }
  const replaced = deps.registry.attach(session)
  if (replaced) {
    replaced.close(grpc.status.ABORTED, 'replaced by a newer session of the same agent')
    await appendAudit(
      ctx.db,
      { actor: { type: 'agent', id: row.id, name: row.name }, action: 'agents.session_replaced', resourceType: 'agent', resourceId: row.id, clientAddress: peer, outcome: 'success', summary: { previous_session_id: replaced.id, previous_peer: replaced.peer, session_id: session.id } },
      now,
    )
  }
  const [outputAcks, signingKeys] = await Promise.all([deps.hooks.outputAcksFor(session, hello), activeSigningPublicKeys(ctx.db)])
  await session.send(
    frame({
      case: 'ready',
      value: {
        sessionId: session.id,
        controllerId: ctx.nodeId,
        controllerProtocol: { ...PROTOCOL_VERSION },
        controllerVersion: ctx.version,
        heartbeatIntervalMs: BigInt(deps.heartbeatMs),
        heartbeatTimeoutMs: BigInt(deps.heartbeatMs * MISSED_HEARTBEATS),
        serverTimeUnixMs: BigInt(Date.now()),
        outputAcks,
        signingKeys,
      },
    }),
  )
  ctx.log.info({ agentId: row.id, sessionId: session.id, peer, inFlight: hello.inFlightAssignmentIds.length }, 'agents.session_ready')
  session.startHeartbeats()
  await deps.hooks.afterReady(session, hello)
}
