import { sql } from 'drizzle-orm'
import { boolean, index, integer, jsonb, pgTable, real, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import type { SealedSecret } from '../crypto/secret-box.ts'
import { job } from '../jobs/jobs.sql.ts'
import { run } from '../runs/runs.sql.ts'
import { editedColumns } from '../db/columns.ts'

export type MisfirePolicy = 'skip' | 'run_once' | 'run_all'
export type ConcurrencyPolicy = 'allow' | 'skip' | 'queue'

/** A job fired on a cron expression in a time zone. Deleting hides it; its fires stay readable. */
export const schedule = pgTable(
  'schedule',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    description: text('description'),
    jobId: uuid('job_id')
      .notNull()
      .references(() => job.id),
    /** Parameter values for the run; secret parameters are sealed in `secretParams`. */
    parameters: jsonb('parameters').$type<Record<string, unknown>>().notNull().default({}),
    secretParams: jsonb('secret_params').$type<SealedSecret>(),
    /** Overrides the job's default target selector. */
    targets: text('targets'),
    cron: text('cron').notNull(),
    timezone: text('timezone').notNull().default('UTC'),
    enabled: boolean('enabled').notNull().default(true),
    startAt: timestamp('start_at', { withTimezone: true }),
    endAt: timestamp('end_at', { withTimezone: true }),
    misfirePolicy: text('misfire_policy').$type<MisfirePolicy>().notNull().default('run_once'),
    /** Fires later than this are missed, whatever the policy (run_all and run_once catch up only within it). */
    misfireMaxLatenessSec: integer('misfire_max_lateness_sec').notNull().default(3600),
    concurrencyPolicy: text('concurrency_policy').$type<ConcurrencyPolicy>().notNull().default('allow'),
    maxConcurrentRuns: integer('max_concurrent_runs').notNull().default(1),
    retryCount: integer('retry_count').notNull().default(0),
    retryDelaySec: integer('retry_delay_sec').notNull().default(60),
    retryBackoff: real('retry_backoff').notNull().default(2),
    /** The next occurrence the leader will fire (null: none left, or disabled). */
    nextFireAt: timestamp('next_fire_at', { withTimezone: true }),
    lastFireAt: timestamp('last_fire_at', { withTimezone: true }),
    ...editedColumns(),
  },
  (t) => [
    uniqueIndex('schedule_name_lower_idx')
      .on(sql`lower(${t.name})`)
      .where(sql`${t.deletedAt} is null`),
    index('schedule_job_idx').on(t.jobId),
    index('schedule_due_idx')
      .on(t.nextFireAt)
      .where(sql`${t.enabled} and ${t.deletedAt} is null`),
  ],
)
export type ScheduleRow = typeof schedule.$inferSelect

export type FireStatus = 'fired' | 'missed' | 'skipped' | 'queued' | 'deferred' | 'failed'

/**
 * One occurrence of a schedule, recorded once: the unique (schedule, fire time) key is what makes
 * a take-over, a restart or a clock step unable to fire the same occurrence twice.
 */
export const scheduleFire = pgTable(
  'schedule_fire',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    scheduleId: uuid('schedule_id')
      .notNull()
      .references(() => schedule.id, { onDelete: 'cascade' }),
    /** The occurrence (UTC) the cron expression produced. */
    fireAt: timestamp('fire_at', { withTimezone: true }).notNull(),
    status: text('status').$type<FireStatus>().notNull(),
    /** Why it was missed, skipped, queued or deferred (`maintenance`, `concurrency`, `misfire`, …). */
    reason: text('reason'),
    runId: uuid('run_id').references(() => run.id, { onDelete: 'set null' }),
    /** Retries of a failed run of this occurrence. */
    attempt: integer('attempt').notNull().default(1),
    /** When the decision was made and by which controller. */
    decidedAt: timestamp('decided_at', { withTimezone: true }).notNull().defaultNow(),
    decidedBy: text('decided_by'),
    lagMs: integer('lag_ms'),
    detail: jsonb('detail').$type<Record<string, unknown>>(),
  },
  (t) => [
    uniqueIndex('schedule_fire_once_idx').on(t.scheduleId, t.fireAt),
    index('schedule_fire_recent_idx').on(t.scheduleId, t.decidedAt),
    // The tick looks for occurrences still waiting (queued for capacity, deferred by a maintenance window).
    index('schedule_fire_waiting_idx')
      .on(t.status, t.fireAt)
      .where(sql`${t.status} in ('queued', 'deferred')`),
  ],
)
export type ScheduleFireRow = typeof scheduleFire.$inferSelect

/** The cluster's scheduler: one row. Pausing here pauses firing on every controller. */
export const schedulerState = pgTable('scheduler_state', {
  id: integer('id').primaryKey().default(1),
  paused: boolean('paused').notNull().default(false),
  pausedBy: text('paused_by'),
  pausedAt: timestamp('paused_at', { withTimezone: true }),
  leaderNode: text('leader_node'),
  leaderSince: timestamp('leader_since', { withTimezone: true }),
  lastTickAt: timestamp('last_tick_at', { withTimezone: true }),
  dueCount: integer('due_count').notNull().default(0),
  lagMs: integer('lag_ms'),
})
