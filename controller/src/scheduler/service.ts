import { randomUUID } from 'node:crypto'
import { and, desc, eq, inArray, isNull, or, sql } from 'drizzle-orm'
import { z } from 'zod'
import { actorOf, type Principal } from '../auth/principal.ts'
import type { AppContext } from '../context.ts'
import { openSecret, sealSecret, type SealedSecret } from '../crypto/secret-box.ts'
import { isUniqueViolation, isUuid, uuidArray, type Db } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'
import { AppError, NotFoundError, ValidationError } from '../errors.ts'
import { decodeCursor, pageOf, type Page } from '../http/pagination.ts'
import { resolveParameters, type ParameterDef } from '../jobs/definition.ts'
import { job, jobVersion, type JobRow } from '../jobs/jobs.sql.ts'
import { run, type RunStatus } from '../runs/runs.sql.ts'
import { canonicalZone, nextFireTimes, previewFires, validateCron, type CronSpec, type PreviewFire } from './cron.ts'
import type { CreateScheduleInput, UpdateScheduleInput } from './schedule-input.ts'
import { schedule, scheduleFire, type ScheduleFireRow, type ScheduleRow } from './scheduler.sql.ts'

/** What a secret parameter is shown as; sent back on PUT it means "keep the stored value". */
export const SECRET_MASK = '****'

/** Binds a schedule's sealed parameters to its row: a blob copied into another schedule does not open there. */
export const scheduleParamsAad = (scheduleId: string) => `schedule:${scheduleId}:params`

type Problem = { path: string; message: string }

export interface ScheduleDto {
  id: string
  name: string
  description: string | null
  job_id: string
  job_name: string | null
  parameters: Record<string, unknown>
  targets: string | null
  cron: string
  timezone: string
  enabled: boolean
  start_at: string | null
  end_at: string | null
  misfire_policy: ScheduleRow['misfirePolicy']
  misfire_max_lateness_sec: number
  concurrency_policy: ScheduleRow['concurrencyPolicy']
  max_concurrent_runs: number
  retry: { count: number; delay_sec: number; backoff: number }
  next_fire_at: string | null
  last_fire_at: string | null
  created_at: string
  updated_at: string
  created_by: string | null
  updated_by: string | null
}

const isoOrNull = (d: Date | null) => (d ? d.toISOString() : null)

export function scheduleDto(row: ScheduleRow, jobName: string | null): ScheduleDto {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    job_id: row.jobId,
    job_name: jobName,
    parameters: row.parameters,
    targets: row.targets,
    cron: row.cron,
    timezone: row.timezone,
    enabled: row.enabled,
    start_at: isoOrNull(row.startAt),
    end_at: isoOrNull(row.endAt),
    misfire_policy: row.misfirePolicy,
    misfire_max_lateness_sec: row.misfireMaxLatenessSec,
    concurrency_policy: row.concurrencyPolicy,
    max_concurrent_runs: row.maxConcurrentRuns,
    retry: { count: row.retryCount, delay_sec: row.retryDelaySec, backoff: row.retryBackoff },
    next_fire_at: isoOrNull(row.nextFireAt),
    last_fire_at: isoOrNull(row.lastFireAt),
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    created_by: row.createdBy,
    updated_by: row.updatedBy,
  }
}

export function specOf(row: Pick<ScheduleRow, 'cron' | 'timezone' | 'startAt' | 'endAt'>): CronSpec {
  return { cron: row.cron, timezone: row.timezone, startAt: row.startAt, endAt: row.endAt }
}

/** The first fire strictly after `now`, or null when disabled or nothing is left. What the engine picks up. */
export function firstFireAfter(row: Pick<ScheduleRow, 'cron' | 'timezone' | 'startAt' | 'endAt' | 'enabled'>, now: Date): Date | null {
  if (!row.enabled) return null
  return nextFireTimes(specOf(row), now, 1)[0] ?? null
}

