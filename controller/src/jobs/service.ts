import { and, desc, eq, inArray, isNull, lt, or, sql } from 'drizzle-orm'
import { z } from 'zod'
import { actorOf, type Principal } from '../auth/principal.ts'
import type { AppContext } from '../context.ts'
import { isUniqueViolation, isUuid, type Db } from '../db/client.ts'
import { containsText } from '../db/text-search.ts'
import { AppError, NotFoundError, ValidationError } from '../errors.ts'
import { decodeCursor, pageOf, type Page } from '../http/pagination.ts'
import { parseJobDefinition, type JobDefinition, type ParameterType, type StepDef } from './definition.ts'
import { run, type RunStatus } from '../runs/runs.sql.ts'
import { importOrder, removeDependencies, saveDependencies } from './dependencies.ts'
import { job, jobVersion, type JobRow, type JobVersionRow } from './jobs.sql.ts'

/** A step as the API shows it: the common fields and the type's own fields (command, url…) side by side, as it is written. */
export type FlatStep = Omit<StepDef, 'with'> & { [field: string]: unknown }

export function flatStep(step: StepDef): FlatStep {
  const { with: own, ...common } = step
  return { ...common, ...own }
}

/** The normalised definition, as exported and as GET shows it (without server fields). */
export type ExportedDefinition = Omit<JobDefinition, 'steps'> & { steps: FlatStep[] }

export function exportDefinition(definition: JobDefinition): ExportedDefinition {
  return { ...definition, steps: definition.steps.map(flatStep) }
}

export type JobDto = ExportedDefinition & {
  id: string
  version: number
  latest_version: number
  enabled: boolean
  created_at: string
  updated_at: string
  created_by: string | null
  updated_by: string | null
}

export function jobDto(row: JobRow, version: JobVersionRow): JobDto {
  return {
    id: row.id,
    version: version.version,
    latest_version: row.currentVersion,
    ...exportDefinition(version.definition),
    name: version.definition.name,
    enabled: row.enabled,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    created_by: row.createdBy,
    updated_by: row.updatedBy,
  }
}

const byWhom = (principal: Principal | undefined) => actorOf(principal).name

async function insertVersion(db: Db, jobId: string, version: number, definition: JobDefinition, by: string | null): Promise<JobVersionRow> {
  const [row] = await db.insert(jobVersion).values({ jobId, version, definition, createdBy: by }).returning()
  return row!
}

function nameTaken(name: string): AppError {
  return new AppError('CONFLICT', `a job named "${name}" already exists`, [{ path: 'name', message: 'already used by another job' }])
}

export async function createJob(ctx: AppContext, principal: Principal | undefined, input: unknown): Promise<JobDto> {
  const definition = parseJobDefinition(input)
  const by = byWhom(principal)
  try {
    return await ctx.db.transaction(async (tx) => {
      const [row] = await tx
        .insert(job)
        .values({ name: definition.name, currentVersion: 1, enabled: definition.enabled, tags: definition.tags, createdBy: by, updatedBy: by })
        .returning()
      const stored = await saveDependencies(tx as unknown as Db, row!.id, definition)
      const version = await insertVersion(tx as unknown as Db, row!.id, 1, stored, by)
      return jobDto(row!, version)
    })
  } catch (err) {
    if (isUniqueViolation(err)) throw nameTaken(definition.name)
    throw err
  }
}

export async function getJobRow(db: Db, id: string, opts: { forUpdate?: boolean } = {}): Promise<JobRow> {
  if (!isUuid(id)) throw new NotFoundError('job', id)
  const query = db
    .select()
    .from(job)
    .where(and(eq(job.id, id), isNull(job.deletedAt)))
  // `no key update`: rows that reference the job (dependency edges, fires, schedules) take key-share
  // locks on it; a full `update` lock would deadlock two saves that each add an edge to the other.
  const [row] = opts.forUpdate ? await query.for('no key update') : await query
  if (!row) throw new NotFoundError('job', id)
  return row
}

export async function getJobVersion(db: Db, jobId: string, version: number): Promise<JobVersionRow> {
  const [row] = await db
    .select()
    .from(jobVersion)
    .where(and(eq(jobVersion.jobId, jobId), eq(jobVersion.version, version)))
  if (!row) throw new NotFoundError('job version', `${jobId} v${version}`)
  return row
}

export async function getJob(ctx: AppContext, id: string, version?: number): Promise<JobDto> {
  const row = await getJobRow(ctx.db, id)
  return jobDto(row, await getJobVersion(ctx.db, id, version ?? row.currentVersion))
}

