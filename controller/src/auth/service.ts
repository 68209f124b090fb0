import { eq } from 'drizzle-orm'
import { z } from 'zod'
import type { AppContext } from '../context.ts'
import { AppError } from '../errors.ts'
import { getSecuritySettings } from '../settings/service.ts'
import { appUser, type AppUserRow } from '../users/users.sql.ts'
import { checkPassword, findUserByUsername, getUserRow, userDto, type UserDto } from '../users/service.ts'
import { signAccessToken } from './jwt.ts'
import { verifySecondFactor } from './mfa.ts'
import { dummyPasswordHash, hashPassword, needsRehash, verifyPassword } from './passwords.ts'
import type { Principal } from './principal.ts'
import { createSession, revokeUserSessions, rotateRefreshToken } from './sessions.ts'
import { clearLoginFailures, loginRetryAfter, recordLoginFailure, type Lockout } from './throttle.ts'

export const LoginInput = z
  .object({
    username: z.string().min(1).max(256),
    password: z.string().min(1).max(1024),
    /** A TOTP code or a recovery code, for users with MFA. */
    totp: z.string().max(64).optional(),
    /** The web UI: tokens go into httpOnly cookies instead of the body. */
    use_cookies: z.boolean().optional(),
  })
  .strict()
export type LoginInput = z.infer<typeof LoginInput>

export interface IssuedTokens {
  accessToken: string
  refreshToken: string
  expiresIn: number
  sessionId: string
}

export type LoginResult =
  | { kind: 'ok'; user: AppUserRow; tokens: IssuedTokens; mfaMethod: 'totp' | 'recovery_code' | null }
  | { kind: 'throttled'; retryAfter: number }
  | { kind: 'mfa_required'; user: AppUserRow }
  | { kind: 'failed'; user: AppUserRow | undefined; reason: 'unknown_user' | 'wrong_password' | 'disabled' | 'wrong_mfa_code'; lockouts: Lockout[] }

export interface ClientInfo {
  address: string | null
  userAgent: string | null
}

/**
 * Unknown users, wrong passwords and disabled accounts fail the same way and take the same time
 * (the password is always hashed). Only a correct password reveals that MFA is needed.
 */
export async function login(ctx: AppContext, input: LoginInput, client: ClientInfo): Promise<LoginResult> {
  const now = ctx.clock()
  const subject = { username: input.username, address: client.address }
  const retryAfter = await loginRetryAfter(ctx.db, subject, now)
  if (retryAfter > 0) return { kind: 'throttled', retryAfter }
  const user = await findUserByUsername(ctx.db, input.username)
  const passwordOk = await verifyPassword(input.password, user?.passwordHash ?? (await dummyPasswordHash()))
  const reason = !user ? 'unknown_user' : !passwordOk ? 'wrong_password' : user.disabled ? 'disabled' : null
  if (reason || !user) {
    const lockouts = await recordLoginFailure(ctx.db, subject, now)
    return { kind: 'failed', user, reason: reason ?? 'unknown_user', lockouts }
  }
  let mfaMethod: 'totp' | 'recovery_code' | null = null
  if (user.mfaEnabled) {
    if (!input.totp) return { kind: 'mfa_required', user }
    const factor = await verifySecondFactor(ctx.db, ctx.keyring, user, input.totp, now)
    if (!factor.ok) {
      const lockouts = await recordLoginFailure(ctx.db, subject, now)
      return { kind: 'failed', user, reason: 'wrong_mfa_code', lockouts }
    }
    mfaMethod = factor.method
  }
  await clearLoginFailures(ctx.db, input.username)
  const rehash = needsRehash(user.passwordHash) ? { passwordHash: await hashPassword(input.password) } : {}
  await ctx.db.update(appUser).set({ lastLoginAt: now, ...rehash }).where(eq(appUser.id, user.id))
  const session = await createSession(ctx.db, { userId: user.id, clientAddress: client.address, userAgent: client.userAgent }, now)
  const access = await signAccessToken(ctx.keyring, { userId: user.id, sessionId: session.sessionId, role: user.role }, now)
  return {
    kind: 'ok',
    user,
    mfaMethod,
    tokens: { accessToken: access.token, refreshToken: session.refreshToken, expiresIn: access.expiresIn, sessionId: session.sessionId },
  }
}

