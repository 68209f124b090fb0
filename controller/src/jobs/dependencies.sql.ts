import { index, jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core'
import type { DependencyTrigger } from './definition.ts'
import { job } from './jobs.sql.ts'
import { run } from '../runs/runs.sql.ts'

/**
 * The dependency graph of the jobs' current versions: `job_id` is started when a run of
 * `upstream_job_id` ends as `trigger.on` says. Rewritten from the definition on every save
 * (where cycles are refused), so a run's end finds its dependants with one indexed read.
 */
export const jobDependency = pgTable(
  'job_dependency',
  {
    jobId: uuid('job_id')
      .notNull()
      .references(() => job.id, { onDelete: 'cascade' }),
    upstreamJobId: uuid('upstream_job_id')
      .notNull()
      .references(() => job.id, { onDelete: 'cascade' }),
    trigger: jsonb('trigger').$type<DependencyTrigger>().notNull(),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.upstreamJobId] }), index('job_dependency_upstream_idx').on(t.upstreamJobId)],
)

/**
 * What each upstream run's end triggered, once per (upstream run, dependent job): written in the
 * transaction that ends the upstream run, so a crash or a second controller never triggers twice.
 */
export const dependencyFire = pgTable(
  'dependency_fire',
  {
    upstreamRunId: uuid('upstream_run_id')
      .notNull()
      .references(() => run.id, { onDelete: 'cascade' }),
    jobId: uuid('job_id')
      .notNull()
      .references(() => job.id, { onDelete: 'cascade' }),
    /** `launched` (run_id set) or `failed` (error says why: job disabled, parameters refused…). */
    status: text('status').$type<'launched' | 'failed'>().notNull(),
    runId: uuid('run_id'),
    error: text('error'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.upstreamRunId, t.jobId] }), index('dependency_fire_run_idx').on(t.runId)],
)
