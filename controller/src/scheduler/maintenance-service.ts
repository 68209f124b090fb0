import { randomUUID } from 'node:crypto'
import { and, asc, eq, isNull, sql } from 'drizzle-orm'
import { z } from 'zod'
import { actorOf, type Principal } from '../auth/principal.ts'
import type { AppContext } from '../context.ts'
import { isUniqueViolation, isUuid, uuidArray, type Db } from '../db/client.ts'
import { AppError, NotFoundError, ValidationError } from '../errors.ts'
import { parseWith } from '../http/validate.ts'
import { parseSelector } from '../selectors/parse.ts'
import { targetGroup } from '../targets/targets.sql.ts'
import { canonicalZone, validateCron } from './cron.ts'
import { activeWindowAt, activeWindows, openingsBetween } from './maintenance.ts'
import { maintenanceWindow, type MaintenanceWindowRow } from './maintenance.sql.ts'

/*
 * Maintenance windows: the API's input rules and the CRUD verbs. A PUT merges the fields sent into
 * the stored window and checks the result with the create rules, so both always agree.
 */

type Problem = { path: string; message: string }

const Instant = z.iso.datetime({ offset: true, message: 'an ISO-8601 date-time with a zone, e.g. 2026-03-08T07:00:00Z' }).transform((s) => new Date(s))
const HhMm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a time HH:MM (00:00–23:59)')
const Range = z
  .object({
    days: z.array(z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])).min(1).max(7),
    start: HhMm,
    end: HhMm,
  })
  .strict()
const Scope = z
  .object({
    target_ids: z.array(z.uuid()).max(1000).optional(),
    groups: z.array(z.uuid()).max(100).optional(),
    selector: z.string().trim().min(1).max(4096).optional(),
  })
  .strict()
  .refine((s) => Boolean(s.target_ids?.length || s.groups?.length || s.selector), 'give target_ids, groups or selector (or "all")')

export const MaintenanceWindowInput = z
  .object({
    name: z.string().trim().min(1).max(200),
    description: z.string().trim().max(2000).nullable().default(null),
    enabled: z.boolean().default(true),
    timezone: z.string().trim().min(1).max(64).default('UTC'),
    kind: z.enum(['one_off', 'cron', 'weekly']),
    starts_at: Instant.nullable().default(null),
    ends_at: Instant.nullable().default(null),
    cron: z.string().trim().min(1).max(200).nullable().default(null),
    duration_sec: z.number().int().min(60).max(31 * 86_400).nullable().default(null),
    ranges: z.array(Range).min(1).max(50).nullable().default(null),
    applies_to: z.union([z.literal('all'), Scope]),
    action: z.enum(['skip', 'defer']).default('skip'),
  })
  .strict()
export type MaintenanceWindowInput = z.output<typeof MaintenanceWindowInput>

/** Fields a GET returns that are not settable: a GET body may be PUT back. */
const READ_ONLY = ['id', 'created_at', 'updated_at', 'created_by', 'updated_by', 'active']

export interface MaintenanceWindowDto {
  id: string
  name: string
  description: string | null
  enabled: boolean
  timezone: string
  kind: MaintenanceWindowRow['kind']
  starts_at: string | null
  ends_at: string | null
  cron: string | null
  duration_sec: number | null
  ranges: MaintenanceWindowRow['ranges']
  applies_to: MaintenanceWindowRow['appliesTo']
  action: MaintenanceWindowRow['action']
  /** The opening containing the time asked about (now, or `at` on /active), if any. */
  active: { start: string; end: string } | null
  created_at: string
  updated_at: string
  created_by: string | null
  updated_by: string | null
}

function windowDto(r: MaintenanceWindowRow, at: Date): MaintenanceWindowDto {
  const open = r.enabled && !r.deletedAt ? activeWindowAt(r, at) : null
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    enabled: r.enabled,
    timezone: r.timezone,
    kind: r.kind,
    starts_at: r.startsAt?.toISOString() ?? null,
    ends_at: r.endsAt?.toISOString() ?? null,
    cron: r.cron,
    duration_sec: r.durationSec,
    ranges: r.ranges,
    applies_to: r.appliesTo,
    action: r.action,
    active: open ? { start: open.start.toISOString(), end: open.end.toISOString() } : null,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
    created_by: r.createdBy,
    updated_by: r.updatedBy,
  }
}

