import { sql } from 'drizzle-orm'
import { jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import type { SealedSecret } from '../crypto/secret-box.ts'

export const CREDENTIAL_TYPES = ['ssh_password', 'ssh_key', 'winrm', 'http_auth', 'database', 'snmp', 'certificate'] as const
export type CredentialType = (typeof CREDENTIAL_TYPES)[number]

/**
 * A secret used to reach hosts and services. `metadata` holds the non-secret fields and what was
 * derived at save time (key type, fingerprint, has_password…); `secret` holds every secret field,
 * sealed together with the row id as additional authenticated data.
 */
export const credential = pgTable(
  'credential',
  {
    id: uuid('id').primaryKey(),
    name: text('name').notNull(),
    type: text('type', { enum: CREDENTIAL_TYPES }).notNull(),
    description: text('description'),
    metadata: jsonb('metadata').$type<Record<string, unknown>>().notNull().default({}),
    secret: jsonb('secret').$type<SealedSecret>().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    createdBy: text('created_by'),
    updatedBy: text('updated_by'),
  },
  (t) => [uniqueIndex('credential_name_lower_idx').on(sql`lower(${t.name})`)],
)
export type CredentialRow = typeof credential.$inferSelect
