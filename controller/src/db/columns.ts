import { text, timestamp } from 'drizzle-orm/pg-core'

/** Who made and last changed a record and when; `deleted_at` hides it (soft delete keeps history readable). */
export const editedColumns = () => ({
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  createdBy: text('created_by'),
  updatedBy: text('updated_by'),
  deletedAt: timestamp('deleted_at', { withTimezone: true }),
})
