import * as grpc from '@grpc/grpc-js'
import { and, eq, inArray, isNotNull, lt, ne, sql } from 'drizzle-orm'
import type { ConnectRequest, ConnectResponse } from '../../../../proto/gen/opsconductor/agent/v1/agent_pb.ts'
import type { AppContext } from '../../context.ts'
import { isUuid, uuidArray } from '../../db/client.ts'
import { agent } from '../agents.sql.ts'
import { agentAssignment, agentSession, FINAL_STATUSES } from '../assignments/assignments.sql.ts'
import { Dispatcher, outcomeOf } from '../assignments/dispatcher.ts'
import { frame } from './frames.ts'
import { SessionRegistry } from './registry.ts'
import { flushLastSeen, serveConnect } from './session.ts'

/** The controller's side of agent sessions: who is connected, dispatch, and the timers that keep both honest. */
export interface AgentGateway {
  registry: SessionRegistry
  dispatcher: Dispatcher
  serve(call: grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>, channelBinding: (peer: string) => Uint8Array | undefined): void
  /** Ends an agent's live session at once (revocation, deletion). */
  disconnect(agentId: string, code: grpc.status, details: string): boolean
  /** Tells every agent to reconnect elsewhere, spread over the drain window, then ends the sessions. */
  drain(reason: string): Promise<void>
  stop(): void
}

const SWEEP_MS = 10_000
/** How soon a verdict that arrived through another controller reaches the steps waiting here. */
const SETTLE_MS = 2_000

export function createAgentGateway(ctx: AppContext): AgentGateway {
  const { config } = ctx
  const registry = new SessionRegistry()
  const dispatcher = new Dispatcher(ctx, registry, { lostGraceMs: config.OPSC_AGENT_LOST_GRACE_MS, outputCapBytes: config.OPSC_OUTPUT_CAP_BYTES })
  const heartbeatMs = config.OPSC_AGENT_HEARTBEAT_MS
  const seenTimer = setInterval(() => {
    flushLastSeen(ctx).catch((err) => ctx.log.warn({ err }, 'agents.last_seen_flush_failed'))
  }, Math.min(5_000, heartbeatMs))
  const sweep = () =>
    Promise.all([dispatcher.sweep(), dropRevoked(ctx, registry), dispatcher.announceKeysIfChanged()]).catch((err) => ctx.log.warn({ err }, 'agents.sweep_failed'))
  const sweepTimer = setInterval(sweep, Math.min(SWEEP_MS, config.OPSC_AGENT_LOST_GRACE_MS))
  // A step this controller waits on may end through another one (its agent reconnected there).
  let settling = false
  const settleTimer = setInterval(() => {
    if (settling) return
    settling = true
    Promise.all([settleFinishedElsewhere(ctx, dispatcher), redeliverUnreceived(ctx, registry, dispatcher)])
      .catch((err) => ctx.log.warn({ err }, 'agents.settle_failed'))
      .finally(() => (settling = false))
  }, SETTLE_MS)
  for (const t of [seenTimer, sweepTimer, settleTimer]) t.unref()
  void sweep()

  return {
    registry,
    dispatcher,
    serve: (call, channelBinding) => serveConnect(call, { ctx, registry, hooks: dispatcher, channelBinding, heartbeatMs }),
    disconnect(agentId, code, details) {
      const session = registry.get(agentId)
      if (!session) return false
      session.close(code, details)
      return true
    },
    async drain(reason) {
      const sessions = [...registry.all()]
      ctx.log.info({ agents: sessions.length }, 'agents.draining')
      const drainFrame = frame({ case: 'drain', value: { reason, reconnectWindowMs: BigInt(config.OPSC_AGENT_DRAIN_WINDOW_MS) } })
      // A peer that stopped reading must not hold up the shutdown.
      await Promise.race([Promise.all(sessions.map((s) => s.send(drainFrame))), new Promise((r) => setTimeout(r, 2_000).unref())])
      for (const s of sessions) s.close(grpc.status.UNAVAILABLE, `controller draining: ${reason}`)
      await flushLastSeen(ctx).catch(() => {})
      ctx.log.info({ agents: sessions.length }, 'agents.drained')
    },
    stop() {
      clearInterval(seenTimer)
      clearInterval(sweepTimer)
      clearInterval(settleTimer)
    },
  }
}