/** Saves a new version (PUT: the whole definition). */
export async function updateJob(ctx: AppContext, principal: Principal | undefined, id: string, input: unknown): Promise<{ before: JobDto; after: JobDto }> {
  const definition = parseJobDefinition(input)
  const by = byWhom(principal)
  try {
    return await ctx.db.transaction(async (tx) => {
      const db = tx as unknown as Db
      const row = await getJobRow(db, id, { forUpdate: true })
      const before = jobDto(row, await getJobVersion(db, id, row.currentVersion))
      const next = row.currentVersion + 1
      const version = await insertVersion(db, id, next, await saveDependencies(db, id, definition), by)
      const [updated] = await db
        .update(job)
        .set({ name: definition.name, currentVersion: next, enabled: definition.enabled, tags: definition.tags, updatedAt: ctx.clock(), updatedBy: by })
        .where(eq(job.id, id))
        .returning()
      return { before, after: jobDto(updated!, version) }
    })
  } catch (err) {
    if (isUniqueViolation(err)) throw nameTaken(definition.name)
    throw err
  }
}

/** Deleting hides the job and frees its name; its versions stay for the runs that pinned them. */
export async function removeJob(ctx: AppContext, id: string): Promise<JobDto> {
  const row = await getJobRow(ctx.db, id)
  const dto = jobDto(row, await getJobVersion(ctx.db, id, row.currentVersion))
  await ctx.db.transaction(async (tx) => {
    await tx.update(job).set({ deletedAt: ctx.clock() }).where(eq(job.id, id))
    await removeDependencies(tx as unknown as Db, id)
  })
  return dto
}

export const ListJobsQuery = z.object({
  q: z.string().max(200).optional(),
  tag: z.string().max(64).optional(),
  enabled: z.enum(['true', 'false']).optional(),
})

const JobCursor = z.tuple([z.string(), z.uuid()])

/** A job as the list shows it; `last_run` is its newest run (null before the first). */
export interface JobListItem {
  id: string
  name: string
  description: string | null
  version: number
  enabled: boolean
  tags: string[]
  step_count: number
  step_types: string[]
  parameters: { name: string; type: ParameterType; required: boolean }[]
  targets: string | null
  updated_at: string
  updated_by: string | null
  last_run: { id: string; status: RunStatus; created_at: string; finished_at: string | null } | null
}

/** The live jobs the list's filters select (the list and the export share them). */
function listFilters(query: z.infer<typeof ListJobsQuery>) {
  return [
    isNull(job.deletedAt),
    query.q ? containsText(query.q, job.name) : undefined,
    query.tag ? sql`${job.tags} @> ${JSON.stringify([query.tag])}::jsonb` : undefined,
    query.enabled ? eq(job.enabled, query.enabled === 'true') : undefined,
  ]
}

export async function listJobs(ctx: AppContext, query: z.infer<typeof ListJobsQuery>, page: { limit: number; cursor?: string | undefined }): Promise<Page<JobListItem>> {
  const after = page.cursor ? decodeCursor(page.cursor, JobCursor) : undefined
  const rows = await ctx.db
    .select({ job, definition: jobVersion.definition })
    .from(job)
    .innerJoin(jobVersion, and(eq(jobVersion.jobId, job.id), eq(jobVersion.version, job.currentVersion)))
    .where(
      and(
        ...listFilters(query),
        after ? or(sql`lower(${job.name}) > ${after[0]}`, and(sql`lower(${job.name}) = ${after[0]}`, sql`${job.id} > ${after[1]}`)) : undefined,
      ),
    )
    .orderBy(sql`lower(${job.name})`, job.id)
    .limit(page.limit + 1)
  const lastRuns = await lastRunOf(ctx.db, rows.slice(0, page.limit).map((r) => r.job.id))
  return pageOf(
    rows,
    page.limit,
    ({ job: j, definition }) => ({
      id: j.id,
      name: j.name,
      description: definition.description,
      version: j.currentVersion,
      enabled: j.enabled,
      tags: j.tags,
      step_count: definition.steps.length,
      step_types: [...new Set(definition.steps.map((s) => s.type))],
      parameters: definition.parameters.map((p) => ({ name: p.name, type: p.type, required: p.required })),
      targets: definition.targets,
      updated_at: j.updatedAt.toISOString(),
      updated_by: j.updatedBy,
      last_run: lastRuns.get(j.id) ?? null,
    }),
    ({ job: j }) => [j.name.toLowerCase(), j.id],
  )
}

