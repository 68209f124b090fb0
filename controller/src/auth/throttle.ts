import { eq, inArray } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import { loginThrottle } from './auth.sql.ts'

/**
 * Login throttling, per username and per client address, stored in Postgres so that all
 * controllers share it. A username gets FREE_FAILURES attempts, then each further failure locks it
 * for twice as long as the last (1 s, 2 s, 4 s … up to 15 min); a success clears it. An address
 * is locked for the rest of a 15-minute window after ADDRESS_MAX_FAILURES failures.
 */
const FREE_FAILURES = 5
const MAX_LOCK_SECONDS = 15 * 60
const USER_RESET_AFTER_MS = 24 * 3600_000
const ADDRESS_WINDOW_MS = 15 * 60_000
const ADDRESS_MAX_FAILURES = 50

export interface ThrottleSubject {
  username: string
  address: string | null
}

function keys(subject: ThrottleSubject): { user: string; address: string | null } {
  return { user: `user:${subject.username.toLowerCase()}`, address: subject.address ? `addr:${subject.address}` : null }
}

/** Seconds until a login may be tried again, or 0 when it may be tried now. */
export async function loginRetryAfter(db: Db, subject: ThrottleSubject, now: Date): Promise<number> {
  const k = keys(subject)
  const rows = await db
    .select({ lockedUntil: loginThrottle.lockedUntil })
    .from(loginThrottle)
    .where(inArray(loginThrottle.key, k.address ? [k.user, k.address] : [k.user]))
  const until = Math.max(0, ...rows.map((r) => r.lockedUntil?.getTime() ?? 0))
  return until > now.getTime() ? Math.ceil((until - now.getTime()) / 1000) : 0
}

/** A lock that this failure started (the first of its window): what a lockout alert is about. */
export interface Lockout {
  scope: 'user' | 'address'
  failures: number
  until: Date
}

/** Counts the failure; returns the lockouts it started (the rows are locked, so exactly one failure starts each). */
export async function recordLoginFailure(db: Db, subject: ThrottleSubject, now: Date): Promise<Lockout[]> {
  const k = keys(subject)
  return db.transaction(async (tx) => {
    const started: Lockout[] = []
    const user = await bump(tx as unknown as Db, k.user, now, USER_RESET_AFTER_MS, (failures) =>
      failures > FREE_FAILURES ? new Date(now.getTime() + Math.min(2 ** (failures - FREE_FAILURES - 1), MAX_LOCK_SECONDS) * 1000) : null,
    )
    if (user.failures === FREE_FAILURES + 1 && user.lockedUntil) started.push({ scope: 'user', failures: user.failures, until: user.lockedUntil })
    if (k.address) {
      const address = await bump(tx as unknown as Db, k.address, now, ADDRESS_WINDOW_MS, (failures, windowStart) =>
        failures >= ADDRESS_MAX_FAILURES ? new Date(windowStart.getTime() + ADDRESS_WINDOW_MS) : null,
      )
      if (address.failures === ADDRESS_MAX_FAILURES && address.lockedUntil) started.push({ scope: 'address', failures: address.failures, until: address.lockedUntil })
    }
    return started
  })
}

async function bump(db: Db, key: string, now: Date, resetAfterMs: number, lockFor: (failures: number, windowStart: Date) => Date | null): Promise<{ failures: number; lockedUntil: Date | null }> {
  const [row] = await db.select().from(loginThrottle).where(eq(loginThrottle.key, key)).for('update')
  const fresh = !row || now.getTime() - row.windowStartedAt.getTime() > resetAfterMs
  const failures = fresh ? 1 : row.failures + 1
  const windowStartedAt = fresh ? now : row.windowStartedAt
  const lockedUntil = lockFor(failures, windowStartedAt)
  await db
    .insert(loginThrottle)
    .values({ key, failures, windowStartedAt, lockedUntil })
    .onConflictDoUpdate({ target: loginThrottle.key, set: { failures, windowStartedAt, lockedUntil } })
  return { failures, lockedUntil }
}

/** A successful login clears the username's record (the address keeps its window). */
export async function clearLoginFailures(db: Db, username: string): Promise<void> {
  await db.delete(loginThrottle).where(eq(loginThrottle.key, keys({ username, address: null }).user))
}