/** Revocation through another controller reaches this one's sessions on the next sweep. */
async function dropRevoked(ctx: AppContext, registry: SessionRegistry): Promise<void> {
  const ids = [...registry.all()].map((s) => s.agentId)
  if (ids.length === 0) return
  // One array parameter, not one per agent: a controller may hold more agents than a query has parameters.
  const revoked = await ctx.db
    .select({ id: agent.id })
    .from(agent)
    .where(and(sql`${agent.id} = any(${uuidArray(ids)})`, isNotNull(agent.revokedAt)))
  for (const { id } of revoked) registry.get(id)?.close(grpc.status.PERMISSION_DENIED, 'this agent has been revoked')
}

/**
 * Verdicts written by another controller: an agent that reconnected elsewhere reports its result
 * there, and the dispatcher's events reach this process's watchers only. Whatever is awaited here
 * and is final in the database is told to its watchers (the step runs this controller holds).
 */
export async function settleFinishedElsewhere(ctx: AppContext, dispatcher: Dispatcher): Promise<number> {
  const ids = dispatcher.events.watched().filter((id) => isUuid(id))
  if (ids.length === 0) return 0
  // Every 2 s with up to tens of thousands of steps in flight: the ids go as one uuid[] value.
  const rows = await ctx.db
    .select()
    .from(agentAssignment)
    .where(and(sql`${agentAssignment.id} = any(${uuidArray(ids)})`, inArray(agentAssignment.status, [...FINAL_STATUSES])))
  for (const row of rows) {
    dispatcher.events.emit(row.id, { type: 'status', status: row.status, at: row.finishedAt ?? ctx.clock() })
    dispatcher.events.emit(row.id, { type: 'finished', outcome: outcomeOf(row) })
  }
  if (rows.length) ctx.log.info({ count: rows.length }, 'agents.verdicts_from_elsewhere')
  return rows.length
}

/** How old a `sent` assignment must be before redeliverUnreceived looks at it (a normal accept comes within milliseconds). */
const REDELIVER_AFTER_MS = 3_000

/**
 * Assignments recorded `sent` that the agent never received: a dispatch that wrote to a session
 * which closed meanwhile (its insert waited out a database restart while the agent reconnected,
 * here or through another controller whose reconnect resend ran before the row existed). For each
 * agent connected here, the agent holds exactly what its Hello listed plus what was written on this
 * session; a `sent` row outside both is written again (put_file is left out: its content lives in
 * the dispatching controller's memory). A copy the agent did get after all is refused as a replay,
 * never run twice.
 */
export async function redeliverUnreceived(ctx: AppContext, registry: SessionRegistry, dispatcher: Dispatcher): Promise<number> {
  if (registry.size === 0) return 0
  // Only agents whose session this controller holds: stale rows of agents elsewhere (or offline) must
  // not fill the batch and hide ours.
  const rows = await ctx.db
    .select()
    .from(agentAssignment)
    .where(
      and(
        eq(agentAssignment.status, 'sent'),
        ne(agentAssignment.actionKind, 'putFile'),
        lt(agentAssignment.createdAt, new Date(ctx.clock().getTime() - REDELIVER_AFTER_MS)),
        sql`${agentAssignment.agentId} in (select ${agentSession.agentId} from ${agentSession} where ${agentSession.controllerId} = ${ctx.nodeId})`,
      ),
    )
    .limit(1_000)
  let sent = 0
  for (const row of rows) {
    const session = registry.get(row.agentId)
    if (!session || session.isClosed || session.heldAtConnect.has(row.id)) continue
    if (!(await dispatcher.deliver(session, row))) continue // already written on this session
    ctx.log.warn({ agentId: row.agentId, assignmentId: row.id, sessionId: session.id }, 'agents.assignment_redelivered')
    sent++
  }
  return sent
}
