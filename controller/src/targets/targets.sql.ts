import { sql } from 'drizzle-orm'
import { boolean, index, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'

export const OS_TYPES = ['windows', 'linux', 'unix', 'network', 'other'] as const
export type OsType = (typeof OS_TYPES)[number]

/** How the controller reaches a target; stored as one JSON object, as on the wire. */
export type Connection =
  | { type: 'agent'; agent_id: string | null }
  | {
      type: 'ssh'
      port: number
      credential_id: string | null
      host_key_policy: 'strict' | 'tofu' | 'off'
      jump: { target_id: string; credential_id: string | null }[]
    }
  | { type: 'winrm'; port: number; https: boolean; credential_id: string | null; verify_tls: boolean }

export const target = pgTable(
  'target',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    address: text('address').notNull(),
    osType: text('os_type', { enum: OS_TYPES }).notNull(),
    description: text('description'),
    enabled: boolean('enabled').notNull().default(true),
    tags: jsonb('tags').$type<Record<string, string>>().notNull().default({}),
    connection: jsonb('connection').$type<Connection>().notNull(),
    /** OS, kernel, CPU, memory, disks — from connection tests and agents. */
    facts: jsonb('facts').$type<Record<string, unknown>>(),
    factsUpdatedAt: timestamp('facts_updated_at', { withTimezone: true }),
    /** Last time the target answered (connection test, agent heartbeat); drives the `online` filter. */
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('target_name_lower_idx').on(sql`lower(${t.name})`),
    index('target_os_type_idx').on(t.osType),
    index('target_tags_idx').using('gin', sql`${t.tags} jsonb_path_ops`),
    index('target_connection_type_idx').on(sql`(${t.connection}->>'type')`),
    index('target_last_seen_idx').on(t.lastSeenAt),
    // `?q=` is a substring search (ILIKE '%…%'): only trigrams make it an index scan (pg_trgm).
    index('target_name_trgm_idx').using('gin', sql`${t.name} gin_trgm_ops`),
    index('target_address_trgm_idx').using('gin', sql`${t.address} gin_trgm_ops`),
  ],
)
export type TargetRow = typeof target.$inferSelect

/** A named set of targets: static members, a dynamic selector, or both (union). */
export const targetGroup = pgTable(
  'target_group',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    description: text('description'),
    selector: text('selector'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('target_group_name_lower_idx').on(sql`lower(${t.name})`)],
)

export const targetGroupMember = pgTable(
  'target_group_member',
  {
    groupId: uuid('group_id')
      .notNull()
      .references(() => targetGroup.id, { onDelete: 'cascade' }),
    targetId: uuid('target_id')
      .notNull()
      .references(() => target.id, { onDelete: 'cascade' }),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.targetId] }), index('target_group_member_target_idx').on(t.targetId)],
)

export const HOST_KEY_STATUSES = ['trusted', 'pending', 'revoked'] as const

/** The SSH host-key trust store: what each target's key is, since when, and who trusted it. */
export const targetHostKey = pgTable(
  'target_host_key',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    targetId: uuid('target_id')
      .notNull()
      .references(() => target.id, { onDelete: 'cascade' }),
    keyType: text('key_type').notNull(),
    /** OpenSSH form: `SHA256:<base64 without padding>`. */
    fingerprint: text('fingerprint').notNull(),
    publicKey: text('public_key').notNull(),
    status: text('status', { enum: HOST_KEY_STATUSES }).notNull(),
    firstSeenAt: timestamp('first_seen_at', { withTimezone: true }).notNull().defaultNow(),
    decidedAt: timestamp('decided_at', { withTimezone: true }),
    decidedBy: text('decided_by'),
  },
  (t) => [uniqueIndex('target_host_key_fp_idx').on(t.targetId, t.fingerprint)],
)
