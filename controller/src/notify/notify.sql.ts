import { sql } from 'drizzle-orm'
import { boolean, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import type { SealedSecret } from '../crypto/secret-box.ts'
import { editedColumns } from '../db/columns.ts'
import { appUser } from '../users/users.sql.ts'

export const CHANNEL_TYPES = ['email', 'slack', 'teams', 'webhook'] as const
export type ChannelType = (typeof CHANNEL_TYPES)[number]

/**
 * Where notifications go. `config` holds what may be shown (recipients, method, headers without
 * secrets, body template); `secret` is sealed (webhook URLs carry tokens, HMAC keys) and never
 * leaves the controller.
 */
export const notificationChannel = pgTable(
  'notification_channel',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    type: text('type').$type<ChannelType>().notNull(),
    config: jsonb('config').$type<Record<string, unknown>>().notNull().default({}),
    secret: jsonb('secret').$type<SealedSecret>(),
    /** Deliveries per minute this channel accepts from us (a receiver's own limit, or ours). */
    rateLimitPerMinute: integer('rate_limit_per_minute').notNull().default(60),
    ...editedColumns(),
  },
  (t) => [
    uniqueIndex('notification_channel_name_idx')
      .on(sql`lower(${t.name})`)
      .where(sql`${t.deletedAt} is null`),
  ],
)
export type NotificationChannelRow = typeof notificationChannel.$inferSelect

/** `held`: waiting for the addressed user's digest; `batched`: carried by that digest (`digest_id`). */
export const NOTIFICATION_STATUSES = ['pending', 'sending', 'delivered', 'dead', 'discarded', 'held', 'batched'] as const
export type NotificationStatus = (typeof NOTIFICATION_STATUSES)[number]

/**
 * The outbox: one row per message to one channel (and recipient), written in the transaction of
 * the event that causes it and rendered then (a later template change does not rewrite history).
 * `dedupe_key` makes the event → message step exactly once. Any controller delivers it: claimed
 * with SKIP LOCKED under a lease, retried with backoff, dead after the last attempt.
 */
export const notification = pgTable(
  'notification',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    channelId: uuid('channel_id')
      .notNull()
      .references(() => notificationChannel.id),
    event: text('event').notNull(),
    /** e.g. `run:<id>:run.failed:rule:<id>:channel:<id>` */
    dedupeKey: text('dedupe_key'),
    /** An email address or a user id (email channels); null for a channel's own destination. */
    recipient: text('recipient'),
    subject: text('subject').notNull(),
    /** What is sent, per channel type (email text/html, Slack or Teams JSON, webhook body). */
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    status: text('status').$type<NotificationStatus>().notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull().default(8),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }).notNull().defaultNow(),
    claimedBy: uuid('claimed_by'),
    leaseUntil: timestamp('lease_until', { withTimezone: true }),
    lastError: text('last_error'),
    runId: uuid('run_id'),
    ruleId: uuid('rule_id'),
    /** The user the message is addressed to (their preferences applied), if any. */
    userId: uuid('user_id'),
    /** For a `batched` message: the digest message that carried it. */
    digestId: uuid('digest_id'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    deliveredAt: timestamp('delivered_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('notification_dedupe_idx').on(t.dedupeKey),
    index('notification_due_idx')
      .on(t.nextAttemptAt)
      .where(sql`${t.status} = 'pending'`),
    index('notification_created_idx').on(t.createdAt, t.id),
    index('notification_channel_idx').on(t.channelId, t.createdAt),
    // The per-channel rate window and the expired-lease sweep read these, not the whole history.
    index('notification_channel_next_idx').on(t.channelId, t.nextAttemptAt),
    index('notification_sending_idx')
      .on(t.leaseUntil)
      .where(sql`${t.status} = 'sending'`),
    index('notification_held_idx')
      .on(t.userId, t.channelId, t.createdAt)
      .where(sql`${t.status} = 'held'`),
    index('notification_dead_idx')
      .on(t.createdAt)
      .where(sql`${t.status} = 'dead'`),
  ],
)
export type NotificationRow = typeof notification.$inferSelect

