import { Cron } from 'croner'
import { eq, sql } from 'drizzle-orm'
import { z } from 'zod'
import type { AppContext } from '../context.ts'
import { isUuid, uuidArray, type Db } from '../db/client.ts'
import { NotFoundError, ValidationError } from '../errors.ts'
import { parseWith } from '../http/validate.ts'
import { appUser } from '../users/users.sql.ts'
import { notificationChannel, notificationPreference } from './notify.sql.ts'
import { NOTIFY_EVENTS } from './rules-service.ts'

/*
 * What each user accepts: the channels and events a rule may reach them with, quiet hours in their
 * own time zone (deliveries wait for the window's end; critical ones do not), and digest batching.
 * Users without a row accept everything, at once, by email.
 */

export type PreferenceRow = typeof notificationPreference.$inferSelect

const HHMM = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a time of day as HH:MM (24 h)')

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone })
    return true
  } catch {
    return false
  }
}

const PreferenceInput = z
  .object({
    /** null: every channel (email to the user's address). */
    channel_ids: z.array(z.uuid()).max(50).nullable().optional(),
    /** null: every event. `security.*` stands for every security event. */
    events: z.array(z.string().max(64)).max(50).nullable().optional(),
    quiet_hours: z
      .object({ start: HHMM, end: HHMM })
      .strict()
      .refine((q) => q.start !== q.end, { message: 'start and end must differ', path: ['end'] })
      .nullable()
      .optional(),
    timezone: z.string().max(64).refine(isTimeZone, 'an IANA time zone such as Europe/Berlin').optional(),
    digest_minutes: z.number().int().min(1).max(1440).nullable().optional(),
  })
  .strict()

export interface PreferenceDto {
  user_id: string
  channel_ids: string[] | null
  events: string[] | null
  quiet_hours: { start: string; end: string } | null
  timezone: string
  digest_minutes: number | null
  /** null until the user (or an admin) saved preferences: these are the defaults. */
  updated_at: string | null
  updated_by: string | null
}

function preferenceDto(userId: string, row: PreferenceRow | undefined): PreferenceDto {
  return {
    user_id: userId,
    channel_ids: row?.channelIds ?? null,
    events: row?.events ?? null,
    quiet_hours: row?.quietStart && row.quietEnd ? { start: row.quietStart, end: row.quietEnd } : null,
    timezone: row?.timezone ?? 'UTC',
    digest_minutes: row?.digestMinutes ?? null,
    updated_at: row?.updatedAt.toISOString() ?? null,
    updated_by: row?.updatedBy ?? null,
  }
}

async function userExists(db: Db, userId: string): Promise<void> {
  const [u] = isUuid(userId) ? await db.select({ id: appUser.id }).from(appUser).where(eq(appUser.id, userId)) : []
  if (!u) throw new NotFoundError('user', userId)
}

export async function getPreferences(ctx: AppContext, userId: string): Promise<PreferenceDto> {
  await userExists(ctx.db, userId)
  const [row] = await ctx.db.select().from(notificationPreference).where(eq(notificationPreference.userId, userId))
  return preferenceDto(userId, row)
}

/** The fields sent replace the stored ones; fields not sent stay. Every problem is a 400 by path. */
export async function savePreferences(ctx: AppContext, userId: string, body: unknown, by: string): Promise<PreferenceDto> {
  await userExists(ctx.db, userId)
  const input = parseWith(PreferenceInput, body)
  const problems: { path: string; message: string }[] = []
  input.events?.forEach((e, i) => {
    if (!(NOTIFY_EVENTS as readonly string[]).includes(e)) problems.push({ path: `events[${i}]`, message: `not an event: one of ${NOTIFY_EVENTS.join(', ')}` })
  })
  if (input.channel_ids?.length) {
    const found = await ctx.db
      .select({ id: notificationChannel.id })
      .from(notificationChannel)
      .where(sql`${notificationChannel.id} = any(${uuidArray(input.channel_ids)}) and ${notificationChannel.deletedAt} is null`)
    const have = new Set(found.map((f) => f.id))
    input.channel_ids.forEach((id, i) => have.has(id.toLowerCase()) || problems.push({ path: `channel_ids[${i}]`, message: `no notification channel ${id}` }))
  }
  if (problems.length) throw new ValidationError(`invalid notification preferences: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems)
  const values = {
    ...(input.channel_ids !== undefined ? { channelIds: input.channel_ids?.map((id) => id.toLowerCase()) ?? null } : {}),
    ...(input.events !== undefined ? { events: input.events } : {}),
    ...(input.quiet_hours !== undefined ? { quietStart: input.quiet_hours?.start ?? null, quietEnd: input.quiet_hours?.end ?? null } : {}),
    ...(input.timezone !== undefined ? { timezone: input.timezone } : {}),
    ...(input.digest_minutes !== undefined ? { digestMinutes: input.digest_minutes } : {}),
    updatedAt: ctx.clock(),
    updatedBy: by,
  }
  const [row] = await ctx.db
    .insert(notificationPreference)
    .values({ userId, ...values })
    .onConflictDoUpdate({ target: notificationPreference.userId, set: values })
    .returning()
  return preferenceDto(userId, row)
}

/** Whether a user's event list takes this event (`security.*` takes every security event). */
export function acceptsEvent(events: string[] | null, event: string): boolean {
  if (!events) return true
  return events.includes(event) || (event.startsWith('security.') && events.includes('security.*'))
}

/**
 * When the user's quiet window that holds `now` ends, or null outside it. The window is wall-clock
 * time in their zone (croner finds the next start and end, across DST changes): inside it exactly
 * when its end comes before its next start.
 */
export function quietUntil(pref: Pick<PreferenceRow, 'quietStart' | 'quietEnd' | 'timezone'> | undefined, now: Date): Date | null {
  if (!pref?.quietStart || !pref.quietEnd) return null
  const next = (hhmm: string) => {
    const [h, m] = hhmm.split(':').map(Number)
    return new Cron(`${m} ${h} * * *`, { timezone: pref.timezone }).nextRun(now)
  }
  const end = next(pref.quietEnd)
  const start = next(pref.quietStart)
  return end && start && end < start ? end : null
}
