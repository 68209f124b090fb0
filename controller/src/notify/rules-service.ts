import { randomUUID } from 'node:crypto'
import { and, asc, eq, isNull, sql } from 'drizzle-orm'
import { z } from 'zod'
import { actorOf, type Principal } from '../auth/principal.ts'
import type { AppContext } from '../context.ts'
import { isUniqueViolation, isUuid, uuidArray, type Db } from '../db/client.ts'
import { AppError, NotFoundError, ValidationError } from '../errors.ts'
import { parseWith } from '../http/validate.ts'
import { getRunRow } from '../runs/service.ts'
import { parseSelector } from '../selectors/parse.ts'
import { appUser } from '../users/users.sql.ts'
import { driverFor } from './channels/index.ts'
import { messageOf } from './dispatch.ts'
import { notificationChannel, notificationRule, CHANNEL_TYPES, type NotificationRuleRow } from './notify.sql.ts'
import { previewFields } from './run-events.ts'
import { templateProblems } from './templates.ts'

/*
 * Notification rules: which events, under which conditions, reach which channels and users, with
 * which template. Everything a rule names is checked when it is saved (a 400 naming the field).
 */

type Problem = { path: string; message: string }

export const NOTIFY_EVENTS = ['run.succeeded', 'run.failed', 'run.finished', 'run.timed_out', 'step.failed', 'schedule.missed', 'agent.offline', 'agent.online', 'security.*', 'security.login_lockout', 'security.refresh_token_reuse', 'security.forged_assignment'] as const

const Uuids = z.array(z.uuid()).max(100)
const RuleInput = z
  .object({
    name: z.string().trim().min(1).max(200),
    enabled: z.boolean().default(true),
    /** Critical messages reach users during their quiet hours and are never held for a digest. */
    critical: z.boolean().default(false),
    events: z.array(z.enum(NOTIFY_EVENTS)).min(1).max(NOTIFY_EVENTS.length),
    conditions: z
      .object({
        job_ids: Uuids.optional(),
        job_tags: z.array(z.string().trim().min(1).max(64)).max(50).optional(),
        target_selector: z.string().trim().min(1).max(4096).optional(),
        schedule_ids: Uuids.optional(),
        min_duration_sec: z.number().int().min(0).max(30 * 86400).optional(),
        only_on_change: z.boolean().optional(),
      })
      .strict()
      .default({}),
    channel_ids: Uuids.default([]),
    user_ids: Uuids.default([]),
    template: z
      .object({ subject: z.string().max(1000).optional(), body: z.string().max(20_000).optional() })
      .strict()
      .nullable()
      .default(null),
    escalation: z
      .object({ after_sec: z.number().int().min(60).max(7 * 86400), channel_ids: Uuids.default([]), user_ids: Uuids.default([]) })
      .strict()
      .nullable()
      .default(null),
  })
  .strict()
type RuleInput = z.output<typeof RuleInput>

const READ_ONLY = ['id', 'created_at', 'updated_at', 'created_by', 'updated_by']

export function ruleDto(r: NotificationRuleRow) {
  return {
    id: r.id,
    name: r.name,
    enabled: r.enabled,
    critical: r.critical,
    events: r.events,
    conditions: r.conditions,
    channel_ids: r.channelIds,
    user_ids: r.userIds,
    template: r.template,
    escalation: r.escalation,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
    created_by: r.createdBy,
    updated_by: r.updatedBy,
  }
}
export type RuleDto = ReturnType<typeof ruleDto>

async function missing(db: Db, table: 'channel' | 'user', ids: string[]): Promise<Set<string>> {
  if (!ids.length) return new Set()
  const found =
    table === 'channel'
      ? await db.select({ id: notificationChannel.id }).from(notificationChannel).where(sql`${notificationChannel.id} = any(${uuidArray(ids)}) and ${notificationChannel.deletedAt} is null`)
      : await db.select({ id: appUser.id }).from(appUser).where(sql`${appUser.id} = any(${uuidArray(ids)})`)
  const have = new Set(found.map((f) => f.id))
  return new Set(ids.filter((id) => !have.has(id.toLowerCase())))
}

