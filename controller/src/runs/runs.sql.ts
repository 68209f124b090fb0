import { sql } from 'drizzle-orm'
import { bigint, boolean, index, integer, jsonb, pgTable, primaryKey, smallint, text, timestamp, uuid } from 'drizzle-orm/pg-core'
import type { SealedSecret } from '../crypto/secret-box.ts'
import { bytea } from '../db/bytea.ts'
import { job } from '../jobs/jobs.sql.ts'
import type { Connection, OsType } from '../targets/targets.sql.ts'

export const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'skipped', 'agent_lost', 'interrupted', 'system_error'] as const
export type RunStatus = (typeof RUN_STATUSES)[number]
export const FINAL_RUN_STATUSES: readonly RunStatus[] = ['succeeded', 'failed', 'timed_out', 'cancelled', 'skipped', 'agent_lost', 'interrupted', 'system_error']

/** Secret parameter values of a run are sealed with the run id bound in. */
export const runParamsAad = (runId: string) => `run:${runId}:params`

export const RUN_TRIGGERS = ['manual', 'retry', 'schedule', 'dependency'] as const
export type RunTrigger = (typeof RUN_TRIGGERS)[number]
export type RunWait = 'job_concurrency' | 'target_lock'

/** How a target is reached for one run, frozen at the start. */
export type Transport = 'agent' | 'ssh' | 'winrm' | 'controller'