/** Cron in its zone and the start/end window; returns the canonical zone name. */
function checkTiming(t: { cron: string; timezone: string; startAt: Date | null; endAt: Date | null }): string {
  const problems: Problem[] = validateCron(t.cron, t.timezone)
  if (t.startAt && t.endAt && t.endAt.getTime() <= t.startAt.getTime()) problems.push({ path: 'end_at', message: 'must be after start_at' })
  if (problems.length) throw new ValidationError(`invalid schedule: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems)
  return canonicalZone(t.timezone)!
}

async function jobFor(db: Db, jobId: string): Promise<JobRow & { parameters: ParameterDef[] }> {
  const [found] = await db
    .select({ job, definition: jobVersion.definition })
    .from(job)
    .innerJoin(jobVersion, and(eq(jobVersion.jobId, job.id), eq(jobVersion.version, job.currentVersion)))
    .where(and(eq(job.id, jobId), isNull(job.deletedAt)))
  if (!found) throw new ValidationError(`job_id: no job ${jobId}`, [{ path: 'job_id', message: 'no such job (or it was deleted)' }])
  return { ...found.job, parameters: found.definition.parameters }
}

interface StoredParameters {
  parameters: Record<string, unknown>
  secretNames: string[]
  /** Plaintext of the secret parameters, to seal under the schedule's id. */
  secrets: Record<string, string>
}

/**
 * Checks the given values with the job's own parameter rules, then splits them: secret values are
 * sealed apart and shown as `****`. Only the names given are stored, so the job's defaults still
 * apply when it fires. `****` for a secret keeps the value stored before.
 */
function prepareParameters(defs: ParameterDef[], given: Record<string, unknown>, storedSecrets: Record<string, string>): StoredParameters {
  const secretNames = new Set(defs.filter((d) => d.type === 'secret').map((d) => d.name))
  const problems: Problem[] = []
  const values: Record<string, unknown> = { ...given }
  for (const name of secretNames) {
    if (values[name] !== SECRET_MASK) continue
    if (storedSecrets[name] !== undefined) values[name] = storedSecrets[name]
    else problems.push({ path: `parameters.${name}`, message: `${SECRET_MASK} stands for a stored secret, and none is stored: send the value` })
  }
  if (problems.length) throw new ValidationError(`invalid parameters: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems)
  const resolved = resolveParameters(defs, values)
  const parameters: Record<string, unknown> = {}
  const secrets: Record<string, string> = {}
  for (const name of Object.keys(given)) {
    const value = resolved[name]
    if (value === undefined || given[name] === null || given[name] === '') continue
    if (secretNames.has(name)) {
      secrets[name] = String(value)
      parameters[name] = SECRET_MASK
    } else {
      parameters[name] = value
    }
  }
  return { parameters, secretNames: [...secretNames], secrets }
}

function openParams(ctx: AppContext, id: string, sealed: SealedSecret | null): Record<string, string> {
  if (!sealed) return {}
  return JSON.parse(openSecret(ctx.keyring, sealed, scheduleParamsAad(id)).toString('utf8')) as Record<string, string>
}

function sealParams(ctx: AppContext, id: string, secrets: Record<string, string>): SealedSecret | null {
  return Object.keys(secrets).length ? sealSecret(ctx.keyring, JSON.stringify(secrets), scheduleParamsAad(id)) : null
}

/** The run request a fire launches: stored parameters with the secrets opened, and the target override. */
export function scheduleRunRequest(ctx: AppContext, row: ScheduleRow): { parameters: Record<string, unknown>; targets?: string } {
  const parameters = { ...row.parameters, ...openParams(ctx, row.id, row.secretParams ?? null) }
  return row.targets ? { parameters, targets: row.targets } : { parameters }
}

function nameTaken(name: string): AppError {
  return new AppError('CONFLICT', `a schedule named "${name}" already exists`, [{ path: 'name', message: 'already used by another schedule' }])
}

async function withNameCheck<T>(name: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (err) {
    if (isUniqueViolation(err)) throw nameTaken(name)
    throw err
  }
}

