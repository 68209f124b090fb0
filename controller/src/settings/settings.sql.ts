import { jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core'

/** Installation-wide settings changed at run time by admins (key → JSON value). */
export const setting = pgTable('setting', {
  key: text('key').primaryKey(),
  value: jsonb('value').notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  updatedBy: text('updated_by'),
})