/** One execution of one job version. */
export const run = pgTable(
  'run',
  {
    id: uuid('id').primaryKey(),
    jobId: uuid('job_id')
      .notNull()
      .references(() => job.id),
    jobVersion: integer('job_version').notNull(),
    jobName: text('job_name').notNull(),
    status: text('status').$type<RunStatus>().notNull(),
    /** Parameter values as rendered; secret parameters are sealed in `secretParams` and shown as `****`. */
    parameters: jsonb('parameters').$type<Record<string, unknown>>().notNull(),
    secretParams: jsonb('secret_params').$type<SealedSecret>(),
    /** The selector the targets were resolved from (job default or the request's). */
    selector: text('selector'),
    trigger: text('trigger').$type<RunTrigger>().notNull(),
    retryOf: uuid('retry_of'),
    /** For trigger 'dependency': the upstream run whose end started this one. */
    triggeredByRun: uuid('triggered_by_run'),
    /**
     * False while the run waits for its job's concurrency cap (`max_concurrent_runs`): nothing of
     * it starts until it is admitted, oldest first.
     */
    admitted: boolean('admitted').notNull().default(true),
    /** Why a queued run is not moving: `job_concurrency` or `target_lock` (null when it is not waiting). */
    waitingFor: text('waiting_for').$type<RunWait>(),
    requestedBy: text('requested_by'),
    requestedByName: text('requested_by_name'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    /** The run times out (stops, `timed_out`) at this moment. */
    deadline: timestamp('deadline', { withTimezone: true }),
    cancelRequestedAt: timestamp('cancel_requested_at', { withTimezone: true }),
    cancelRequestedBy: text('cancel_requested_by'),
    error: text('error'),
    targetCount: integer('target_count').notNull().default(0),
    /** Set when retention deleted this run's output (the run record stays longer). */
    outputPrunedAt: timestamp('output_pruned_at', { withTimezone: true }),
  },
  (t) => [
    index('run_created_idx').on(t.createdAt, t.id),
    index('run_job_idx').on(t.jobId, t.createdAt),
    index('run_status_idx').on(t.status, t.createdAt),
    index('run_finished_idx').on(t.finishedAt),
    index('run_active_idx')
      .on(t.id)
      .where(sql`${t.status} in ('queued', 'running')`),
    index('run_job_active_idx')
      .on(t.jobId, t.createdAt, t.id)
      .where(sql`${t.status} in ('queued', 'running')`),
  ],
)
export type RunRow = typeof run.$inferSelect

/** What a run keeps of each target (the API's field names). */
export interface TargetSnapshot {
  id: string
  name: string
  address: string
  os_type: OsType
  tags: Record<string, string>
  facts: Record<string, unknown>
  connection: Connection
}

/** The frozen target list of a run: what each target was when the run started. */
export const runTarget = pgTable(
  'run_target',
  {
    runId: uuid('run_id')
      .notNull()
      .references(() => run.id, { onDelete: 'cascade' }),
    targetId: uuid('target_id').notNull(),
    position: integer('position').notNull(),
    name: text('name').notNull(),
    /** The target row as it was (name, address, tags, facts, connection). */
    snapshot: jsonb('snapshot').$type<TargetSnapshot>().notNull(),
    transport: text('transport').$type<Transport>().notNull(),
    agentId: uuid('agent_id'),
  },
  (t) => [primaryKey({ columns: [t.runId, t.targetId] }), index('run_target_target_idx').on(t.targetId)],
)
export type RunTargetRow = typeof runTarget.$inferSelect

/**
 * One attempt of one step on one target (or on no target): the unit of work. Claimed with
 * `FOR UPDATE SKIP LOCKED` and a lease, so any controller can run it and a dead one's is reclaimed.
 * For agent steps the assignment id is this row's id: a controller that takes over finds it.
 */
export const stepRun = pgTable(
  'step_run',
  {
    id: uuid('id').primaryKey(),
    runId: uuid('run_id')
      .notNull()
      .references(() => run.id, { onDelete: 'cascade' }),
    stepIndex: integer('step_index').notNull(),
    stepId: text('step_id').notNull(),
    stepType: text('step_type').notNull(),
    targetId: uuid('target_id'),
    targetName: text('target_name'),
    attempt: integer('attempt').notNull().default(1),
    status: text('status').$type<RunStatus>().notNull(),
    /** Set by the run's coordinator when the step may start (order, run_if, fan-out limits allow it). */
    ready: boolean('ready').notNull().default(false),
    availableAt: timestamp('available_at', { withTimezone: true }).notNull(),
    transport: text('transport').$type<Transport>().notNull(),
    agentId: uuid('agent_id'),
    claimedBy: uuid('claimed_by'),
    leaseUntil: timestamp('lease_until', { withTimezone: true }),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    exitCode: integer('exit_code'),
    signal: text('signal'),
    error: text('error'),
    result: jsonb('result'),
    /** The step's inputs after templating, secrets masked (what the operator may see). */
    rendered: jsonb('rendered'),
    /** A remote handle (SSH process group…) for clean-up by a controller that takes over. */
    remote: jsonb('remote'),
    outputBytes: bigint('output_bytes', { mode: 'number' }).notNull().default(0),
    truncated: boolean('truncated').notNull().default(false),
  },
  (t) => [
    index('step_run_run_idx').on(t.runId, t.stepIndex, t.targetId, t.attempt),
    index('step_run_claimable_idx')
      .on(t.availableAt)
      .where(sql`${t.status} = 'queued' and ${t.ready}`),
    index('step_run_leased_idx')
      .on(t.leaseUntil)
      .where(sql`${t.status} = 'running'`),
    index('step_run_target_idx').on(t.targetId),
  ],
)
export type StepRunRow = typeof stepRun.$inferSelect

/** Output of steps the controller runs itself (SSH, HTTP, SQL…); agent steps' output is in agent_output. */
export const stepOutput = pgTable(
  'step_output',
  {
    stepRunId: uuid('step_run_id')
      .notNull()
      .references(() => stepRun.id, { onDelete: 'cascade' }),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    /** 1 stdout, 2 stderr (as agent_output). */
    stream: smallint('stream').notNull(),
    data: bytea('data').notNull(),
  },
  (t) => [primaryKey({ columns: [t.stepRunId, t.seq] })],
)

/**
 * The last event seq of each run, bumped under its row lock by the event triggers: event seqs of a
 * run are handed out in commit order, so a reader resuming after seq N never misses a later commit
 * of a smaller seq. A table of its own, so the lock never meets the run row's.
 */
export const runEventCounter = pgTable('run_event_counter', {
  runId: uuid('run_id')
    .primaryKey()
    .references(() => run.id, { onDelete: 'cascade' }),
  seq: bigint('seq', { mode: 'number' }).notNull().default(0),
})

/**
 * What a live viewer needs, in the order it was committed: status changes and pointers to output
 * chunks, written by triggers (so every path that changes a run or stores output records it).
 */
export const runEvent = pgTable(
  'run_event',
  {
    runId: uuid('run_id')
      .notNull()
      .references(() => run.id, { onDelete: 'cascade' }),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    /** run | step | output */
    kind: text('kind').notNull(),
    stepRunId: uuid('step_run_id'),
    status: text('status'),
    outputSeq: bigint('output_seq', { mode: 'number' }),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.seq] })],
)

