import { randomBytes } from 'node:crypto'
import { and, asc, desc, eq, gte, lt, or, sql } from 'drizzle-orm'
import { z } from 'zod'
import { auditLog } from '../audit/audit.sql.ts'
import { appendAudit } from '../audit/service.ts'
import type { Actor, Principal } from '../auth/principal.ts'
import { sha256Hex } from '../auth/sessions.ts'
import type { AppContext } from '../context.ts'
import { isUniqueViolation, type Db } from '../db/client.ts'
import { AppError, NotFoundError, ValidationError } from '../errors.ts'
import { decodeCursor, pageOf, type Page } from '../http/pagination.ts'
import { escapeLike } from '../db/text-search.ts'
import { Tags } from '../targets/schemas.ts'
import { target, targetGroup, targetGroupMember, type OsType } from '../targets/targets.sql.ts'
import { create } from '@bufbuild/protobuf'
import {
  EnrollResponseSchema,
  ProtocolVersionSchema,
  SigningKeySchema,
  type EnrollRequest,
  type EnrollResponse,
  type HostFacts,
} from '../../../proto/gen/opsconductor/agent/v1/agent_pb.ts'
import { isUsableBoxPublicKey } from '../../../proto/src/seal.ts'
import { isCompatibleProtocol, PROTOCOL_VERSION } from '../../../proto/src/version.ts'
import { agent, enrollmentToken, type EnrollmentTokenRow } from './agents.sql.ts'
import { factsFromHost, OS_NAMES } from './facts.ts'
import { agentsByIds, type AgentDto } from './service.ts'
import { activeSigningPublicKeys, ensureSigningKey } from './signing-keys.ts'
import { LOCK_CLASS } from '../db/locks.ts'

export const ENROLLMENT_TOKEN_PREFIX = 'opsc_et_'
const DAY_S = 86_400

export const CreateEnrollmentTokenInput = z
  .object({
    name: z.string().trim().min(1).max(200).optional(),
    expires_in_seconds: z.number().int().min(60).max(30 * DAY_S).default(DAY_S),
    max_uses: z.number().int().min(1).max(10_000).default(1),
    tags: Tags.optional(),
    group_id: z.uuid().optional(),
  })
  .strict()
export type CreateEnrollmentTokenInput = z.infer<typeof CreateEnrollmentTokenInput>

export type EnrollmentTokenStatus = 'active' | 'expired' | 'exhausted' | 'revoked'

export interface EnrollmentTokenDto {
  id: string
  name: string | null
  prefix: string
  expires_at: string
  max_uses: number
  uses: number
  tags: Record<string, string>
  group_id: string | null
  created_by: string | null
  created_at: string
  revoked_at: string | null
  status: EnrollmentTokenStatus
}

function tokenStatus(row: EnrollmentTokenRow, now: Date): EnrollmentTokenStatus {
  if (row.revokedAt) return 'revoked'
  if (row.expiresAt.getTime() <= now.getTime()) return 'expired'
  if (row.uses >= row.maxUses) return 'exhausted'
  return 'active'
}

export function enrollmentTokenDto(row: EnrollmentTokenRow, now: Date): EnrollmentTokenDto {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    expires_at: row.expiresAt.toISOString(),
    max_uses: row.maxUses,
    uses: row.uses,
    tags: row.tags,
    group_id: row.groupId,
    created_by: row.createdBy,
    created_at: row.createdAt.toISOString(),
    revoked_at: row.revokedAt?.toISOString() ?? null,
    status: tokenStatus(row, now),
  }
}

export interface EnrollCommands {
  linux: string
  windows: string
}

/** The exact lines an operator pastes on a host; `controller` is `host:grpc-port`. */
export function enrollCommands(controller: string, token: string, caFingerprint: string | null): EnrollCommands {
  const args = `enroll --controller ${controller} --token ${token}${caFingerprint ? ` --ca-fingerprint ${caFingerprint}` : ''}`
  return {
    linux: `sudo opsconductor-agent ${args}`,
    windows: `& "$env:ProgramFiles\\OpsConductor\\Agent\\opsconductor-agent.cmd" ${args}`,
  }
}

