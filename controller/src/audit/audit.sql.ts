import { bigint, index, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core'

export const ACTOR_TYPES = ['user', 'api_token', 'system', 'agent', 'anonymous'] as const
export type ActorType = (typeof ACTOR_TYPES)[number]
export const AUDIT_OUTCOMES = ['success', 'failure', 'denied'] as const
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number]

/**
 * Append-only and hash-chained: each row's `hash` covers its content and the previous row's hash
 * (see chain.ts). Rows are only ever inserted by appendAudit, which serialises writers.
 */
export const auditLog = pgTable(
  'audit_log',
  {
    // By default, not always: appendAudit allocates the id itself because the id is hashed.
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    at: timestamp('at', { withTimezone: true }).notNull(),
    actorType: text('actor_type', { enum: ACTOR_TYPES }).notNull(),
    actorId: text('actor_id'),
    actorName: text('actor_name'),
    action: text('action').notNull(),
    resourceType: text('resource_type'),
    resourceId: text('resource_id'),
    clientAddress: text('client_address'),
    requestId: text('request_id'),
    outcome: text('outcome', { enum: AUDIT_OUTCOMES }).notNull(),
    summary: jsonb('summary').$type<Record<string, unknown>>().notNull().default({}),
    prevHash: text('prev_hash'),
    hash: text('hash').notNull(),
  },
  (t) => [
    index('audit_log_at_idx').on(t.at),
    index('audit_log_actor_id_idx').on(t.actorId),
    index('audit_log_actor_name_idx').on(t.actorName),
    // text_pattern_ops so the `auth.*` prefix filter (LIKE 'auth.%') can use the index under any collation.
    index('audit_log_action_idx').using('btree', t.action.op('text_pattern_ops')),
    index('audit_log_resource_idx').on(t.resourceType, t.resourceId),
  ],
)
