import * as grpc from '@grpc/grpc-js'
import { and, isNotNull, sql } from 'drizzle-orm'
import type { ConnectRequest, ConnectResponse } from '../../../../proto/gen/opsconductor/agent/v1/agent_pb.ts'
import type { AppContext } from '../../context.ts'
import { uuidArray } from '../../db/client.ts'
import { agent } from '../agents.sql.ts'
import { Dispatcher } from '../assignments/dispatcher.ts'
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
  for (const t of [seenTimer, sweepTimer]) t.unref()
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
