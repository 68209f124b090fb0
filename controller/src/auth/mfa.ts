import { and, eq, isNull, lt, or, sql } from 'drizzle-orm'
import type { AppContext } from '../context.ts'
import type { Keyring } from '../crypto/master-key.ts'
import { openSecret, sealSecret } from '../crypto/secret-box.ts'
import type { Db } from '../db/client.ts'
import { AppError } from '../errors.ts'
import { appUser, type AppUserRow } from '../users/users.sql.ts'
import { getUserRow } from '../users/service.ts'
import { verifyPassword } from './passwords.ts'
import { findRecoveryCode, generateRecoveryCodes, hashRecoveryCode } from './recovery-codes.ts'
import { newTotpSecret, totpUri, verifyTotp } from './totp.ts'

/** Pending and active secrets share one AAD, so confirming moves the sealed value without opening it twice. */
export const totpAad = (userId: string) => `app_user:${userId}:totp`

export type SecondFactor = { ok: true; method: 'totp' | 'recovery_code' } | { ok: false }

/**
 * Checks a TOTP code or a recovery code. Each is accepted once: the TOTP step and the remaining
 * recovery codes are updated with compare-and-set, so two concurrent logins cannot both use one code.
 */
export async function verifySecondFactor(db: Db, keyring: Keyring, user: AppUserRow, code: string, now: Date): Promise<SecondFactor> {
  if (!user.mfaEnabled || !user.totpSecret) return { ok: false }
  const secret = openSecret(keyring, user.totpSecret, totpAad(user.id)).toString('utf8')
  const totp = verifyTotp({ secret, code, now, lastUsedStep: user.totpLastStep })
  if (totp.ok) {
    const claimed = await db
      .update(appUser)
      .set({ totpLastStep: totp.step })
      .where(and(eq(appUser.id, user.id), or(isNull(appUser.totpLastStep), lt(appUser.totpLastStep, totp.step))))
      .returning({ id: appUser.id })
    return claimed.length === 1 ? { ok: true, method: 'totp' } : { ok: false }
  }
  const index = findRecoveryCode(user.recoveryCodes, code)
  if (index < 0) return { ok: false }
  const remaining = user.recoveryCodes.filter((_, i) => i !== index)
  const claimed = await db
    .update(appUser)
    .set({ recoveryCodes: remaining })
    .where(and(eq(appUser.id, user.id), sql`${appUser.recoveryCodes} = ${JSON.stringify(user.recoveryCodes)}::jsonb`))
    .returning({ id: appUser.id })
  return claimed.length === 1 ? { ok: true, method: 'recovery_code' } : { ok: false }
}

export async function enrollTotp(ctx: AppContext, userId: string): Promise<{ secret: string; otpauth_uri: string }> {
  const user = await getUserRow(ctx.db, userId)
  if (user.mfaEnabled) throw new AppError('CONFLICT', 'TOTP is already enabled; disable it first to enrol a new device')
  const secret = newTotpSecret()
  await ctx.db
    .update(appUser)
    .set({ totpPendingSecret: sealSecret(ctx.keyring, secret, totpAad(userId)), updatedAt: ctx.clock() })
    .where(eq(appUser.id, userId))
  return { secret, otpauth_uri: totpUri({ secret, account: user.username }) }
}

/** Turns TOTP on once the user proves their app produces codes; returns recovery codes (shown once). */
export async function confirmTotp(ctx: AppContext, userId: string, code: string): Promise<{ recovery_codes: string[] }> {
  const user = await getUserRow(ctx.db, userId)
  if (user.mfaEnabled) throw new AppError('CONFLICT', 'TOTP is already enabled')
  if (!user.totpPendingSecret) throw new AppError('PRECONDITION_FAILED', 'start with POST /api/v1/auth/mfa/totp/enroll')
  const secret = openSecret(ctx.keyring, user.totpPendingSecret, totpAad(userId)).toString('utf8')
  const check = verifyTotp({ secret, code, now: ctx.clock(), lastUsedStep: null })
  if (!check.ok) throw new AppError('VALIDATION', 'the code does not match; check the device clock and try the current code', [{ path: 'code', message: 'does not match' }])
  const codes = generateRecoveryCodes()
  await ctx.db
    .update(appUser)
    .set({
      mfaEnabled: true,
      totpSecret: user.totpPendingSecret,
      totpPendingSecret: null,
      totpLastStep: check.step,
      recoveryCodes: codes.map(hashRecoveryCode),
      updatedAt: ctx.clock(),
    })
    .where(eq(appUser.id, userId))
  return { recovery_codes: codes }
}

/** Disabling needs both the password and a current code (or a recovery code). */
export async function disableTotp(ctx: AppContext, userId: string, password: string, code: string): Promise<void> {
  const user = await getUserRow(ctx.db, userId)
  if (!user.mfaEnabled) throw new AppError('CONFLICT', 'TOTP is not enabled')
  const passwordOk = await verifyPassword(password, user.passwordHash)
  const factor = passwordOk ? await verifySecondFactor(ctx.db, ctx.keyring, user, code, ctx.clock()) : { ok: false }
  if (!passwordOk || !factor.ok) throw new AppError('FORBIDDEN', 'password or code is wrong')
  await ctx.db
    .update(appUser)
    .set({ mfaEnabled: false, totpSecret: null, totpPendingSecret: null, totpLastStep: null, recoveryCodes: [], updatedAt: ctx.clock() })
    .where(eq(appUser.id, userId))
}
