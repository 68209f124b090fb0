import { randomBytes } from 'node:crypto'
import { and, desc, eq, isNull, lt } from 'drizzle-orm'
import { z } from 'zod'
import type { Principal } from '../auth/principal.ts'
import { isRole, lowerRole, roleAtLeast, ROLES } from '../auth/roles.ts'
import { sha256Hex } from '../auth/sessions.ts'
import type { AppContext } from '../context.ts'
import { isUuid } from '../db/client.ts'
import { AppError, NotFoundError } from '../errors.ts'
import { appUser } from '../users/users.sql.ts'
import { apiToken } from './api-tokens.sql.ts'

const TOKEN_PREFIX = 'opsc_'
const LAST_USED_RESOLUTION_MS = 60_000

export const CreateApiTokenInput = z
  .object({
    name: z.string().trim().min(1).max(100),
    role: z.enum(ROLES).optional(),
    expires_at: z.iso.datetime({ offset: true }).optional(),
  })
  .strict()
export type CreateApiTokenInput = z.infer<typeof CreateApiTokenInput>

export interface ApiTokenDto {
  id: string
  user_id: string
  name: string
  role: string
  prefix: string
  created_at: string
  expires_at: string | null
  last_used_at: string | null
  revoked_at: string | null
}

function toDto(row: typeof apiToken.$inferSelect): ApiTokenDto {
  return {
    id: row.id,
    user_id: row.userId,
    name: row.name,
    role: row.role,
    prefix: row.prefix,
    created_at: row.createdAt.toISOString(),
    expires_at: row.expiresAt?.toISOString() ?? null,
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
    revoked_at: row.revokedAt?.toISOString() ?? null,
  }
}

/** Creates a token for the caller; its role may not exceed the caller's. The secret is returned once. */
export async function createApiToken(ctx: AppContext, principal: Principal, input: CreateApiTokenInput): Promise<ApiTokenDto & { token: string }> {
  const role = input.role ?? principal.role
  if (!roleAtLeast(principal.role, role)) throw new AppError('FORBIDDEN', `a token cannot have a higher role (${role}) than its creator (${principal.role})`)
  const expiresAt = input.expires_at ? new Date(input.expires_at) : null
  if (expiresAt && expiresAt.getTime() <= ctx.clock().getTime()) throw new AppError('VALIDATION', 'expires_at must be in the future')
  const token = TOKEN_PREFIX + randomBytes(30).toString('base64url')
  const [row] = await ctx.db
    .insert(apiToken)
    .values({ userId: principal.userId, name: input.name, role, prefix: token.slice(0, 12), secretHash: sha256Hex(token), expiresAt, createdAt: ctx.clock() })
    .returning()
  return { ...toDto(row!), token }
}

export async function listApiTokens(ctx: AppContext, principal: Principal, userId?: string): Promise<ApiTokenDto[]> {
  const owner = userId ?? principal.userId
  if (owner !== principal.userId && principal.role !== 'admin') throw new AppError('FORBIDDEN', "only admins can list other users' tokens")
  const rows = await ctx.db.select().from(apiToken).where(eq(apiToken.userId, owner)).orderBy(desc(apiToken.createdAt))
  return rows.map(toDto)
}

export async function revokeApiToken(ctx: AppContext, principal: Principal, id: string): Promise<ApiTokenDto> {
  if (!isUuid(id)) throw new NotFoundError('API token', id)
  const [row] = await ctx.db.select().from(apiToken).where(eq(apiToken.id, id))
  if (!row || (row.userId !== principal.userId && principal.role !== 'admin')) throw new NotFoundError('API token', id)
  const [updated] = await ctx.db
    .update(apiToken)
    .set({ revokedAt: row.revokedAt ?? ctx.clock() })
    .where(eq(apiToken.id, id))
    .returning()
  return toDto(updated!)
}

/** Resolves `Authorization: Bearer opsc_…`; the effective role is the lower of the token's and its owner's current role. */
export async function authenticateApiToken(ctx: AppContext, token: string): Promise<Principal | null> {
  const now = ctx.clock()
  const [row] = await ctx.db
    .select({ token: apiToken, username: appUser.username, userRole: appUser.role, disabled: appUser.disabled })
    .from(apiToken)
    .innerJoin(appUser, eq(appUser.id, apiToken.userId))
    .where(eq(apiToken.secretHash, sha256Hex(token)))
  if (!row || row.disabled || row.token.revokedAt) return null
  if (row.token.expiresAt && row.token.expiresAt.getTime() <= now.getTime()) return null
  if (!isRole(row.token.role) || !isRole(row.userRole)) return null
  if (!row.token.lastUsedAt || now.getTime() - row.token.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
    // Bookkeeping only: never fail or slow the request for it.
    void ctx.db
      .update(apiToken)
      .set({ lastUsedAt: now })
      .where(and(eq(apiToken.id, row.token.id), isNull(apiToken.revokedAt), row.token.lastUsedAt ? lt(apiToken.lastUsedAt, now) : isNull(apiToken.lastUsedAt)))
      .catch((err) => ctx.log.warn({ err }, 'api_token.touch_failed'))
  }
  return {
    kind: 'api_token',
    userId: row.token.userId,
    username: row.username,
    role: lowerRole(row.token.role, row.userRole),
    tokenId: row.token.id,
    tokenName: row.token.name,
    restriction: null,
  }
}
