import { eq } from 'drizzle-orm'
import { z } from 'zod'
import type { Db } from '../db/client.ts'
import { setting } from './settings.sql.ts'

export const SecuritySettings = z
  .object({
    /** Anyone may create a viewer account at /auth/register. */
    self_registration: z.boolean(),
    /** Every user must enrol TOTP before doing anything else. */
    require_mfa: z.boolean(),
  })
  .strict()
export type SecuritySettings = z.infer<typeof SecuritySettings>

const DEFAULTS: SecuritySettings = { self_registration: false, require_mfa: false }
const KEY = 'security'
// Read on every authenticated request; a short cache keeps that off the database while an
// admin's change still reaches every controller within seconds.
const CACHE_MS = 2000

const cache = new WeakMap<Db, { at: number; value: SecuritySettings }>()

export async function getSecuritySettings(db: Db, now = Date.now()): Promise<SecuritySettings> {
  const hit = cache.get(db)
  if (hit && now - hit.at < CACHE_MS) return hit.value
  const [row] = await db.select({ value: setting.value }).from(setting).where(eq(setting.key, KEY))
  const value = { ...DEFAULTS, ...(row?.value as Partial<SecuritySettings> | undefined) }
  cache.set(db, { at: now, value })
  return value
}

export async function updateSecuritySettings(db: Db, patch: Partial<SecuritySettings>, updatedBy: string): Promise<SecuritySettings> {
  const value = { ...(await getSecuritySettings(db, 0)), ...patch }
  await db
    .insert(setting)
    .values({ key: KEY, value, updatedBy })
    .onConflictDoUpdate({ target: setting.key, set: { value, updatedBy, updatedAt: new Date() } })
  cache.delete(db)
  return value
}