export type RefreshResult =
  | { kind: 'ok'; user: AppUserRow; tokens: IssuedTokens }
  | { kind: 'reused'; userId: string; sessionId: string }
  | { kind: 'invalid'; reason: string }

export async function refresh(ctx: AppContext, presented: string): Promise<RefreshResult> {
  const now = ctx.clock()
  const rotated = await rotateRefreshToken(ctx.db, presented, now)
  if (rotated.kind === 'invalid') return rotated
  if (rotated.kind === 'reused') return { kind: 'reused', userId: rotated.userId, sessionId: rotated.sessionId }
  const user = await getUserRow(ctx.db, rotated.userId)
  if (user.disabled) return { kind: 'invalid', reason: 'account disabled' }
  const access = await signAccessToken(ctx.keyring, { userId: user.id, sessionId: rotated.sessionId, role: user.role }, now)
  return {
    kind: 'ok',
    user,
    tokens: { accessToken: access.token, refreshToken: rotated.refreshToken, expiresIn: access.expiresIn, sessionId: rotated.sessionId },
  }
}

export interface MeDto extends UserDto {
  mfa_enrollment_required: boolean
}

export async function getMe(ctx: AppContext, principal: Principal): Promise<MeDto> {
  const row = await getUserRow(ctx.db, principal.userId)
  const settings = await getSecuritySettings(ctx.db)
  return { ...userDto(row), mfa_enrollment_required: settings.require_mfa && !row.mfaEnabled }
}

export const UpdateMeInput = z
  .object({
    display_name: z.string().trim().max(200).nullish(),
    email: z.email().max(320).nullish(),
    current_password: z.string().min(1).max(1024).optional(),
    new_password: z.string().min(1).max(1024).optional(),
  })
  .strict()
  .refine((v) => (v.new_password === undefined) === (v.current_password === undefined), {
    message: 'changing the password needs both current_password and new_password',
    path: ['current_password'],
  })
export type UpdateMeInput = z.infer<typeof UpdateMeInput>

/** Profile update; a password change needs the current password and ends every other session. */
export async function updateMe(ctx: AppContext, principal: Principal, input: UpdateMeInput): Promise<{ me: MeDto; passwordChanged: boolean; sessionsRevoked: number }> {
  const now = ctx.clock()
  const row = await getUserRow(ctx.db, principal.userId)
  let passwordHash: string | undefined
  if (input.new_password !== undefined) {
    if (!(await verifyPassword(input.current_password!, row.passwordHash))) {
      throw new AppError('FORBIDDEN', 'current_password is wrong', [{ path: 'current_password', message: 'wrong password' }])
    }
    checkPassword(input.new_password, row.username, 'new_password')
    if (await verifyPassword(input.new_password, row.passwordHash)) {
      throw new AppError('VALIDATION', 'new_password must differ from the current password', [{ path: 'new_password', message: 'same as current' }])
    }
    passwordHash = await hashPassword(input.new_password)
  }
  await ctx.db
    .update(appUser)
    .set({
      ...(input.display_name !== undefined ? { displayName: input.display_name } : {}),
      ...(input.email !== undefined ? { email: input.email } : {}),
      ...(passwordHash ? { passwordHash, mustChangePassword: false } : {}),
      updatedAt: now,
    })
    .where(eq(appUser.id, principal.userId))
  const keep = principal.kind === 'user' ? principal.sessionId : undefined
  const sessionsRevoked = passwordHash ? await revokeUserSessions(ctx.db, principal.userId, 'password changed', now, keep) : 0
  return { me: await getMe(ctx, principal), passwordChanged: passwordHash !== undefined, sessionsRevoked }
}
