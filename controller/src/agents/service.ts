import * as grpc from '@grpc/grpc-js'
import { and, asc, eq, getTableColumns, gt, gte, inArray, isNotNull, isNull, lt, not, or, sql } from 'drizzle-orm'
import { z } from 'zod'
import type { AppContext } from '../context.ts'
import type { Db } from '../db/client.ts'
import { containsText } from '../db/text-search.ts'
import { NotFoundError } from '../errors.ts'
import { decodeCursor, pageOf, type Page } from '../http/pagination.ts'
import { target } from '../targets/targets.sql.ts'
import { agent, type AgentRow } from './agents.sql.ts'
import { agentSession } from './assignments/assignments.sql.ts'
import { isVersionSupported, versionSupportedSql } from './version-support.ts'

/** An agent counts as online while a controller holds its session and it was heard from this recently. */
export const AGENT_ONLINE_WINDOW_MS = 45_000

export const AGENT_STATUSES = ['online', 'offline', 'revoked'] as const
export type AgentStatus = (typeof AGENT_STATUSES)[number]

export interface AgentDto {
  id: string
  name: string
  hostname: string
  status: AgentStatus
  identity_public_key: string
  box_public_key: string
  facts: Record<string, unknown>
  agent_version: string
  /** agent_version is at least OPSC_AGENT_MIN_VERSION (false when it does not parse). */
  version_supported: boolean
  protocol_version: string
  target_id: string | null
  enrolled_at: string
  last_seen_at: string | null
  /** Where the agent connects from (as the controller sees it). */
  address: string | null
  revoked_at: string | null
}

/** An agent row with whether some controller holds its session. */
type AgentWithSession = AgentRow & { connected: boolean; peerAddress: string | null }

export function agentStatus(row: Pick<AgentWithSession, 'revokedAt' | 'lastSeenAt' | 'connected'>, now: Date): AgentStatus {
  if (row.revokedAt) return 'revoked'
  return row.connected && row.lastSeenAt && row.lastSeenAt.getTime() >= now.getTime() - AGENT_ONLINE_WINDOW_MS ? 'online' : 'offline'
}

export function agentDto(row: AgentWithSession, now: Date, minVersion: string): AgentDto {
  return {
    id: row.id,
    name: row.name,
    hostname: row.hostname,
    status: agentStatus(row, now),
    identity_public_key: row.identityPublicKey,
    box_public_key: row.boxPublicKey,
    facts: row.facts,
    agent_version: row.agentVersion,
    version_supported: isVersionSupported(row.agentVersion, minVersion),
    protocol_version: row.protocolVersion,
    target_id: row.targetId,
    enrolled_at: row.enrolledAt.toISOString(),
    last_seen_at: row.lastSeenAt?.toISOString() ?? null,
    address: row.peerAddress ? row.peerAddress.replace(/:\d+$/, '') : ((row.facts['address'] as string | undefined) ?? null),
    revoked_at: row.revokedAt?.toISOString() ?? null,
  }
}

export const ListAgentsQuery = z.object({
  q: z.string().trim().max(100).optional(),
  status: z.enum(AGENT_STATUSES).optional(),
  /** true: agents (not revoked) older than OPSC_AGENT_MIN_VERSION; false: all others. */
  outdated: z.enum(['true', 'false']).optional(),
})

/** Outdated: still allowed to connect, and below the minimum version (a revoked agent needs no upgrade). */
const outdatedCondition = (minVersion: string) => and(isNull(agent.revokedAt), not(versionSupportedSql(agent.agentVersion, minVersion)))

const hasSession = sql<boolean>`exists (select 1 from ${agentSession} where ${agentSession.agentId} = ${agent.id})`
const withSession = {
  ...getTableColumns(agent),
  connected: hasSession,
  peerAddress: sql<string | null>`(select ${agentSession.peerAddress} from ${agentSession} where ${agentSession.agentId} = ${agent.id})`,
}

function statusCondition(status: AgentStatus, now: Date) {
  const since = new Date(now.getTime() - AGENT_ONLINE_WINDOW_MS)
  if (status === 'revoked') return isNotNull(agent.revokedAt)
  const online = and(gte(agent.lastSeenAt, since), hasSession)
  if (status === 'online') return and(isNull(agent.revokedAt), online)
  return and(isNull(agent.revokedAt), or(isNull(agent.lastSeenAt), lt(agent.lastSeenAt, since), not(hasSession)))
}