/** The newest run of each job (one index probe per job on run_job_idx). */
async function lastRunOf(db: Db, jobIds: string[]): Promise<Map<string, NonNullable<JobListItem['last_run']>>> {
  if (jobIds.length === 0) return new Map()
  const rows = await db
    .selectDistinctOn([run.jobId], { jobId: run.jobId, id: run.id, status: run.status, createdAt: run.createdAt, finishedAt: run.finishedAt })
    .from(run)
    .where(inArray(run.jobId, jobIds))
    .orderBy(run.jobId, desc(run.createdAt), desc(run.id))
  return new Map(rows.map((r) => [r.jobId, { id: r.id, status: r.status, created_at: r.createdAt.toISOString(), finished_at: r.finishedAt?.toISOString() ?? null }]))
}

export interface JobVersionItem {
  version: number
  name: string
  step_count: number
  created_at: string
  created_by: string | null
}

export async function listVersions(ctx: AppContext, id: string, page: { limit: number; cursor?: string | undefined }): Promise<Page<JobVersionItem>> {
  await getJobRow(ctx.db, id)
  const before = page.cursor ? decodeCursor(page.cursor, z.number().int()) : undefined
  const rows = await ctx.db
    .select({ version: jobVersion.version, createdAt: jobVersion.createdAt, createdBy: jobVersion.createdBy, definition: jobVersion.definition })
    .from(jobVersion)
    .where(and(eq(jobVersion.jobId, id), before !== undefined ? lt(jobVersion.version, before) : undefined))
    .orderBy(desc(jobVersion.version))
    .limit(page.limit + 1)
  return pageOf(
    rows,
    page.limit,
    (r) => ({ version: r.version, name: r.definition.name, step_count: r.definition.steps.length, created_at: r.createdAt.toISOString(), created_by: r.createdBy }),
    (r) => r.version,
  )
}

/** Every live job's current definition (name order; the list's filters apply), in the shape POST /jobs/import takes back. */
export async function exportJobs(ctx: AppContext, query: z.infer<typeof ListJobsQuery>): Promise<{ jobs: ExportedDefinition[] }> {
  const rows = await ctx.db
    .select({ definition: jobVersion.definition })
    .from(job)
    .innerJoin(jobVersion, and(eq(jobVersion.jobId, job.id), eq(jobVersion.version, job.currentVersion)))
    .where(
      and(...listFilters(query)),
    )
    .orderBy(sql`lower(${job.name})`, job.id)
  return { jobs: rows.map((r) => exportDefinition(r.definition)) }
}

/** Import: each definition creates a job, or a new version of the job with that name. */
export async function importJobs(ctx: AppContext, principal: Principal | undefined, body: unknown): Promise<{ items: { name: string; id: string; version: number; created: boolean }[] }> {
  const list = Array.isArray(body) ? body : body && typeof body === 'object' && Array.isArray((body as { jobs?: unknown }).jobs) ? (body as { jobs: unknown[] }).jobs : [body]
  if (list.length === 0 || list.length > 500) throw new ValidationError('import between 1 and 500 job definitions')
  // Validate everything first: an import with one bad definition changes nothing.
  const problems: { path: string; message: string }[] = []
  list.forEach((item, i) => {
    try {
      parseJobDefinition(item)
    } catch (err) {
      const details = (err as ValidationError).details as { path: string; message: string }[] | undefined
      for (const d of details ?? [{ path: '', message: (err as Error).message }]) problems.push({ path: `jobs[${i}]${d.path ? `.${d.path}` : ''}`, message: d.message })
    }
  })
  if (problems.length) throw new ValidationError(`invalid import: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems)
  const items: { name: string; id: string; version: number; created: boolean }[] = []
  const definitions = list.map((item) => parseJobDefinition(item))
  // Upstream jobs of the import first, so the jobs they trigger can name them.
  for (const i of importOrder(definitions)) {
    const item = list[i]
    const definition = definitions[i]!
    const [existing] = await ctx.db
      .select({ id: job.id })
      .from(job)
      .where(and(sql`lower(${job.name}) = lower(${definition.name})`, isNull(job.deletedAt)))
    const saved = existing ? (await updateJob(ctx, principal, existing.id, item)).after : await createJob(ctx, principal, item)
    items[i] = { name: saved.name, id: saved.id, version: saved.version, created: !existing }
  }
  return { items }
}
