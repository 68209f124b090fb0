import { z } from 'zod'
import { ValidationError } from '../errors.ts'
import { parseSelector } from '../selectors/parse.ts'
import type { ConcurrencyPolicy, FireStatus, MisfirePolicy } from './scheduler.sql.ts'

/*
 * What the schedules API accepts. Field-level checks live here; the checks that need two fields
 * (cron in its zone, end after start) or the database (job, parameters) live in service.ts.
 */

export const MISFIRE_POLICIES = ['skip', 'run_once', 'run_all'] as const satisfies readonly MisfirePolicy[]
export const CONCURRENCY_POLICIES = ['allow', 'skip', 'queue'] as const satisfies readonly ConcurrencyPolicy[]
export const FIRE_STATUSES = ['fired', 'missed', 'skipped', 'queued', 'deferred', 'failed'] as const satisfies readonly FireStatus[]
export const MAX_PREVIEW = 100

const Instant = z.iso.datetime({ offset: true, message: 'an ISO-8601 date-time with a zone, e.g. 2026-03-08T07:00:00Z' }).transform((s) => new Date(s))

const Selector = z
  .string()
  .trim()
  .min(1)
  .max(4096)
  .superRefine((value, ctx) => {
    try {
      parseSelector(value)
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof ValidationError ? err.message.replace(/^selector: /, '') : 'not a target selector' })
    }
  })

const Retry = z
  .object({
    count: z.number().int().min(0).max(10),
    delay_sec: z.number().int().min(0).max(86_400),
    backoff: z.number().min(1).max(10),
  })
  .strict()

export const RETRY_DEFAULTS = { count: 0, delay_sec: 60, backoff: 2 }

const fields = {
  name: z.string().trim().min(1).max(200),
  description: z.string().trim().max(2000).nullable(),
  job_id: z.uuid(),
  parameters: z.record(z.string(), z.unknown()),
  targets: Selector.nullable(),
  cron: z.string().trim().min(1).max(200),
  timezone: z.string().trim().min(1).max(64),
  enabled: z.boolean(),
  start_at: Instant.nullable(),
  end_at: Instant.nullable(),
  misfire_policy: z.enum(MISFIRE_POLICIES),
  misfire_max_lateness_sec: z.number().int().min(0).max(30 * 86_400),
  concurrency_policy: z.enum(CONCURRENCY_POLICIES),
  max_concurrent_runs: z.number().int().min(1).max(1000),
}

/** Fields a GET returns that are not settable: a client may PUT a GET body back unchanged. */
const READ_ONLY = ['id', 'job_name', 'next_fire_at', 'last_fire_at', 'created_at', 'updated_at', 'created_by', 'updated_by', 'has_secret_parameters', 'last_fire']

function withoutReadOnly(value: unknown): unknown {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value
  const copy = { ...(value as Record<string, unknown>) }
  for (const key of READ_ONLY) delete copy[key]
  return copy
}

export const CreateScheduleInput = z.preprocess(
  withoutReadOnly,
  z
    .object({
      name: fields.name,
      description: fields.description.default(null),
      job_id: fields.job_id,
      parameters: fields.parameters.default({}),
      targets: fields.targets.default(null),
      cron: fields.cron,
      timezone: fields.timezone.default('UTC'),
      enabled: fields.enabled.default(true),
      start_at: fields.start_at.default(null),
      end_at: fields.end_at.default(null),
      misfire_policy: fields.misfire_policy.default('run_once'),
      misfire_max_lateness_sec: fields.misfire_max_lateness_sec.default(3600),
      concurrency_policy: fields.concurrency_policy.default('allow'),
      max_concurrent_runs: fields.max_concurrent_runs.default(1),
      retry: Retry.partial().default({}).transform((r) => ({ ...RETRY_DEFAULTS, ...r })),
    })
    .strict(),
)
export type CreateScheduleInput = z.output<typeof CreateScheduleInput>

/** PUT changes the fields it names and leaves the others as they are; null clears an optional field. */
export const UpdateScheduleInput = z.preprocess(
  withoutReadOnly,
  z
    .object({
      ...fields,
      retry: Retry.partial(),
    })
    .partial()
    .strict(),
)
export type UpdateScheduleInput = z.output<typeof UpdateScheduleInput>

export const ListSchedulesQuery = z.object({
  job_id: z.uuid().optional(),
  enabled: z.enum(['true', 'false']).optional(),
})

export const ListFiresQuery = z.object({
  status: z.enum(FIRE_STATUSES).optional(),
})

const Count = z.coerce.number().int().min(1).max(MAX_PREVIEW).default(10)

export const PreviewQuery = z.object({
  count: Count,
  from: Instant.optional(),
})

/** `tz` (as issue 8 spells it) or `timezone` (as the schedule does); UTC when neither is given. */
export const AdhocPreviewQuery = PreviewQuery.extend({
  cron: z.string().trim().min(1, 'required').max(200),
  tz: z.string().trim().min(1).max(64).optional(),
  timezone: z.string().trim().min(1).max(64).optional(),
})