async function checkRule(db: Db, input: RuleInput) {
  const problems: Problem[] = []
  const refs = async (path: string, table: 'channel' | 'user', ids: string[]) => {
    const gone = await missing(db, table, ids)
    ids.forEach((id, i) => gone.has(id) && problems.push({ path: `${path}[${i}]`, message: `no ${table === 'channel' ? 'notification channel' : 'user'} ${id}` }))
  }
  await refs('channel_ids', 'channel', input.channel_ids)
  await refs('user_ids', 'user', input.user_ids)
  if (!input.channel_ids.length && !input.user_ids.length) problems.push({ path: 'channel_ids', message: 'give channel_ids or user_ids: a rule must reach someone' })
  if (input.escalation) {
    await refs('escalation.channel_ids', 'channel', input.escalation.channel_ids)
    await refs('escalation.user_ids', 'user', input.escalation.user_ids)
    if (!input.escalation.channel_ids.length && !input.escalation.user_ids.length) problems.push({ path: 'escalation.channel_ids', message: 'give channel_ids or user_ids to escalate to' })
    if (!input.events.some((e) => e === 'run.failed' || e === 'run.timed_out')) problems.push({ path: 'escalation', message: 'escalation follows failures: add run.failed or run.timed_out to events' })
  }
  if (input.conditions.target_selector) {
    try {
      parseSelector(input.conditions.target_selector)
    } catch (err) {
      problems.push({ path: 'conditions.target_selector', message: (err as Error).message.replace(/^selector: /, '') })
    }
  }
  for (const field of ['subject', 'body'] as const) {
    const source = input.template?.[field]
    if (source !== undefined) for (const message of templateProblems(source)) problems.push({ path: `template.${field}`, message })
  }
  if (problems.length) throw new ValidationError(`invalid notification rule: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems)
  return {
    name: input.name,
    enabled: input.enabled,
    critical: input.critical,
    events: input.events,
    conditions: input.conditions,
    channelIds: input.channel_ids.map((id) => id.toLowerCase()),
    userIds: input.user_ids.map((id) => id.toLowerCase()),
    template: input.template,
    escalation: input.escalation,
  }
}

function parseRule(body: unknown): RuleInput {
  const copy = body && typeof body === 'object' && !Array.isArray(body) ? { ...(body as Record<string, unknown>) } : body
  if (copy && typeof copy === 'object') for (const key of READ_ONLY) delete (copy as Record<string, unknown>)[key]
  return parseWith(RuleInput, copy)
}

async function withNameCheck<T>(name: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (err) {
    if (isUniqueViolation(err)) throw new AppError('CONFLICT', `a notification rule named "${name}" already exists`, [{ path: 'name', message: 'already used by another rule' }])
    throw err
  }
}

async function getRuleRow(db: Db, id: string): Promise<NotificationRuleRow> {
  if (!isUuid(id)) throw new NotFoundError('notification rule', id)
  const [row] = await db
    .select()
    .from(notificationRule)
    .where(and(eq(notificationRule.id, id), isNull(notificationRule.deletedAt)))
  if (!row) throw new NotFoundError('notification rule', id)
  return row
}

export async function listRules(ctx: AppContext): Promise<{ items: RuleDto[] }> {
  const rows = await ctx.db.select().from(notificationRule).where(isNull(notificationRule.deletedAt)).orderBy(asc(sql`lower(${notificationRule.name})`))
  return { items: rows.map(ruleDto) }
}

export const getRule = async (ctx: AppContext, id: string) => ruleDto(await getRuleRow(ctx.db, id))

export async function createRule(ctx: AppContext, principal: Principal | undefined, body: unknown): Promise<RuleDto> {
  const values = await checkRule(ctx.db, parseRule(body))
  const by = actorOf(principal).name
  const now = ctx.clock()
  const [row] = await withNameCheck(values.name, () =>
    ctx.db
      .insert(notificationRule)
      .values({ id: randomUUID(), ...values, createdAt: now, updatedAt: now, createdBy: by, updatedBy: by })
      .returning(),
  )
  return ruleDto(row!)
}

/** PUT replaces the rule with the fields sent merged over the stored ones, checked as a create is. */
export async function updateRule(ctx: AppContext, principal: Principal | undefined, id: string, body: unknown): Promise<{ before: RuleDto; after: RuleDto }> {
  const before = ruleDto(await getRuleRow(ctx.db, id))
  const patch = body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {}
  const values = await checkRule(ctx.db, parseRule({ ...before, ...patch }))
  const [row] = await withNameCheck(values.name, () =>
    ctx.db
      .update(notificationRule)
      .set({ ...values, updatedAt: ctx.clock(), updatedBy: actorOf(principal).name })
      .where(and(eq(notificationRule.id, id), isNull(notificationRule.deletedAt)))
      .returning(),
  )
  if (!row) throw new NotFoundError('notification rule', id)
  return { before, after: ruleDto(row) }
}

export async function removeRule(ctx: AppContext, id: string): Promise<RuleDto> {
  const row = await getRuleRow(ctx.db, id)
  await ctx.db.update(notificationRule).set({ deletedAt: ctx.clock() }).where(eq(notificationRule.id, row.id))
  return ruleDto(row)
}

export const PreviewInput = z
  .object({
    run_id: z.uuid(),
    event: z.enum(['run.succeeded', 'run.failed', 'run.finished', 'run.timed_out']).optional(),
    template: z.object({ subject: z.string().max(1000).optional(), body: z.string().max(20_000).optional() }).strict().nullable().default(null),
  })
  .strict()

/** A template rendered for a real run, as each channel type would send it. */
export async function previewRule(ctx: AppContext, input: z.output<typeof PreviewInput>) {
  const problems = (['subject', 'body'] as const).flatMap((f) => (input.template?.[f] !== undefined ? templateProblems(input.template[f]!).map((message) => ({ path: `template.${f}`, message })) : []))
  if (problems.length) throw new ValidationError(`invalid template: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems)
  const r = await getRunRow(ctx, input.run_id)
  const fields = await previewFields(ctx, r, input.event)
  const message = messageOf({ template: input.template }, fields)
  const probe = { id: '00000000-0000-0000-0000-000000000000', name: 'preview', config: {}, rateLimitPerMinute: 60 } as unknown as Parameters<NonNullable<ReturnType<typeof driverFor>>['render']>[0]
  const channels = Object.fromEntries(CHANNEL_TYPES.map((type) => [type, driverFor(type)?.render({ ...probe, type }, message).payload ?? null]))
  return { subject: message.subject, text: message.text, channels }
}
