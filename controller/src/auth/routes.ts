import { Hono, type Context } from 'hono'
import { z } from 'zod'
import { recordSecurityEvent } from '../audit/events.ts'
import type { AppEnv } from '../context.ts'
import { AppError, RateLimitedError } from '../errors.ts'
import { readJson } from '../http/validate.ts'
import { getSecuritySettings } from '../settings/service.ts'
import { findUserByUsername, getUserRow, insertUser, Username } from '../users/service.ts'
import { allow } from './access.ts'
import { clearSessionCookies, csrfMatches, refreshCookie, setSessionCookies } from './cookies.ts'
import { confirmTotp, disableTotp, enrollTotp } from './mfa.ts'
import type { Principal } from './principal.ts'
import { revokeSession, revokeUserSessions, sessionOfRefreshToken } from './sessions.ts'
import { getMe, login, LoginInput, refresh, updateMe, UpdateMeInput, type IssuedTokens } from './service.ts'

const INVALID_CREDENTIALS = 'invalid username or password'

function principalOf(c: Context<AppEnv>): Principal {
  const principal = c.get('principal')
  if (!principal) throw new AppError('UNAUTHENTICATED', 'authentication required')
  return principal
}

/** Bearer clients get the tokens in the body; the web UI (use_cookies) gets httpOnly cookies and a CSRF token. */
function tokenResponse(c: Context<AppEnv>, tokens: IssuedTokens, useCookies: boolean) {
  if (useCookies) {
    const csrf = setSessionCookies(c, tokens)
    return { token_type: 'Bearer' as const, expires_in: tokens.expiresIn, csrf_token: csrf }
  }
  return { access_token: tokens.accessToken, refresh_token: tokens.refreshToken, token_type: 'Bearer' as const, expires_in: tokens.expiresIn }
}

const RefreshInput = z.object({ refresh_token: z.string().min(1).max(512).optional() }).strict()
const RevokeAllInput = z.object({ user_id: z.uuid().optional() }).strict()
const RegisterInput = z.object({ username: Username, password: z.string().min(1).max(1024) }).strict()
const CodeInput = z.object({ code: z.string().min(1).max(64) }).strict()
const DisableTotpInput = z.object({ password: z.string().min(1).max(1024), code: z.string().min(1).max(64) }).strict()

/** Reads an optional JSON body (refresh and logout may be called with cookies and no body). */
async function optionalJson<S extends z.ZodType>(c: Context<AppEnv>, schema: S): Promise<z.infer<S>> {
  return c.req.header('content-type') ? readJson(c, schema) : schema.parse({})
}

