import { sql } from 'drizzle-orm'
import { index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import type { SealedSecret } from '../crypto/secret-box.ts'
import { target, targetGroup } from '../targets/targets.sql.ts'
import { appUser } from '../users/users.sql.ts'

/** An enrolled agent: its public keys (the private halves never leave the host) and what it reported. */
export const agent = pgTable(
  'agent',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    hostname: text('hostname').notNull(),
    /** Raw 32-byte Ed25519 key, base64; signs Connect challenges. */
    identityPublicKey: text('identity_public_key').notNull(),
    /** Raw 32-byte X25519 key, base64; secrets are sealed to it. */
    boxPublicKey: text('box_public_key').notNull(),
    facts: jsonb('facts').$type<Record<string, unknown>>().notNull().default({}),
    agentVersion: text('agent_version').notNull(),
    /** `major.minor` of the wire protocol the agent spoke at enrollment. */
    protocolVersion: text('protocol_version').notNull(),
    targetId: uuid('target_id').references(() => target.id, { onDelete: 'set null' }),
    enrolledAt: timestamp('enrolled_at', { withTimezone: true }).notNull().defaultNow(),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [index('agent_name_lower_idx').on(sql`lower(${t.name})`, t.id), index('agent_target_idx').on(t.targetId)],
)
export type AgentRow = typeof agent.$inferSelect

/**
 * The last online/offline state announced for an agent: status is computed from sessions and
 * heartbeats, so a transition is found by comparing with this row (and claimed by updating it).
 */
export const agentPresence = pgTable('agent_presence', {
  agentId: uuid('agent_id')
    .primaryKey()
    .references(() => agent.id, { onDelete: 'cascade' }),
  /** online | offline */
  state: text('state').notNull(),
  changedAt: timestamp('changed_at', { withTimezone: true }).notNull().defaultNow(),
})

/** One-time (or few-times), expiring secrets an agent trades for an identity; only the SHA-256 is stored. */
export const enrollmentToken = pgTable(
  'enrollment_token',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name'),
    tokenHash: text('token_hash').notNull(),
    /** First characters of the token, so an operator can tell tokens apart. */
    prefix: text('prefix').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    maxUses: integer('max_uses').notNull(),
    uses: integer('uses').notNull().default(0),
    /** Applied to the target of every agent enrolled with this token. */
    tags: jsonb('tags').$type<Record<string, string>>().notNull().default({}),
    /** Static group membership for every enrolled agent's target. */
    groupId: uuid('group_id').references(() => targetGroup.id, { onDelete: 'set null' }),
    createdBy: uuid('created_by').references(() => appUser.id, { onDelete: 'set null' }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('enrollment_token_hash_idx').on(t.tokenHash), index('enrollment_token_created_idx').on(t.createdAt)],
)
export type EnrollmentTokenRow = typeof enrollmentToken.$inferSelect

/** The controller's Ed25519 assignment-signing keys; the private key is sealed by the vault. */
export const agentSigningKey = pgTable('agent_signing_key', {
  keyId: text('key_id').primaryKey(),
  /** Raw 32-byte Ed25519 public key, base64. */
  publicKey: text('public_key').notNull(),
  /** The 32-byte seed, sealed with AAD `agent_signing_key:<key_id>`. */
  privateKey: jsonb('private_key').$type<SealedSecret>().notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  retiredAt: timestamp('retired_at', { withTimezone: true }),
})
export type AgentSigningKeyRow = typeof agentSigningKey.$inferSelect