/** By name (case-insensitive), then id: a keyset that stays stable as agents come and go. */
export async function listAgents(ctx: AppContext, query: z.infer<typeof ListAgentsQuery>, page: { limit: number; cursor?: string | undefined }): Promise<Page<AgentDto>> {
  const after = page.cursor ? decodeCursor(page.cursor, z.object({ n: z.string(), i: z.uuid() })) : undefined
  const now = ctx.clock()
  const minVersion = ctx.config.OPSC_AGENT_MIN_VERSION
  const lowerName = sql`lower(${agent.name})`
  const conditions = [
    after ? or(gt(lowerName, after.n), and(eq(lowerName, after.n), gt(agent.id, after.i))) : undefined,
    query.status ? statusCondition(query.status, now) : undefined,
    query.outdated ? (query.outdated === 'true' ? outdatedCondition(minVersion) : not(outdatedCondition(minVersion)!)) : undefined,
    query.q ? containsText(query.q, agent.name, agent.hostname) : undefined,
  ].filter((c) => c !== undefined)
  const rows = await ctx.db
    .select(withSession)
    .from(agent)
    .where(conditions.length ? and(...conditions) : undefined)
    .orderBy(asc(lowerName), asc(agent.id))
    .limit(page.limit + 1)
  return pageOf(rows, page.limit, (r) => agentDto(r, now, minVersion), (r) => ({ n: r.name.toLowerCase(), i: r.id }))
}

export interface AgentCountsDto {
  online: number
  offline: number
  revoked: number
  total: number
  /** Not revoked and older than min_version. */
  outdated: number
  /** OPSC_AGENT_MIN_VERSION: the oldest agent version this controller supports. */
  min_version: string
}

/** How many agents are in each state, in one query (the dashboard and the list's header poll it). */
export async function agentCounts(ctx: AppContext): Promise<AgentCountsDto> {
  const since = new Date(ctx.clock().getTime() - AGENT_ONLINE_WINDOW_MS)
  const minVersion = ctx.config.OPSC_AGENT_MIN_VERSION
  const [row] = await ctx.db
    .select({
      total: sql<number>`count(*)::int`,
      revoked: sql<number>`count(*) filter (where ${agent.revokedAt} is not null)::int`,
      online: sql<number>`count(*) filter (where ${and(isNull(agent.revokedAt), gte(agent.lastSeenAt, since), hasSession)})::int`,
      outdated: sql<number>`count(*) filter (where ${outdatedCondition(minVersion)})::int`,
    })
    .from(agent)
  const total = Number(row?.total ?? 0)
  const revoked = Number(row?.revoked ?? 0)
  const online = Number(row?.online ?? 0)
  return { online, offline: total - revoked - online, revoked, total, outdated: Number(row?.outdated ?? 0), min_version: minVersion }
}

/** The agents with these ids (any order), as the list shows them. */
export async function agentsByIds(ctx: AppContext, ids: string[]): Promise<AgentDto[]> {
  if (ids.length === 0) return []
  const now = ctx.clock()
  const rows = await ctx.db.select(withSession).from(agent).where(inArray(agent.id, ids)).orderBy(asc(sql`lower(${agent.name})`), asc(agent.id))
  return rows.map((r) => agentDto(r, now, ctx.config.OPSC_AGENT_MIN_VERSION))
}

async function agentRow(db: Db, id: string): Promise<AgentWithSession> {
  if (!z.uuid().safeParse(id).success) throw new NotFoundError('agent', id)
  const [row] = await db.select(withSession).from(agent).where(eq(agent.id, id))
  if (!row) throw new NotFoundError('agent', id)
  return row
}

export async function getAgent(ctx: AppContext, id: string): Promise<AgentDto> {
  return agentDto(await agentRow(ctx.db, id), ctx.clock(), ctx.config.OPSC_AGENT_MIN_VERSION)
}

/** A revoked agent keeps its record (and its target) but may no longer connect. Idempotent. */
export async function revokeAgent(ctx: AppContext, id: string): Promise<AgentDto> {
  const row = await agentRow(ctx.db, id)
  const [updated] = await ctx.db
    .update(agent)
    .set({ revokedAt: row.revokedAt ?? ctx.clock() })
    .where(eq(agent.id, id))
    .returning()
  // A revoked agent loses its stream at once, not at its next reconnect.
  ctx.agentGateway?.disconnect(id, grpc.status.PERMISSION_DENIED, 'this agent has been revoked')
  return agentDto({ ...updated!, connected: false, peerAddress: null }, ctx.clock(), ctx.config.OPSC_AGENT_MIN_VERSION)
}

/** Removes the agent; its target stays, unbound (`agent_id: null`), so it can be re-enrolled. */
export async function removeAgent(ctx: AppContext, id: string): Promise<AgentDto> {
  const row = await agentRow(ctx.db, id)
  await ctx.db.transaction(async (tx) => {
    await tx
      .update(target)
      .set({ connection: { type: 'agent', agent_id: null }, updatedAt: ctx.clock() })
      .where(and(sql`${target.connection}->>'type' = 'agent'`, sql`${target.connection}->>'agent_id' = ${id}`))
    await tx.delete(agent).where(eq(agent.id, id))
  })
  // The agent exits 3 on this status and wording (agent/src/connection.ts identityRefusal).
  ctx.agentGateway?.disconnect(id, grpc.status.UNAUTHENTICATED, 'this agent has been deleted')
  return agentDto({ ...row, connected: false }, ctx.clock(), ctx.config.OPSC_AGENT_MIN_VERSION)
}
