import { createHash, randomBytes } from 'node:crypto'
import { and, eq, isNull, ne } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import { authSession, refreshToken } from './auth.sql.ts'

export const REFRESH_TOKEN_TTL_MS = 7 * 24 * 3600_000
const REFRESH_PREFIX = 'opsc_rt_'

export const sha256Hex = (value: string) => createHash('sha256').update(value).digest('hex')

function newRefreshToken(): string {
  return REFRESH_PREFIX + randomBytes(32).toString('base64url')
}

async function issueRefreshToken(db: Db, sessionId: string, now: Date): Promise<string> {
  const token = newRefreshToken()
  await db.insert(refreshToken).values({
    tokenHash: sha256Hex(token),
    sessionId,
    issuedAt: now,
    expiresAt: new Date(now.getTime() + REFRESH_TOKEN_TTL_MS),
  })
  return token
}

export async function createSession(
  db: Db,
  input: { userId: string; clientAddress: string | null; userAgent: string | null },
  now: Date,
): Promise<{ sessionId: string; refreshToken: string }> {
  return db.transaction(async (tx) => {
    const [session] = await tx
      .insert(authSession)
      .values({ userId: input.userId, clientAddress: input.clientAddress, userAgent: input.userAgent?.slice(0, 300) ?? null, createdAt: now, lastUsedAt: now })
      .returning({ id: authSession.id })
    const token = await issueRefreshToken(tx as unknown as Db, session!.id, now)
    return { sessionId: session!.id, refreshToken: token }
  })
}

export type RotateResult =
  | { kind: 'rotated'; sessionId: string; userId: string; refreshToken: string }
  | { kind: 'reused'; sessionId: string; userId: string }
  | { kind: 'invalid'; reason: string }

/**
 * Exchanges a refresh token for a new one in the same family. A token that was already used
 * means it was copied: the whole family is revoked (theft detection).
 */
export async function rotateRefreshToken(db: Db, presented: string, now: Date): Promise<RotateResult> {
  if (!presented.startsWith(REFRESH_PREFIX)) return { kind: 'invalid', reason: 'malformed refresh token' }
  const hash = sha256Hex(presented)
  return db.transaction(async (tx) => {
    const [row] = await tx
      .select({ sessionId: refreshToken.sessionId, usedAt: refreshToken.usedAt, expiresAt: refreshToken.expiresAt, userId: authSession.userId, revokedAt: authSession.revokedAt })
      .from(refreshToken)
      .innerJoin(authSession, eq(authSession.id, refreshToken.sessionId))
      .where(eq(refreshToken.tokenHash, hash))
      .for('update')
    if (!row) return { kind: 'invalid', reason: 'unknown refresh token' }
    if (row.usedAt) {
      await revokeSessionWith(tx as unknown as Db, row.sessionId, 'refresh token reused', now)
      return { kind: 'reused', sessionId: row.sessionId, userId: row.userId }
    }
    if (row.revokedAt) return { kind: 'invalid', reason: 'session revoked' }
    if (row.expiresAt.getTime() <= now.getTime()) return { kind: 'invalid', reason: 'refresh token expired' }
    await tx.update(refreshToken).set({ usedAt: now }).where(eq(refreshToken.tokenHash, hash))
    await tx.update(authSession).set({ lastUsedAt: now }).where(eq(authSession.id, row.sessionId))
    const token = await issueRefreshToken(tx as unknown as Db, row.sessionId, now)
    return { kind: 'rotated', sessionId: row.sessionId, userId: row.userId, refreshToken: token }
  })
}

async function revokeSessionWith(db: Db, sessionId: string, reason: string, now: Date): Promise<void> {
  await db
    .update(authSession)
    .set({ revokedAt: now, revokedReason: reason })
    .where(and(eq(authSession.id, sessionId), isNull(authSession.revokedAt)))
}

export const revokeSession = revokeSessionWith

/** Sessions of a refresh token (for logout by refresh token); null when unknown. */
export async function sessionOfRefreshToken(db: Db, presented: string): Promise<{ sessionId: string; userId: string } | null> {
  const [row] = await db
    .select({ sessionId: refreshToken.sessionId, userId: authSession.userId })
    .from(refreshToken)
    .innerJoin(authSession, eq(authSession.id, refreshToken.sessionId))
    .where(eq(refreshToken.tokenHash, sha256Hex(presented)))
  return row ?? null
}

/** Ends every session of a user (optionally all but one): their access tokens stop working at once. */
export async function revokeUserSessions(db: Db, userId: string, reason: string, now: Date, exceptSessionId?: string): Promise<number> {
  const conditions = [eq(authSession.userId, userId), isNull(authSession.revokedAt)]
  if (exceptSessionId) conditions.push(ne(authSession.id, exceptSessionId))
  const rows = await db
    .update(authSession)
    .set({ revokedAt: now, revokedReason: reason })
    .where(and(...conditions))
    .returning({ id: authSession.id })
  return rows.length
}