/** Creates a token; the secret is returned once, only its SHA-256 is stored. */
export async function createEnrollmentToken(
  ctx: AppContext,
  principal: Principal | undefined,
  input: CreateEnrollmentTokenInput,
): Promise<{ row: EnrollmentTokenRow; token: string }> {
  if (input.group_id) {
    const [group] = await ctx.db.select({ id: targetGroup.id }).from(targetGroup).where(eq(targetGroup.id, input.group_id))
    if (!group) throw new ValidationError(`no target group ${input.group_id}`, [{ path: 'group_id', message: 'no such target group' }])
  }
  const now = ctx.clock()
  const token = ENROLLMENT_TOKEN_PREFIX + randomBytes(30).toString('base64url')
  const [row] = await ctx.db
    .insert(enrollmentToken)
    .values({
      name: input.name ?? null,
      tokenHash: sha256Hex(token),
      prefix: token.slice(0, ENROLLMENT_TOKEN_PREFIX.length + 4),
      expiresAt: new Date(now.getTime() + input.expires_in_seconds * 1000),
      maxUses: input.max_uses,
      tags: input.tags ?? {},
      groupId: input.group_id ?? null,
      createdBy: principal?.userId ?? null,
      createdAt: now,
    })
    .returning()
  return { row: row!, token }
}

/** Newest first, keyset-paginated on (created_at, id). */
export async function listEnrollmentTokens(ctx: AppContext, page: { limit: number; cursor?: string | undefined }): Promise<Page<EnrollmentTokenDto>> {
  const after = page.cursor ? decodeCursor(page.cursor, z.object({ c: z.iso.datetime(), i: z.uuid() })) : undefined
  const rows = await ctx.db
    .select()
    .from(enrollmentToken)
    .where(
      after
        ? or(lt(enrollmentToken.createdAt, new Date(after.c)), and(eq(enrollmentToken.createdAt, new Date(after.c)), lt(enrollmentToken.id, after.i)))
        : undefined,
    )
    .orderBy(desc(enrollmentToken.createdAt), desc(enrollmentToken.id))
    .limit(page.limit + 1)
  const now = ctx.clock()
  return pageOf(rows, page.limit, (r) => enrollmentTokenDto(r, now), (r) => ({ c: r.createdAt.toISOString(), i: r.id }))
}

export async function revokeEnrollmentToken(ctx: AppContext, id: string): Promise<EnrollmentTokenDto> {
  if (!z.uuid().safeParse(id).success) throw new NotFoundError('enrollment token', id)
  const [row] = await ctx.db
    .update(enrollmentToken)
    .set({ revokedAt: sql`coalesce(${enrollmentToken.revokedAt}, ${ctx.clock().toISOString()}::timestamptz)` })
    .where(eq(enrollmentToken.id, id))
    .returning()
  if (!row) throw new NotFoundError('enrollment token', id)
  return enrollmentTokenDto(row, ctx.clock())
}

/** At most this many agents are listed per token (a 10,000-use token lists its first ones). */
export const TOKEN_AGENTS_LIMIT = 100

/**
 * A token and the agents enrolled with it, as the audit log records each enrollment (success rows
 * of `agents.enroll` name the token); the enrol wizard polls this to see its agent arrive.
 */
export async function enrollmentTokenAgents(ctx: AppContext, id: string): Promise<{ token: EnrollmentTokenDto; agents: AgentDto[] }> {
  if (!z.uuid().safeParse(id).success) throw new NotFoundError('enrollment token', id)
  const [row] = await ctx.db.select().from(enrollmentToken).where(eq(enrollmentToken.id, id))
  if (!row) throw new NotFoundError('enrollment token', id)
  const enrolled = await ctx.db
    .select({ agentId: auditLog.resourceId })
    .from(auditLog)
    .where(
      and(
        eq(auditLog.action, 'agents.enroll'),
        eq(auditLog.outcome, 'success'),
        gte(auditLog.at, row.createdAt),
        sql`${auditLog.summary}->>'enrollment_token_id' = ${id}`,
      ),
    )
    .orderBy(asc(auditLog.id))
    .limit(TOKEN_AGENTS_LIMIT)
  const ids = enrolled.map((r) => r.agentId).filter((a): a is string => a !== null)
  return { token: enrollmentTokenDto(row, ctx.clock()), agents: await agentsByIds(ctx, ids) }
}

// ---------------------------------------------------------------------------------------------
// Enrollment (the gRPC Enroll call)
// ---------------------------------------------------------------------------------------------

export interface EnrollResult {
  agentId: string
  targetId: string
  signingKeys: { keyId: string; publicKey: Uint8Array }[]
  caCertPem: string
  controllerVersion: string
  controllerProtocol: { major: number; minor: number }
  installationId: string
}

/** Why an enrollment was refused; `code` maps onto the gRPC status. */
export class EnrollRefused extends AppError {
  constructor(
    code: 'FORBIDDEN' | 'VALIDATION' | 'PRECONDITION_FAILED',
    message: string,
    readonly reason: string,
    readonly tokenId: string | null = null,
  ) {
    super(code, message)
  }
}

const KEY_BYTES = 32
const OS_TYPE: Record<string, OsType> = { linux: 'linux', windows: 'windows', darwin: 'unix', freebsd: 'unix' }