export const authRoutes = new Hono<AppEnv>()
  .post('/login', allow('public'), async (c) => {
    const input = await readJson(c, LoginInput)
    const { ctx } = c.var
    const result = await login(ctx, input, { address: c.get('clientAddress'), userAgent: c.req.header('user-agent') ?? null })
    const target = { resourceType: 'user', resourceId: 'user' in result && result.user ? result.user.id : null }
    const actor = 'user' in result && result.user ? { type: 'user' as const, id: result.user.id, name: result.user.username } : { type: 'anonymous' as const, id: null, name: input.username.slice(0, 100) }
    switch (result.kind) {
      case 'throttled':
        await recordSecurityEvent(c, { action: 'auth.login_throttled', outcome: 'denied', actor, ...target, summary: { username: input.username, retry_after_seconds: result.retryAfter } })
        throw new RateLimitedError(`too many failed sign-ins; try again in ${result.retryAfter} s`, result.retryAfter)
      case 'failed':
        await recordSecurityEvent(c, { action: 'auth.login', outcome: 'failure', actor, ...target, summary: { username: input.username, reason: result.reason } })
        for (const l of result.lockouts) {
          const summary = { username: input.username, scope: l.scope, failures: l.failures, locked_until: l.until.toISOString() }
          await recordSecurityEvent(c, { action: 'auth.login_lockout', outcome: 'denied', actor, ...target, summary })
        }
        throw new AppError('UNAUTHENTICATED', result.reason === 'wrong_mfa_code' ? 'invalid MFA code' : INVALID_CREDENTIALS)
      case 'mfa_required':
        throw new AppError('UNAUTHENTICATED', 'a TOTP code (or a recovery code) is required', { mfa_required: true })
      case 'ok': {
        const settings = await getSecuritySettings(ctx.db)
        await recordSecurityEvent(c, { action: 'auth.login', outcome: 'success', actor, ...target, summary: { username: result.user.username, mfa: result.mfaMethod, cookies: input.use_cookies === true } })
        return c.json({
          ...tokenResponse(c, result.tokens, input.use_cookies === true),
          user: { id: result.user.id, username: result.user.username, role: result.user.role },
          must_change_password: result.user.mustChangePassword,
          mfa_enrollment_required: settings.require_mfa && !result.user.mfaEnabled,
        })
      }
    }
  })
  .post('/refresh', allow('public'), async (c) => {
    const body = await optionalJson(c, RefreshInput)
    const fromCookie = body.refresh_token === undefined
    const presented = body.refresh_token ?? refreshCookie(c)
    if (!presented) throw new AppError('UNAUTHENTICATED', 'no refresh token (send refresh_token, or the session cookie)')
    if (fromCookie && !csrfMatches(c)) throw new AppError('FORBIDDEN', 'missing or invalid CSRF token')
    const result = await refresh(c.var.ctx, presented)
    if (result.kind === 'reused') {
      await recordSecurityEvent(c, {
        action: 'auth.refresh_token_reuse',
        outcome: 'denied',
        actor: { type: 'user', id: result.userId, name: null },
        resourceType: 'session',
        resourceId: result.sessionId,
        summary: { effect: 'every token of this session was revoked' },
      })
      throw new AppError('UNAUTHENTICATED', 'refresh token was already used; the whole session has been revoked')
    }
    if (result.kind === 'invalid') throw new AppError('UNAUTHENTICATED', result.reason)
    c.set('audit', { skip: true }) // routine rotation: not an audit event
    return c.json({ ...tokenResponse(c, result.tokens, fromCookie), user: { id: result.user.id, username: result.user.username, role: result.user.role } })
  })
  .post('/logout', allow('public'), async (c) => {
    const { ctx } = c.var
    const principal = c.get('principal')
    const body = await optionalJson(c, RefreshInput)
    const presented = body.refresh_token ?? refreshCookie(c)
    const session =
      principal?.kind === 'user' ? { sessionId: principal.sessionId, userId: principal.userId } : presented ? await sessionOfRefreshToken(ctx.db, presented) : null
    if (session) await revokeSession(ctx.db, session.sessionId, 'signed out', ctx.clock())
    clearSessionCookies(c)
    c.set('audit', { action: 'auth.logout', resourceType: 'session', resourceId: session?.sessionId ?? null, skip: !session })
    return c.json({ signed_out: session !== null })
  })
  .post('/revoke-all', allow('viewer'), async (c) => {
    const principal = principalOf(c)
    const { user_id: target = principal.userId } = await optionalJson(c, RevokeAllInput)
    if (target !== principal.userId && principal.role !== 'admin') throw new AppError('FORBIDDEN', "only admins can revoke another user's sessions")
    await getUserRow(c.var.ctx.db, target)
    const revoked = await revokeUserSessions(c.var.ctx.db, target, 'revoke-all', c.var.ctx.clock())
    if (target === principal.userId) clearSessionCookies(c)
    c.set('audit', { action: 'auth.revoke_all', resourceType: 'user', resourceId: target, summary: { sessions_revoked: revoked } })
    return c.json({ sessions_revoked: revoked })
  })
  .get('/verify', allow('viewer', { setup: true }), (c) => {
    const p = principalOf(c)
    return c.json({
      user: { id: p.userId, username: p.username, role: p.role },
      authenticated_by: p.kind === 'api_token' ? 'api_token' : p.via,
      ...(p.kind === 'api_token' ? { api_token: { id: p.tokenId, name: p.tokenName } } : { session_id: p.sessionId }),
      restriction: p.restriction,
    })
  })
  .get('/me', allow('viewer', { setup: true }), async (c) => c.json(await getMe(c.var.ctx, principalOf(c))))
  .put('/me', allow('viewer', { setup: true }), async (c) => {
    const principal = principalOf(c)
    const input = await readJson(c, UpdateMeInput)
    const result = await updateMe(c.var.ctx, principal, input)
    c.set('audit', {
      action: result.passwordChanged ? 'auth.password_change' : 'auth.profile_update',
      resourceType: 'user',
      resourceId: principal.userId,
      summary: { fields: Object.keys(input).filter((k) => !k.includes('password')), other_sessions_revoked: result.sessionsRevoked },
    })
    return c.json(result.me)
  })
  .post('/register', allow('public'), async (c) => {
    const { ctx } = c.var
    if (!(await getSecuritySettings(ctx.db)).self_registration) throw new AppError('FORBIDDEN', 'self-registration is disabled on this installation')
    const input = await readJson(c, RegisterInput)
    if (await findUserByUsername(ctx.db, input.username)) throw new AppError('CONFLICT', `username ${input.username} is taken`)
    const { user } = await insertUser(ctx.db, { username: input.username, password: input.password, role: 'viewer', selfRegistered: true, must_change_password: false }, ctx.clock())
    c.set('audit', { action: 'users.self_register', resourceType: 'user', resourceId: user.id, summary: { username: user.username, role: user.role } })
    return c.json(user, 201)
  })
  .post('/mfa/totp/enroll', allow('viewer', { setup: true }), async (c) => {
    const principal = principalOf(c)
    if (principal.kind !== 'user') throw new AppError('FORBIDDEN', 'MFA is managed by the user, not through an API token')
    const enrolment = await enrollTotp(c.var.ctx, principal.userId)
    c.set('audit', { action: 'auth.mfa_enroll_start', resourceType: 'user', resourceId: principal.userId })
    return c.json(enrolment)
  })
  .post('/mfa/totp/confirm', allow('viewer', { setup: true }), async (c) => {
    const principal = principalOf(c)
    if (principal.kind !== 'user') throw new AppError('FORBIDDEN', 'MFA is managed by the user, not through an API token')
    const { code } = await readJson(c, CodeInput)
    const result = await confirmTotp(c.var.ctx, principal.userId, code)
    c.set('audit', { action: 'auth.mfa_enabled', resourceType: 'user', resourceId: principal.userId })
    return c.json(result)
  })
  .post('/mfa/totp/disable', allow('viewer'), async (c) => {
    const principal = principalOf(c)
    if (principal.kind !== 'user') throw new AppError('FORBIDDEN', 'MFA is managed by the user, not through an API token')
    const { password, code } = await readJson(c, DisableTotpInput)
    await disableTotp(c.var.ctx, principal.userId, password, code)
    c.set('audit', { action: 'auth.mfa_disabled', resourceType: 'user', resourceId: principal.userId })
    return c.json({ mfa_enabled: false })
  })