/** Every delivery attempt and what the receiver answered (bodies truncated, never secrets). */
export const notificationAttempt = pgTable(
  'notification_attempt',
  {
    notificationId: uuid('notification_id')
      .notNull()
      .references(() => notification.id, { onDelete: 'cascade' }),
    attempt: integer('attempt').notNull(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
    /** delivered | failed | rate_limited */
    outcome: text('outcome').notNull(),
    httpStatus: integer('http_status'),
    response: text('response'),
    error: text('error'),
    durationMs: integer('duration_ms'),
  },
  (t) => [primaryKey({ columns: [t.notificationId, t.attempt] })],
)

export interface RuleConditions {
  job_ids?: string[]
  /** Any of these job tags. */
  job_tags?: string[]
  /** The run touched at least one target this selector matches. */
  target_selector?: string
  schedule_ids?: string[]
  /** Only runs that took longer than this. */
  min_duration_sec?: number
  /** Only the first failure and the recovery: not while the job's state stays the same. */
  only_on_change?: boolean
}

export interface RuleEscalation {
  /** A failure not followed by a success of the same job within this time is escalated. */
  after_sec: number
  channel_ids: string[]
  user_ids: string[]
}

/** Event(s) + conditions → channels and users, with an optional template. */
export const notificationRule = pgTable(
  'notification_rule',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    enabled: boolean('enabled').notNull().default(true),
    /** Critical messages go out during users' quiet hours and are never held for a digest. */
    critical: boolean('critical').notNull().default(false),
    events: jsonb('events').$type<string[]>().notNull(),
    conditions: jsonb('conditions').$type<RuleConditions>().notNull().default({}),
    channelIds: jsonb('channel_ids').$type<string[]>().notNull().default([]),
    userIds: jsonb('user_ids').$type<string[]>().notNull().default([]),
    /** Subject and body templates (the jobs' template language over the event's fields); null: the defaults. */
    template: jsonb('template').$type<{ subject?: string; body?: string }>(),
    escalation: jsonb('escalation').$type<RuleEscalation>(),
    ...editedColumns(),
  },
  (t) => [
    uniqueIndex('notification_rule_name_idx')
      .on(sql`lower(${t.name})`)
      .where(sql`${t.deletedAt} is null`),
  ],
)
export type NotificationRuleRow = typeof notificationRule.$inferSelect

/**
 * A failure waiting to be escalated: sent when `due_at` passes with no success of the job since,
 * resolved by that success. One per (rule, failed run).
 */
export const notificationEscalation = pgTable(
  'notification_escalation',
  {
    ruleId: uuid('rule_id')
      .notNull()
      .references(() => notificationRule.id, { onDelete: 'cascade' }),
    runId: uuid('run_id').notNull(),
    jobId: uuid('job_id').notNull(),
    dueAt: timestamp('due_at', { withTimezone: true }).notNull(),
    /** waiting | sent | resolved */
    status: text('status').notNull().default('waiting'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    doneAt: timestamp('done_at', { withTimezone: true }),
  },
  (t) => [
    primaryKey({ columns: [t.ruleId, t.runId] }),
    index('notification_escalation_due_idx')
      .on(t.dueAt)
      .where(sql`${t.status} = 'waiting'`),
    index('notification_escalation_job_idx').on(t.jobId, t.status),
  ],
)

/** What a user accepts: channels, events, quiet hours in their zone, digest batching. */
export const notificationPreference = pgTable('notification_preference', {
  userId: uuid('user_id')
    .primaryKey()
    .references(() => appUser.id, { onDelete: 'cascade' }),
  /** null: every channel. */
  channelIds: jsonb('channel_ids').$type<string[] | null>(),
  /** null: every event. */
  events: jsonb('events').$type<string[] | null>(),
  /** "22:00" to "07:00" in `timezone`: deliveries wait for the end (critical events do not). */
  quietStart: text('quiet_start'),
  quietEnd: text('quiet_end'),
  timezone: text('timezone').notNull().default('UTC'),
  /** Batch into one message every N minutes (null: one message each). */
  digestMinutes: integer('digest_minutes'),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  updatedBy: text('updated_by'),
})
