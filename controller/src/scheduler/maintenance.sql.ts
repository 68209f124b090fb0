import { sql } from 'drizzle-orm'
import { boolean, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import { editedColumns } from '../db/columns.ts'

export type WindowKind = 'one_off' | 'cron' | 'weekly'
export type WindowAction = 'skip' | 'defer'
export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun'
/** Wall-clock ranges in the window's zone; `end` at or before `start` ends on the next day. */
export interface WeeklyRange {
  days: Weekday[]
  start: string
  end: string
}
export type AppliesTo = 'all' | { target_ids?: string[]; groups?: string[]; selector?: string }

/** A time when scheduled fires on the targets it covers are skipped or deferred, and manual runs need an override. */
export const maintenanceWindow = pgTable(
  'maintenance_window',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    description: text('description'),
    enabled: boolean('enabled').notNull().default(true),
    timezone: text('timezone').notNull().default('UTC'),
    kind: text('kind').$type<WindowKind>().notNull(),
    /** one_off */
    startsAt: timestamp('starts_at', { withTimezone: true }),
    endsAt: timestamp('ends_at', { withTimezone: true }),
    /** cron: each fire opens the window for duration_sec. */
    cron: text('cron'),
    durationSec: integer('duration_sec'),
    /** weekly */
    ranges: jsonb('ranges').$type<WeeklyRange[]>(),
    appliesTo: jsonb('applies_to').$type<AppliesTo>().notNull(),
    action: text('action').$type<WindowAction>().notNull().default('skip'),
    ...editedColumns(),
  },
  (t) => [
    uniqueIndex('maintenance_window_name_lower_idx')
      .on(sql`lower(${t.name})`)
      .where(sql`${t.deletedAt} is null`),
    index('maintenance_window_live_idx')
      .on(t.kind)
      .where(sql`${t.enabled} and ${t.deletedAt} is null`),
  ],
)
export type MaintenanceWindowRow = typeof maintenanceWindow.$inferSelect