export async function createSchedule(ctx: AppContext, principal: Principal | undefined, input: CreateScheduleInput): Promise<ScheduleDto> {
  const timezone = checkTiming({ cron: input.cron, timezone: input.timezone, startAt: input.start_at, endAt: input.end_at })
  const by = actorOf(principal).name
  const id = randomUUID()
  const now = ctx.clock()
  const jobRow = await jobFor(ctx.db, input.job_id)
  const params = prepareParameters(jobRow.parameters, input.parameters, {})
  const values = {
    id,
    name: input.name,
    description: input.description || null,
    jobId: jobRow.id,
    parameters: params.parameters,
    secretParams: sealParams(ctx, id, params.secrets),
    targets: input.targets,
    cron: input.cron,
    timezone,
    enabled: input.enabled,
    startAt: input.start_at,
    endAt: input.end_at,
    misfirePolicy: input.misfire_policy,
    misfireMaxLatenessSec: input.misfire_max_lateness_sec,
    concurrencyPolicy: input.concurrency_policy,
    maxConcurrentRuns: input.max_concurrent_runs,
    retryCount: input.retry.count,
    retryDelaySec: input.retry.delay_sec,
    retryBackoff: input.retry.backoff,
    createdAt: now,
    updatedAt: now,
    createdBy: by,
    updatedBy: by,
  }
  const [row] = await withNameCheck(input.name, () =>
    ctx.db
      .insert(schedule)
      .values({ ...values, nextFireAt: firstFireAfter({ ...values }, now) })
      .returning(),
  )
  return scheduleDto(row!, jobRow.name)
}

export async function getScheduleRow(db: Db, id: string, opts: { forUpdate?: boolean } = {}): Promise<ScheduleRow> {
  if (!isUuid(id)) throw new NotFoundError('schedule', id)
  const query = db
    .select()
    .from(schedule)
    .where(and(eq(schedule.id, id), isNull(schedule.deletedAt)))
  const [row] = opts.forUpdate ? await query.for('update') : await query
  if (!row) throw new NotFoundError('schedule', id)
  return row
}

async function jobNameOf(db: Db, jobId: string): Promise<string | null> {
  const [row] = await db.select({ name: job.name }).from(job).where(eq(job.id, jobId))
  return row?.name ?? null
}

export async function getSchedule(ctx: AppContext, id: string): Promise<ScheduleDto> {
  const row = await getScheduleRow(ctx.db, id)
  return scheduleDto(row, await jobNameOf(ctx.db, row.jobId))
}

const same = (a: Date | null, b: Date | null) => (a?.getTime() ?? null) === (b?.getTime() ?? null)

/** The row's columns after a PUT: named fields change, the rest stay. */
function mergedColumns(row: ScheduleRow, patch: UpdateScheduleInput) {
  return {
    name: patch.name ?? row.name,
    description: patch.description === undefined ? row.description : patch.description || null,
    jobId: patch.job_id ?? row.jobId,
    targets: patch.targets === undefined ? row.targets : patch.targets,
    cron: patch.cron ?? row.cron,
    timezone: patch.timezone ?? row.timezone,
    enabled: patch.enabled ?? row.enabled,
    startAt: patch.start_at === undefined ? row.startAt : patch.start_at,
    endAt: patch.end_at === undefined ? row.endAt : patch.end_at,
    misfirePolicy: patch.misfire_policy ?? row.misfirePolicy,
    misfireMaxLatenessSec: patch.misfire_max_lateness_sec ?? row.misfireMaxLatenessSec,
    concurrencyPolicy: patch.concurrency_policy ?? row.concurrencyPolicy,
    maxConcurrentRuns: patch.max_concurrent_runs ?? row.maxConcurrentRuns,
    retryCount: patch.retry?.count ?? row.retryCount,
    retryDelaySec: patch.retry?.delay_sec ?? row.retryDelaySec,
    retryBackoff: patch.retry?.backoff ?? row.retryBackoff,
  }
}

/**
 * PUT: the fields sent change. next_fire_at is recomputed from now when the timing changes or the
 * schedule is (re-)enabled — occurrences while it was disabled are not owed — and kept otherwise,
 * so renaming a schedule the leader is about to fire (or catching up on) changes nothing.
 */
