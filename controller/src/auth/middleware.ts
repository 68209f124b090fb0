import { getConnInfo } from '@hono/node-server/conninfo'
import { and, eq } from 'drizzle-orm'
import type { Context, MiddlewareHandler } from 'hono'
import { authenticateApiToken } from '../api-tokens/service.ts'
import type { AppEnv } from '../context.ts'
import { getSecuritySettings } from '../settings/service.ts'
import { appUser } from '../users/users.sql.ts'
import { authSession } from './auth.sql.ts'
import { accessCookie, csrfMatches, isSafeMethod } from './cookies.ts'
import { InvalidTokenError, verifyAccessToken } from './jwt.ts'
import type { Principal, Restriction } from './principal.ts'

type Outcome = { principal: Principal } | { failure: NonNullable<AppEnv['Variables']['authFailure']> } | null

/**
 * Resolves the caller from `Authorization: Bearer …` (access token or `opsc_` API token) or from
 * the session cookie (state-changing cookie requests must also carry the CSRF header). It never
 * rejects by itself: `allow(...)` on the route decides, so public routes work with stale cookies.
 */
export function authenticate(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    c.set('clientAddress', clientAddress(c))
    const outcome = await resolve(c)
    if (outcome && 'principal' in outcome) c.set('principal', outcome.principal)
    else if (outcome) c.set('authFailure', outcome.failure)
    await next()
  }
}

function clientAddress(c: Context): string | null {
  try {
    return getConnInfo(c).remote.address ?? null
  } catch {
    return null // in-process requests (tests) have no socket
  }
}

async function resolve(c: Context<AppEnv>): Promise<Outcome> {
  const header = c.req.header('authorization')
  if (header !== undefined) {
    const match = /^Bearer\s+(\S+)$/i.exec(header)
    if (!match) return { failure: { code: 'UNAUTHENTICATED', message: 'Authorization must be "Bearer <token>"' } }
    const token = match[1]!
    if (token.startsWith('opsc_') && !token.startsWith('opsc_rt_')) {
      const principal = await authenticateApiToken(c.var.ctx, token)
      return principal ? { principal } : { failure: { code: 'UNAUTHENTICATED', message: 'invalid, expired or revoked API token' } }
    }
    return userFromAccessToken(c, token, 'bearer')
  }
  const cookie = accessCookie(c)
  if (cookie === undefined) return null
  if (!isSafeMethod(c.req.method) && !csrfMatches(c)) {
    return { failure: { code: 'FORBIDDEN', message: 'missing or invalid CSRF token (send the opsc_csrf cookie value as X-CSRF-Token)' } }
  }
  return userFromAccessToken(c, cookie, 'cookie')
}

async function userFromAccessToken(c: Context<AppEnv>, token: string, via: 'bearer' | 'cookie'): Promise<Outcome> {
  const { ctx } = c.var
  let claims
  try {
    claims = await verifyAccessToken(ctx.keyring, token, ctx.clock())
  } catch (err) {
    if (err instanceof InvalidTokenError) return { failure: { code: 'UNAUTHENTICATED', message: err.message } }
    throw err
  }
  // One query: the user as they are now, and whether this login was revoked.
  const [row] = await ctx.db
    .select({
      username: appUser.username,
      role: appUser.role,
      disabled: appUser.disabled,
      mustChangePassword: appUser.mustChangePassword,
      mfaEnabled: appUser.mfaEnabled,
      revokedAt: authSession.revokedAt,
    })
    .from(appUser)
    .innerJoin(authSession, and(eq(authSession.id, claims.sessionId), eq(authSession.userId, appUser.id)))
    .where(eq(appUser.id, claims.userId))
  if (!row || row.disabled || row.revokedAt) {
    return { failure: { code: 'UNAUTHENTICATED', message: 'session is no longer valid; sign in again' } }
  }
  const settings = await getSecuritySettings(ctx.db)
  const restriction: Restriction = row.mustChangePassword
    ? 'password_change'
    : settings.require_mfa && !row.mfaEnabled
      ? 'mfa_enrollment'
      : null
  return {
    principal: { kind: 'user', userId: claims.userId, username: row.username, role: row.role, sessionId: claims.sessionId, via, restriction },
  }
}
