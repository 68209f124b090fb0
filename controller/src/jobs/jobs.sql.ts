import { sql } from 'drizzle-orm'
import { boolean, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import type { JobDefinition } from './definition.ts'
import { editedColumns } from '../db/columns.ts'

/** A job: its identity and pointer to the current version. Deleting keeps it (runs point at its versions). */
export const job = pgTable(
  'job',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    currentVersion: integer('current_version').notNull(),
    enabled: boolean('enabled').notNull().default(true),
    tags: jsonb('tags').$type<string[]>().notNull().default([]),
    ...editedColumns(),
  },
  (t) => [
    uniqueIndex('job_name_lower_idx')
      .on(sql`lower(${t.name})`)
      .where(sql`${t.deletedAt} is null`),
  ],
)
export type JobRow = typeof job.$inferSelect

/** Every save of a job, immutable: runs pin the version they ran. */
export const jobVersion = pgTable(
  'job_version',
  {
    jobId: uuid('job_id')
      .notNull()
      .references(() => job.id, { onDelete: 'cascade' }),
    version: integer('version').notNull(),
    definition: jsonb('definition').$type<JobDefinition>().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    createdBy: text('created_by'),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.version] }), index('job_version_created_idx').on(t.jobId, t.createdAt)],
)
export type JobVersionRow = typeof jobVersion.$inferSelect