export async function updateSchedule(ctx: AppContext, principal: Principal | undefined, id: string, patch: UpdateScheduleInput): Promise<{ before: ScheduleDto; after: ScheduleDto }> {
  const by = actorOf(principal).name
  const now = ctx.clock()
  return withNameCheck(patch.name ?? '', () =>
    ctx.db.transaction(async (tx) => {
      const db = tx as unknown as Db
      const row = await getScheduleRow(db, id, { forUpdate: true })
      const before = scheduleDto(row, await jobNameOf(db, row.jobId))
      const next = mergedColumns(row, patch)
      next.timezone = checkTiming(next)
      let jobName = before.job_name
      let paramColumns: Pick<ScheduleRow, 'parameters' | 'secretParams'> | undefined
      if (patch.parameters !== undefined || (patch.job_id !== undefined && patch.job_id !== row.jobId)) {
        const jobRow = await jobFor(db, next.jobId)
        jobName = jobRow.name
        const storedSecrets = openParams(ctx, row.id, row.secretParams ?? null)
        const params = prepareParameters(jobRow.parameters, patch.parameters ?? row.parameters, storedSecrets)
        paramColumns = { parameters: params.parameters, secretParams: sealParams(ctx, row.id, params.secrets) }
      }
      const timingChanged = next.cron !== row.cron || next.timezone !== row.timezone || !same(next.startAt, row.startAt) || !same(next.endAt, row.endAt)
      const reEnabled = next.enabled && !row.enabled
      const nextFireAt = !next.enabled ? null : timingChanged || reEnabled ? firstFireAfter(next, now) : row.nextFireAt
      const [updated] = await db
        .update(schedule)
        .set({ ...next, ...paramColumns, nextFireAt, updatedAt: now, updatedBy: by })
        .where(eq(schedule.id, id))
        .returning()
      return { before, after: scheduleDto(updated!, jobName) }
    }),
  )
}

/** Deleting hides the schedule, stops its firing and frees its name; its fire history stays readable. */
export async function removeSchedule(ctx: AppContext, id: string): Promise<ScheduleDto> {
  return ctx.db.transaction(async (tx) => {
    const db = tx as unknown as Db
    const row = await getScheduleRow(db, id, { forUpdate: true })
    const [removed] = await db.update(schedule).set({ deletedAt: ctx.clock(), nextFireAt: null }).where(eq(schedule.id, id)).returning()
    return scheduleDto(removed!, await jobNameOf(db, row.jobId))
  })
}

const ScheduleCursor = z.tuple([z.string(), z.uuid()])

/** A schedule's latest occurrence and, when it launched a run, that run's status now. */
export interface LastFire {
  fire_at: string
  status: ScheduleFireRow['status']
  reason: string | null
  run_id: string | null
  run_status: RunStatus | null
}

/** A list item: the schedule and how its latest occurrence went. */
export type ScheduleListItem = ScheduleDto & { last_fire: LastFire | null }

/** The latest fire of each schedule: one index probe per schedule (LATERAL … LIMIT 1), however long its history. */
async function lastFires(db: Db, ids: string[]): Promise<Map<string, LastFire>> {
  const out = new Map<string, LastFire>()
  if (!ids.length) return out
  const latest = rowsOf<{ id: string }>(
    await db.execute(sql`
      select f.id from unnest(${uuidArray(ids)}) as s(id)
      cross join lateral (select id from schedule_fire where schedule_id = s.id order by fire_at desc limit 1) f`),
  ).map((r) => r.id)
  if (!latest.length) return out
  const rows = await db
    .select({ fire: scheduleFire, runStatus: run.status })
    .from(scheduleFire)
    .leftJoin(run, eq(run.id, scheduleFire.runId))
    .where(inArray(scheduleFire.id, latest))
  for (const r of rows) {
    out.set(r.fire.scheduleId, { fire_at: r.fire.fireAt.toISOString(), status: r.fire.status, reason: r.fire.reason, run_id: r.fire.runId, run_status: r.runStatus ?? null })
  }
  return out
}

