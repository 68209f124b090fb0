import { HOTP, Secret, TOTP } from 'otpauth'

/*
 * TOTP (RFC 6238) with the parameters every authenticator app assumes: HMAC-SHA1, 6 digits, 30 s.
 * The caller stores the last accepted time step per user and passes it back in, so a code can be
 * used only once and never after a later one.
 */

const ALGORITHM = 'SHA1'
const DIGITS = 6
const PERIOD_SECONDS = 30
/** Steps of clock drift accepted either side of now. */
const DRIFT_STEPS = 1

/** A fresh 160-bit secret (the RFC 4226 recommended length), base32 without padding. */
export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32
}

/** The `otpauth://totp/…` URI shown as a QR code when a user enrols. */
export function totpUri({ secret, account, issuer = 'OpsConductor' }: { secret: string; account: string; issuer?: string }): string {
  return new TOTP({ issuer, label: account, secret: Secret.fromBase32(secret), algorithm: ALGORITHM, digits: DIGITS, period: PERIOD_SECONDS }).toString()
}

/** The RFC 6238 time step that contains `now`. */
export function totpStep(now: Date): number {
  const ms = now.getTime()
  if (!Number.isFinite(ms)) throw new RangeError('verifyTotp: now is not a valid date')
  return Math.floor(ms / 1000 / PERIOD_SECONDS)
}

export type TotpResult = { ok: true; step: number } | { ok: false }

/**
 * Checks a code against the steps now-1, now, now+1, skipping any step at or before `lastUsedStep`
 * (a replayed or older code). On success store `step` as the new lastUsedStep.
 * Input other than 6 digits (spaces allowed, as apps display "123 456") is rejected, never thrown.
 */
export function verifyTotp({ secret, code, now, lastUsedStep }: { secret: string; code: string; now: Date; lastUsedStep: number | null }): TotpResult {
  if (typeof code !== 'string') return { ok: false }
  const token = code.replace(/\s+/g, '')
  if (!/^\d{6}$/.test(token)) return { ok: false }
  const key = Secret.fromBase32(secret)
  const current = totpStep(now)
  // Current step first, then the older one, then the newer one (the same order as otpauth's own validate).
  for (const step of [current, current - DRIFT_STEPS, current + DRIFT_STEPS]) {
    if (lastUsedStep !== null && step <= lastUsedStep) continue
    // window 0: exactly this step; otpauth compares in constant time.
    if (HOTP.validate({ token, secret: key, algorithm: ALGORITHM, digits: DIGITS, counter: step, window: 0 }) === 0) {
      return { ok: true, step }
    }
  }
  return { ok: false }
}