/** A valid target name from a host name: disallowed characters become `-`. */
function targetBaseName(hostname: string): string {
  const cleaned = hostname.replace(/[^A-Za-z0-9._@:-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 240)
  return cleaned || 'agent'
}

/** The request checks that need no database: key lengths, host name, protocol. */
function checkRequest(request: EnrollRequest): void {
  if (!request.enrollmentToken) throw new EnrollRefused('FORBIDDEN', 'an enrollment token is required', 'missing_token')
  if (request.identityPublicKey.length !== KEY_BYTES) {
    throw new EnrollRefused('VALIDATION', `identity_public_key must be a raw ${KEY_BYTES}-byte Ed25519 key (got ${request.identityPublicKey.length} bytes)`, 'bad_identity_key')
  }
  if (request.boxPublicKey.length !== KEY_BYTES) {
    throw new EnrollRefused('VALIDATION', `box_public_key must be a raw ${KEY_BYTES}-byte X25519 key (got ${request.boxPublicKey.length} bytes)`, 'bad_box_key')
  }
  if (!isUsableBoxPublicKey(request.boxPublicKey)) {
    throw new EnrollRefused('VALIDATION', 'box_public_key is a low-order X25519 point: secrets sealed to it would not be secret', 'bad_box_key')
  }
  const hostname = request.host?.hostname.trim() ?? ''
  if (!hostname || hostname.length > 253) throw new EnrollRefused('VALIDATION', 'host.hostname is required (at most 253 characters)', 'bad_hostname')
  const proto = request.agentProtocol ?? { major: 0, minor: 0 }
  if (!isCompatibleProtocol(proto, PROTOCOL_VERSION)) {
    throw new EnrollRefused(
      'PRECONDITION_FAILED',
      `agent protocol ${proto.major}.${proto.minor} is not compatible with the controller's ${PROTOCOL_VERSION.major}.${PROTOCOL_VERSION.minor}; upgrade the agent or the controller`,
      'incompatible_protocol',
    )
  }
}

/** The refusal for a token that exists but can no longer be used; null when it can. */
function tokenRefusal(row: EnrollmentTokenRow, now: Date): EnrollRefused | null {
  const status = tokenStatus(row, now)
  if (status === 'active') return null
  const why = { revoked: 'has been revoked', expired: 'has expired', exhausted: 'has already been used the maximum number of times' }[status]
  return new EnrollRefused('FORBIDDEN', `enrollment token ${row.prefix}… ${why}; ask an administrator for a new one`, `token_${status}`, row.id)
}

/**
 * Enrolls an agent in one transaction: the token is locked, checked and counted, the agent and its
 * target (created, or a pre-registered agent target of the same name bound) are written, and the
 * audit row appended. A refusal writes nothing but its own `denied` audit row (never the token).
 */
export async function enrollAgent(ctx: AppContext, ca: { caCertPem: string }, request: EnrollRequest, clientAddress: string | null = null): Promise<EnrollResult> {
  const now = ctx.clock()
  const hostname = request.host?.hostname.trim() ?? ''
  try {
    checkRequest(request)
    const result = await ctx.db.transaction(async (txRaw) => {
      const tx = txRaw as unknown as Db
      const [token] = await tx.select().from(enrollmentToken).where(eq(enrollmentToken.tokenHash, sha256Hex(request.enrollmentToken))).for('update')
      if (!token) throw new EnrollRefused('FORBIDDEN', 'the enrollment token is not valid; check it was copied whole, or ask an administrator for a new one', 'token_unknown')
      const refusal = tokenRefusal(token, now)
      if (refusal) throw refusal
      await tx.update(enrollmentToken).set({ uses: sql`${enrollmentToken.uses} + 1` }).where(eq(enrollmentToken.id, token.id))

      const proto = request.agentProtocol!
      const facts = factsFromHost(request.host!)
      const [row] = await tx
        .insert(agent)
        .values({
          name: hostname,
          hostname,
          identityPublicKey: Buffer.from(request.identityPublicKey).toString('base64'),
          boxPublicKey: Buffer.from(request.boxPublicKey).toString('base64'),
          facts,
          agentVersion: request.agentVersion.slice(0, 100) || 'unknown',
          protocolVersion: `${proto.major}.${proto.minor}`,
          enrolledAt: now,
          lastSeenAt: now,
        })
        .returning()
      const agentId = row!.id
      const targetId = await createOrBindTarget(tx, { agentId, hostname, host: request.host!, facts, tags: token.tags, now })
      await tx.update(agent).set({ targetId }).where(eq(agent.id, agentId))
      if (token.groupId) await tx.insert(targetGroupMember).values({ groupId: token.groupId, targetId }).onConflictDoNothing()

      await ensureSigningKey(tx, ctx.keyring, now)
      const signingKeys = await activeSigningPublicKeys(tx)
      await appendAudit(
        tx,
        {
          actor: { type: 'agent', id: agentId, name: hostname },
          action: 'agents.enroll',
          resourceType: 'agent',
          resourceId: agentId,
          clientAddress,
          outcome: 'success',
          summary: { enrollment_token_id: token.id, target_id: targetId, group_id: token.groupId, agent_version: row!.agentVersion, protocol: row!.protocolVersion },
        },
        now,
      )
      return { agentId, targetId, signingKeys }
    })
    ctx.log.info({ agentId: result.agentId, targetId: result.targetId, hostname }, 'agents.enrolled')
    return {
      ...result,
      caCertPem: ca.caCertPem,
      controllerVersion: ctx.version,
      controllerProtocol: { ...PROTOCOL_VERSION },
      installationId: ctx.installationId,
    }
  } catch (err) {
    if (err instanceof EnrollRefused) {
      const actor: Actor = { type: 'anonymous', id: null, name: null }
      await appendAudit(
        ctx.db,
        {
          actor,
          action: 'agents.enroll',
          resourceType: 'enrollment_token',
          resourceId: err.tokenId,
          clientAddress,
          outcome: 'denied',
          summary: { reason: err.reason, hostname: hostname.slice(0, 253) || null },
        },
        now,
      ).catch((auditErr) => ctx.log.error({ err: auditErr }, 'agents.enroll_audit_failed'))
      ctx.log.warn({ reason: err.reason, hostname, clientAddress }, 'agents.enroll_refused')
    }
    throw err
  }
}

/**
 * The agent's target: a pre-registered agent target named after the host that no agent is bound to
 * yet, or a new one named after the host (`-2`, `-3`… when the name is taken).
 */
async function createOrBindTarget(
  tx: Db,
  a: { agentId: string; hostname: string; host: HostFacts; facts: Record<string, unknown>; tags: Record<string, string>; now: Date },
): Promise<string> {
  const base = targetBaseName(a.hostname)
  const connection = { type: 'agent' as const, agent_id: a.agentId }
  // Hosts cloned from one image enroll at once under one hostname: without this each would pick
  // the same next free name, and all but one would retry until the attempts ran out.
  await tx.execute(sql`select pg_advisory_xact_lock(${LOCK_CLASS.targetName}, hashtext(lower(${base})))`)
  const [unbound] = await tx
    .select()
    .from(target)
    .where(and(sql`lower(${target.name}) = lower(${base})`, sql`${target.connection}->>'type' = 'agent'`, sql`${target.connection}->>'agent_id' is null`))
    .for('update')
  if (unbound) {
    await tx
      .update(target)
      .set({ connection, tags: { ...unbound.tags, ...a.tags }, facts: a.facts, factsUpdatedAt: a.now, lastSeenAt: a.now, updatedAt: a.now })
      .where(eq(target.id, unbound.id))
    return unbound.id
  }
  const address = a.host.fqdn || a.hostname
  const osType = OS_TYPE[OS_NAMES[a.host.os] ?? ''] ?? 'other'
  for (let attempt = 0; attempt < 5; attempt++) {
    const taken = new Set(
      (
        await tx
          .select({ name: target.name })
          .from(target)
          .where(sql`lower(${target.name}) = lower(${base}) or lower(${target.name}) like lower(${escapeLike(base) + '-%'})`)
      ).map((r) => r.name.toLowerCase()),
    )
    let name = base
    for (let n = 2; taken.has(name.toLowerCase()); n++) name = `${base}-${n}`
    try {
      // A savepoint, so a target created through the API under the same name only costs a retry.
      const id = await tx.transaction(async (sp) => {
        const [created] = await sp
          .insert(target)
          .values({ name, address, osType, tags: a.tags, connection, facts: a.facts, factsUpdatedAt: a.now, lastSeenAt: a.now, createdAt: a.now, updatedAt: a.now })
          .returning({ id: target.id })
        return created!.id
      })
      return id
    } catch (err) {
      if (!isUniqueViolation(err)) throw err
    }
  }
  throw new AppError('CONFLICT', `could not find a free target name for ${base}`)
}

/** The gRPC answer for an enrollment. */
export function enrollResponse(result: EnrollResult): EnrollResponse {
  return create(EnrollResponseSchema, {
    agentId: result.agentId,
    signingKeys: result.signingKeys.map((k) => create(SigningKeySchema, { keyId: k.keyId, publicKey: k.publicKey })),
    caCertPem: result.caCertPem,
    controllerProtocol: create(ProtocolVersionSchema, result.controllerProtocol),
    controllerVersion: result.controllerVersion,
    installationId: result.installationId,
  })
}