/** The checks that need two fields or the database; returns the row values. Throws a 400 naming every field at fault. */
async function checkWindow(db: Db, input: MaintenanceWindowInput) {
  const problems: Problem[] = []
  const timezone = canonicalZone(input.timezone)
  if (!timezone) problems.push({ path: 'timezone', message: `"${input.timezone}" is not an IANA time zone (e.g. UTC, Europe/Berlin)` })
  const need = (field: keyof MaintenanceWindowInput) => input[field] === null && problems.push({ path: field, message: `required for kind ${input.kind}` })
  const forbid = (field: keyof MaintenanceWindowInput) => input[field] !== null && problems.push({ path: field, message: `not used by kind ${input.kind}` })
  if (input.kind === 'one_off') {
    need('starts_at')
    need('ends_at')
    for (const f of ['cron', 'duration_sec', 'ranges'] as const) forbid(f)
    if (input.starts_at && input.ends_at && input.ends_at <= input.starts_at) problems.push({ path: 'ends_at', message: 'must be after starts_at' })
  } else if (input.kind === 'cron') {
    need('cron')
    need('duration_sec')
    for (const f of ['starts_at', 'ends_at', 'ranges'] as const) forbid(f)
    if (input.cron && timezone) problems.push(...validateCron(input.cron, timezone))
  } else {
    need('ranges')
    for (const f of ['starts_at', 'ends_at', 'cron', 'duration_sec'] as const) forbid(f)
    input.ranges?.forEach((r, i) => r.start === r.end && problems.push({ path: `ranges[${i}].end`, message: 'must differ from start (an end before start ends the next day)' }))
  }
  const scope = input.applies_to
  if (scope !== 'all') {
    if (scope.selector) {
      try {
        parseSelector(scope.selector)
      } catch (err) {
        problems.push({ path: 'applies_to.selector', message: err instanceof ValidationError ? err.message.replace(/^selector: /, '') : 'not a target selector' })
      }
    }
    if (scope.groups?.length) {
      const found = new Set((await db.select({ id: targetGroup.id }).from(targetGroup).where(sql`${targetGroup.id} = any(${uuidArray(scope.groups)})`)).map((g) => g.id))
      scope.groups.forEach((g, i) => !found.has(g.toLowerCase()) && problems.push({ path: `applies_to.groups[${i}]`, message: `no target group ${g}` }))
    }
  }
  if (problems.length) throw new ValidationError(`invalid maintenance window: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems)
  return {
    name: input.name,
    description: input.description || null,
    enabled: input.enabled,
    timezone: timezone!,
    kind: input.kind,
    startsAt: input.starts_at,
    endsAt: input.ends_at,
    cron: input.cron,
    durationSec: input.duration_sec,
    ranges: input.ranges,
    appliesTo: input.applies_to,
    action: input.action,
  }
}

function withoutReadOnly(body: unknown): unknown {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return body
  const copy = { ...(body as Record<string, unknown>) }
  for (const key of READ_ONLY) delete copy[key]
  return copy
}

const parseWindowInput = (body: unknown) => parseWith(MaintenanceWindowInput, withoutReadOnly(body))

async function withNameCheck<T>(name: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (err) {
    if (isUniqueViolation(err)) throw new AppError('CONFLICT', `a maintenance window named "${name}" already exists`, [{ path: 'name', message: 'already used by another maintenance window' }])
    throw err
  }
}

async function getWindowRow(db: Db, id: string, forUpdate = false): Promise<MaintenanceWindowRow> {
  if (!isUuid(id)) throw new NotFoundError('maintenance window', id)
  const q = db
    .select()
    .from(maintenanceWindow)
    .where(and(eq(maintenanceWindow.id, id), isNull(maintenanceWindow.deletedAt)))
  const [row] = forUpdate ? await q.for('update') : await q
  if (!row) throw new NotFoundError('maintenance window', id)
  return row
}

export async function createWindow(ctx: AppContext, principal: Principal | undefined, body: unknown): Promise<MaintenanceWindowDto> {
  const values = await checkWindow(ctx.db, parseWindowInput(body))
  const by = actorOf(principal).name
  const now = ctx.clock()
  const [row] = await withNameCheck(values.name, () =>
    ctx.db
      .insert(maintenanceWindow)
      .values({ id: randomUUID(), ...values, createdAt: now, updatedAt: now, createdBy: by, updatedBy: by })
      .returning(),
  )
  return windowDto(row!, now)
}

export async function getWindow(ctx: AppContext, id: string): Promise<MaintenanceWindowDto> {
  return windowDto(await getWindowRow(ctx.db, id), ctx.clock())
}

/** PUT: the fields sent replace the stored ones (null clears), then the whole window is checked as on create. */
export async function updateWindow(ctx: AppContext, principal: Principal | undefined, id: string, body: unknown): Promise<{ before: MaintenanceWindowDto; after: MaintenanceWindowDto }> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ValidationError('send the changes as a JSON object')
  return ctx.db.transaction(async (t) => {
    const db = t as unknown as Db
    const now = ctx.clock()
    const row = await getWindowRow(db, id, true)
    const before = windowDto(row, now)
    const values = await checkWindow(db, parseWindowInput({ ...(withoutReadOnly(before) as object), ...(body as object) }))
    const [updated] = await withNameCheck(values.name, () =>
      db
        .update(maintenanceWindow)
        .set({ ...values, updatedAt: now, updatedBy: actorOf(principal).name })
        .where(eq(maintenanceWindow.id, id))
        .returning(),
    )
    return { before, after: windowDto(updated!, now) }
  })
}

export async function removeWindow(ctx: AppContext, id: string): Promise<MaintenanceWindowDto> {
  const row = await getWindowRow(ctx.db, id)
  const [removed] = await ctx.db.update(maintenanceWindow).set({ deletedAt: ctx.clock() }).where(eq(maintenanceWindow.id, row.id)).returning()
  return windowDto(removed!, ctx.clock())
}

export async function listWindows(ctx: AppContext): Promise<{ items: MaintenanceWindowDto[] }> {
  const rows = await ctx.db
    .select()
    .from(maintenanceWindow)
    .where(isNull(maintenanceWindow.deletedAt))
    .orderBy(asc(sql`lower(${maintenanceWindow.name})`))
  const now = ctx.clock()
  return { items: rows.map((r) => windowDto(r, now)) }
}

/** Enabled windows open at `at`, each with the opening that contains it. */
export async function listActiveWindows(ctx: AppContext, at: Date): Promise<{ at: string; items: MaintenanceWindowDto[] }> {
  const open = await activeWindows(ctx.db, at)
  return { at: at.toISOString(), items: open.map((o) => windowDto(o.window, at)).sort((a, b) => a.name.localeCompare(b.name)) }
}

/** The longest range one calendar request may ask about. */
export const MAX_CALENDAR_DAYS = 62

export interface CalendarOpening {
  window_id: string
  name: string
  kind: MaintenanceWindowRow['kind']
  action: MaintenanceWindowRow['action']
  enabled: boolean
  timezone: string
  start: string
  end: string
}

export interface MaintenanceCalendar {
  from: string
  to: string
  items: CalendarOpening[]
  /** Windows with more openings in the range than one answer lists (the first ones are given). */
  truncated: string[]
}

/** Every opening of every window (disabled ones too, flagged) overlapping [from, to), by start: what a calendar draws. */
export async function listOpenings(ctx: AppContext, from: Date, to: Date): Promise<MaintenanceCalendar> {
  const problems: Problem[] = []
  if (to.getTime() <= from.getTime()) problems.push({ path: 'to', message: 'must be after from' })
  else if (to.getTime() - from.getTime() > MAX_CALENDAR_DAYS * 86_400_000) problems.push({ path: 'to', message: `at most ${MAX_CALENDAR_DAYS} days after from` })
  if (problems.length) throw new ValidationError(`invalid query parameters: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems)
  const rows = await ctx.db
    .select()
    .from(maintenanceWindow)
    .where(isNull(maintenanceWindow.deletedAt))
    .orderBy(asc(sql`lower(${maintenanceWindow.name})`))
  const items: CalendarOpening[] = []
  const truncated: string[] = []
  for (const w of rows) {
    const { openings, truncated: more } = openingsBetween(w, from, to)
    if (more) truncated.push(w.id)
    for (const o of openings) {
      items.push({ window_id: w.id, name: w.name, kind: w.kind, action: w.action, enabled: w.enabled, timezone: w.timezone, start: o.start.toISOString(), end: o.end.toISOString() })
    }
  }
  items.sort((a, b) => a.start.localeCompare(b.start) || a.name.localeCompare(b.name))
  return { from: from.toISOString(), to: to.toISOString(), items, truncated }
}