export async function listSchedules(
  ctx: AppContext,
  query: { job_id?: string | undefined; enabled?: 'true' | 'false' | undefined },
  page: { limit: number; cursor?: string | undefined },
): Promise<Page<ScheduleListItem>> {
  const after = page.cursor ? decodeCursor(page.cursor, ScheduleCursor) : undefined
  const rows = await ctx.db
    .select({ schedule, jobName: job.name })
    .from(schedule)
    .leftJoin(job, eq(job.id, schedule.jobId))
    .where(
      and(
        isNull(schedule.deletedAt),
        query.job_id ? eq(schedule.jobId, query.job_id) : undefined,
        query.enabled ? eq(schedule.enabled, query.enabled === 'true') : undefined,
        after ? or(sql`lower(${schedule.name}) > ${after[0]}`, and(sql`lower(${schedule.name}) = ${after[0]}`, sql`${schedule.id} > ${after[1]}`)) : undefined,
      ),
    )
    .orderBy(sql`lower(${schedule.name})`, schedule.id)
    .limit(page.limit + 1)
  const fires = await lastFires(
    ctx.db,
    rows.slice(0, page.limit).map((r) => r.schedule.id),
  )
  return pageOf(
    rows,
    page.limit,
    (r) => ({ ...scheduleDto(r.schedule, r.jobName), last_fire: fires.get(r.schedule.id) ?? null }),
    (r) => [r.schedule.name.toLowerCase(), r.schedule.id],
  )
}

export function fireDto(row: ScheduleFireRow) {
  return {
    id: row.id,
    schedule_id: row.scheduleId,
    fire_at: row.fireAt.toISOString(),
    status: row.status,
    reason: row.reason,
    run_id: row.runId,
    attempt: row.attempt,
    decided_at: row.decidedAt.toISOString(),
    decided_by: row.decidedBy,
    lag_ms: row.lagMs,
    detail: row.detail ?? null,
  }
}

const FireCursor = z.tuple([z.iso.datetime(), z.uuid()])

/** A schedule's fires, newest occurrence first. Readable after the schedule is deleted: that is its history. */
export async function listFires(
  ctx: AppContext,
  id: string,
  query: { status?: ScheduleFireRow['status'] | undefined },
  page: { limit: number; cursor?: string | undefined },
): Promise<Page<ReturnType<typeof fireDto>>> {
  if (!isUuid(id)) throw new NotFoundError('schedule', id)
  const [exists] = await ctx.db.select({ id: schedule.id }).from(schedule).where(eq(schedule.id, id))
  if (!exists) throw new NotFoundError('schedule', id)
  const before = page.cursor ? decodeCursor(page.cursor, FireCursor) : undefined
  const rows = await ctx.db
    .select()
    .from(scheduleFire)
    .where(
      and(
        eq(scheduleFire.scheduleId, id),
        query.status ? eq(scheduleFire.status, query.status) : undefined,
        before ? sql`(${scheduleFire.fireAt}, ${scheduleFire.id}) < (${before[0]}::timestamptz, ${before[1]}::uuid)` : undefined,
      ),
    )
    .orderBy(desc(scheduleFire.fireAt), desc(scheduleFire.id))
    .limit(page.limit + 1)
  return pageOf(rows, page.limit, fireDto, (r) => [r.fireAt.toISOString(), r.id])
}

export interface Preview {
  timezone: string
  fires: PreviewFire[]
}

export async function previewSchedule(ctx: AppContext, id: string, opts: { count: number; from?: Date | undefined }): Promise<Preview> {
  const row = await getScheduleRow(ctx.db, id)
  return { timezone: row.timezone, fires: previewFires(specOf(row), opts.from ?? ctx.clock(), opts.count) }
}

/** Preview of an unsaved expression; a bad zone is reported under the query parameter it came in (`tz` or `timezone`). */
export function previewExpression(ctx: AppContext, opts: { cron: string; tz: string; zoneParam: 'tz' | 'timezone'; count: number; from?: Date | undefined }): Preview {
  const problems = validateCron(opts.cron, opts.tz).map((p) => (p.path === 'timezone' ? { ...p, path: opts.zoneParam } : p))
  if (problems.length) throw new ValidationError(`invalid query parameters: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems)
  const timezone = canonicalZone(opts.tz)!
  return { timezone, fires: previewFires({ cron: opts.cron, timezone }, opts.from ?? ctx.clock(), opts.count) }
}
