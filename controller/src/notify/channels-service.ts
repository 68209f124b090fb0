import { randomUUID } from 'node:crypto'
import { and, asc, eq, gt, isNull, sql } from 'drizzle-orm'
import { z } from 'zod'
import { actorOf, type Principal } from '../auth/principal.ts'
import type { AppContext } from '../context.ts'
import { openSecret, sealSecret } from '../crypto/secret-box.ts'
import { isUniqueViolation, isUuid, type Db } from '../db/client.ts'
import { containsText } from '../db/text-search.ts'
import { AppError, NotFoundError, ValidationError } from '../errors.ts'
import { HttpUrl } from '../executors/http-client.ts'
import { decodeCursor, pageOf, type Page } from '../http/pagination.ts'
import { issuePath, parseWith } from '../http/validate.ts'
import { CHANNEL_SPECS, channelDriver } from './channels/index.ts'
import { SECRET_HEADER_PREFIX, type SecretField } from './channels/spec.ts'
import type { ChannelSecret, Message } from './channels/types.ts'
import { CHANNEL_TYPES, notificationChannel, type ChannelType, type NotificationChannelRow } from './notify.sql.ts'

/*
 * Notification channels: where messages go. `config` is what admins see (recipients, method,
 * headers without secrets, body template); `secret` (webhook URL, HMAC key, basic-auth password,
 * secret headers) is sealed with the channel id as AAD, accepted on create/update and never shown:
 * responses name the secret fields that are set, audit notes the fields that changed.
 * Updates merge: config keys and secret fields that are not sent are kept, `null` removes one.
 */

type Problem = { path: string; message: string }

/** The record id is bound into the ciphertext: a `secret` copied to another row does not open there. */
export const channelAad = (id: string) => `notification-channel:${id}`

const HeaderName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/, 'not a valid HTTP header name')
const HeaderValue = z.string().min(1).max(8192).regex(/^[^\r\n\0]*$/, 'must not contain line breaks')

export const SecretInput = z
  .object({
    url: HttpUrl.nullable().optional(),
    hmac_secret: z.string().min(16, 'at least 16 characters').max(4096).nullable().optional(),
    password: z.string().min(1).max(1024).nullable().optional(),
    headers: z
      .record(HeaderName, HeaderValue.nullable())
      .refine((h) => Object.keys(h).length <= 50, 'at most 50 headers')
      .nullable()
      .optional(),
  })
  .strict()
export type SecretInput = z.infer<typeof SecretInput>

const Name = z.string().trim().min(1).max(200)
const RateLimit = z.number().int().min(1).max(6000)

export const CreateChannelInput = z
  .object({
    name: Name,
    type: z.enum(CHANNEL_TYPES),
    config: z.record(z.string(), z.unknown()).default({}),
    secret: SecretInput.optional(),
    rate_limit_per_minute: RateLimit.default(60),
  })
  .strict()

export const UpdateChannelInput = z
  .object({
    name: Name.optional(),
    type: z.enum(CHANNEL_TYPES).optional(),
    /** Merged into the stored config; a key set to null is removed. */
    config: z.record(z.string(), z.unknown()).optional(),
    secret: SecretInput.optional(),
    rate_limit_per_minute: RateLimit.optional(),
  })
  .strict()

/** Fields a GET returns that are not settable: a GET body may be PUT back. */
const READ_ONLY = ['id', 'has_secret', 'secret_fields', 'created_at', 'updated_at', 'created_by', 'updated_by']

export interface ChannelDto {
  id: string
  name: string
  type: ChannelType
  config: Record<string, unknown>
  rate_limit_per_minute: number
  has_secret: boolean
  /** Names of the secret fields that are set (`url`, `hmac_secret`, `password`, `headers.<Name>`); never values. */
  secret_fields: string[]
  created_at: string
  updated_at: string
  created_by: string | null
  updated_by: string | null
}

const displayField = (key: string) => (key.startsWith(SECRET_HEADER_PREFIX) ? `headers.${key.slice(SECRET_HEADER_PREFIX.length)}` : key)

function channelDto(row: NotificationChannelRow, secret: ChannelSecret): ChannelDto {
  const fields = Object.keys(secret).sort().map(displayField)
  return {
    id: row.id,
    name: row.name,
    type: row.type,
    config: row.config,
    rate_limit_per_minute: row.rateLimitPerMinute,
    has_secret: fields.length > 0,
    secret_fields: fields,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    created_by: row.createdBy,
    updated_by: row.updatedBy,
  }
}

/**
 * The channel's secret fields in clear (`url`, `hmac_secret`, `password`, `header:<Name>`), for a
 * delivery inside the controller. Never send the result over HTTP, log it or audit it.
 */
export function openChannelSecret(ctx: Pick<AppContext, 'keyring'>, row: NotificationChannelRow): ChannelSecret {
  if (!row.secret) return {}
  return JSON.parse(openSecret(ctx.keyring, row.secret, channelAad(row.id)).toString('utf8')) as ChannelSecret
}

/** For listings: a secret sealed with a master key that is gone must not make the whole list fail. */
function dtoOf(ctx: AppContext, row: NotificationChannelRow): ChannelDto {
  try {
    return channelDto(row, openChannelSecret(ctx, row))
  } catch (err) {
    ctx.log.warn({ err, channelId: row.id }, 'notify.channel_secret_unreadable')
    return { ...channelDto(row, {}), has_secret: row.secret !== null }
  }
}

export async function getChannelRow(db: Db, id: string, opts: { forUpdate?: boolean } = {}): Promise<NotificationChannelRow> {
  if (!isUuid(id)) throw new NotFoundError('notification channel', id)
  const q = db
    .select()
    .from(notificationChannel)
    .where(and(eq(notificationChannel.id, id), isNull(notificationChannel.deletedAt)))
  const [row] = opts.forUpdate ? await q.for('update') : await q
  if (!row) throw new NotFoundError('notification channel', id)
  return row
}

export async function getChannel(ctx: AppContext, id: string): Promise<ChannelDto> {
  return dtoOf(ctx, await getChannelRow(ctx.db, id))
}

export const ListChannelsQuery = z.object({
  type: z.enum(CHANNEL_TYPES).optional(),
  /** Case-insensitive substring of the name. */
  q: z.string().trim().min(1).max(100).optional(),
})

export async function listChannels(ctx: AppContext, query: z.infer<typeof ListChannelsQuery>, page: { limit: number; cursor?: string | undefined }): Promise<Page<ChannelDto>> {
  const after = page.cursor ? decodeCursor(page.cursor, z.object({ n: z.string() })).n : undefined
  const conditions = [
    isNull(notificationChannel.deletedAt),
    after !== undefined ? gt(sql`lower(${notificationChannel.name})`, after) : undefined,
    query.type ? eq(notificationChannel.type, query.type) : undefined,
    query.q ? containsText(query.q, notificationChannel.name) : undefined,
  ].filter((c) => c !== undefined)
  const rows = await ctx.db
    .select()
    .from(notificationChannel)
    .where(and(...conditions))
    .orderBy(asc(sql`lower(${notificationChannel.name})`))
    .limit(page.limit + 1)
  return pageOf(rows, page.limit, (r) => dtoOf(ctx, r), (r) => ({ n: r.name.toLowerCase() }))
}

export interface ChannelDirectoryEntry {
  id: string
  name: string
  type: ChannelType
}

/**
 * Every channel's id, name and type — nothing of its config — for whoever picks channels without
 * administering them: operators writing rules, every user choosing the channels they accept.
 */
export async function channelDirectory(ctx: AppContext): Promise<{ items: ChannelDirectoryEntry[] }> {
  const rows = await ctx.db
    .select({ id: notificationChannel.id, name: notificationChannel.name, type: notificationChannel.type })
    .from(notificationChannel)
    .where(isNull(notificationChannel.deletedAt))
    .orderBy(asc(sql`lower(${notificationChannel.name})`))
  return { items: rows }
}

/** Stored secret overlaid with the request: omitted keeps, null removes, `headers: null` removes every secret header. */
function mergeSecret(stored: ChannelSecret, patch: SecretInput | undefined): ChannelSecret {
  const out: ChannelSecret = { ...stored }
  if (!patch) return out
  for (const key of ['url', 'hmac_secret', 'password'] as const) {
    const value = patch[key]
    if (value === null) delete out[key]
    else if (value !== undefined) out[key] = value
  }
  if (patch.headers === null) {
    for (const key of Object.keys(out)) if (key.startsWith(SECRET_HEADER_PREFIX)) delete out[key]
  } else if (patch.headers) {
    for (const [name, value] of Object.entries(patch.headers)) {
      // Header names are case-insensitive: "x-api-key" replaces a stored "X-Api-Key".
      for (const key of Object.keys(out)) if (key.toLowerCase() === `${SECRET_HEADER_PREFIX}${name}`.toLowerCase()) delete out[key]
      if (value !== null) out[`${SECRET_HEADER_PREFIX}${name}`] = value
    }
  }
  return out
}

const fieldOf = (key: string): SecretField => (key.startsWith(SECRET_HEADER_PREFIX) ? 'headers' : (key as SecretField))

/** Per-type config and secret rules; throws one 400 naming every field at fault. */
function checkChannel(type: ChannelType, rawConfig: Record<string, unknown>, secret: ChannelSecret, sent: SecretInput | undefined): Record<string, unknown> {
  const spec = CHANNEL_SPECS[type]
  const problems: Problem[] = []
  const parsed = spec.config.safeParse(rawConfig)
  if (!parsed.success) problems.push(...parsed.error.issues.map((i) => ({ path: issuePath(['config', ...i.path]), message: i.message })))
  for (const field of Object.keys(sent ?? {}) as SecretField[]) {
    if (!spec.allowedSecrets.includes(field)) problems.push({ path: `secret.${field}`, message: `not used by ${type} channels${type === 'email' ? ' (the SMTP password is set in /notification/smtp/settings)' : ''}` })
  }
  const present = new Set(Object.keys(secret).map(fieldOf))
  for (const field of spec.requiredSecrets) if (!present.has(field)) problems.push({ path: `secret.${field}`, message: `required for ${type} channels` })
  if (parsed.success && spec.check) problems.push(...spec.check(parsed.data, Object.keys(secret)))
  if (problems.length) throw new ValidationError(`invalid notification channel: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems)
  return parsed.data!
}

function withoutReadOnly(body: unknown): unknown {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return body
  const copy = { ...(body as Record<string, unknown>) }
  for (const key of READ_ONLY) delete copy[key]
  return copy
}

const sealChannelSecret = (ctx: AppContext, id: string, secret: ChannelSecret) => (Object.keys(secret).length ? sealSecret(ctx.keyring, JSON.stringify(secret), channelAad(id)) : null)

async function withNameCheck<T>(name: string | undefined, work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (err) {
    if (isUniqueViolation(err)) throw new AppError('CONFLICT', `a notification channel named "${name}" already exists`, [{ path: 'name', message: 'already used by another channel' }], { cause: err })
    throw err
  }
}

/** What changed, by field name (for the audit note; never values). */
function changedFields(input: { name?: unknown; config?: Record<string, unknown> | undefined; secret?: SecretInput | undefined; rate_limit_per_minute?: unknown }): string[] {
  const secretFields = Object.entries(input.secret ?? {}).flatMap(([k, v]) => (k === 'headers' && v ? Object.keys(v).map((h) => `secret.headers.${h}`) : [`secret.${k}`]))
  return [
    ...(input.name !== undefined ? ['name'] : []),
    ...Object.keys(input.config ?? {}).map((k) => `config.${k}`),
    ...secretFields,
    ...(input.rate_limit_per_minute !== undefined ? ['rate_limit_per_minute'] : []),
  ]
}

export interface ChannelChange {
  channel: ChannelDto
  fields: string[]
}

export async function createChannel(ctx: AppContext, principal: Principal | undefined, body: unknown): Promise<ChannelChange> {
  const input = parseWith(CreateChannelInput, withoutReadOnly(body))
  const secret = mergeSecret({}, input.secret)
  const config = checkChannel(input.type, input.config, secret, input.secret)
  // Generated here, not by the database: the id is the ciphertext's AAD.
  const id = randomUUID()
  const by = actorOf(principal).name
  const now = ctx.clock()
  const [row] = await withNameCheck(input.name, () =>
    ctx.db
      .insert(notificationChannel)
      .values({ id, name: input.name, type: input.type, config, secret: sealChannelSecret(ctx, id, secret), rateLimitPerMinute: input.rate_limit_per_minute, createdAt: now, updatedAt: now, createdBy: by, updatedBy: by })
      .returning(),
  )
  return { channel: channelDto(row!, secret), fields: changedFields(input) }
}

export async function updateChannel(ctx: AppContext, principal: Principal | undefined, id: string, body: unknown): Promise<ChannelChange> {
  const input = parseWith(UpdateChannelInput, withoutReadOnly(body))
  return ctx.db.transaction(async (txRaw) => {
    const tx = txRaw as unknown as Db
    const row = await getChannelRow(tx, id, { forUpdate: true })
    if (input.type !== undefined && input.type !== row.type) {
      throw new ValidationError(`the type of a channel cannot change (it is ${row.type}); create a new channel instead`, [{ path: 'type', message: 'cannot change' }])
    }
    const merged: Record<string, unknown> = { ...row.config }
    for (const [key, value] of Object.entries(input.config ?? {})) {
      if (value === null) delete merged[key]
      else merged[key] = value
    }
    const secret = mergeSecret(openChannelSecret(ctx, row), input.secret)
    const config = checkChannel(row.type, merged, secret, input.secret)
    const [updated] = await withNameCheck(input.name, () =>
      tx
        .update(notificationChannel)
        .set({
          ...(input.name !== undefined ? { name: input.name } : {}),
          ...(input.rate_limit_per_minute !== undefined ? { rateLimitPerMinute: input.rate_limit_per_minute } : {}),
          config,
          ...(input.secret !== undefined ? { secret: sealChannelSecret(ctx, id, secret) } : {}),
          updatedAt: ctx.clock(),
          updatedBy: actorOf(principal).name,
        })
        .where(eq(notificationChannel.id, id))
        .returning(),
    )
    return { channel: channelDto(updated!, secret), fields: changedFields(input) }
  })
}

/**
 * Soft delete (notifications already sent keep naming the channel). The sealed secret is wiped at
 * once: a removed channel's webhook tokens should not linger in the database.
 */
export async function removeChannel(ctx: AppContext, principal: Principal | undefined, id: string): Promise<ChannelDto> {
  const row = await getChannelRow(ctx.db, id)
  const dto = dtoOf(ctx, row)
  const now = ctx.clock()
  await ctx.db
    .update(notificationChannel)
    .set({ deletedAt: now, updatedAt: now, updatedBy: actorOf(principal).name, secret: null })
    .where(and(eq(notificationChannel.id, id), isNull(notificationChannel.deletedAt)))
  return dto
}

export interface TestSendResult {
  ok: boolean
  http_status: number | null
  /** The receiver's answer (HTTP body or SMTP reply), truncated, secrets masked. */
  response: string | null
  error: string | null
  duration_ms: number
  /** Whether the outbox would give up (true) or retry (false) after this answer. */
  permanent: boolean
  retry_after_ms: number | null
}

const TEST_DEADLINE_MS = 90_000

/** Renders a test message for the channel and delivers it once, now, outside the outbox. */
export async function testChannel(ctx: AppContext, id: string, opts: { link?: string; signal?: AbortSignal } = {}): Promise<{ channel: ChannelDto; result: TestSendResult }> {
  const row = await getChannelRow(ctx.db, id)
  const driver = channelDriver(ctx, row.type)
  const { payload } = driver.render(row, testMessage(row, ctx.clock(), opts.link))
  const signal = AbortSignal.any([AbortSignal.timeout(TEST_DEADLINE_MS), ...(opts.signal ? [opts.signal] : [])])
  // A test send is its own delivery: a fresh id, so a receiver de-duplicating on it never drops a real message.
  const r = await driver.deliver(row, openChannelSecret(ctx, row), payload, signal, { id: randomUUID() })
  ctx.log.info({ channelId: row.id, type: row.type, ok: r.ok, httpStatus: r.httpStatus, durationMs: r.durationMs }, 'notify.channel_test')
  return {
    channel: dtoOf(ctx, row),
    result: {
      ok: r.ok,
      http_status: r.httpStatus ?? null,
      response: r.response ?? null,
      error: r.error ?? null,
      duration_ms: r.durationMs,
      permanent: r.permanent === true,
      retry_after_ms: r.retryAfterMs ?? null,
    },
  }
}

export function testMessage(row: Pick<NotificationChannelRow, 'id' | 'name' | 'type'>, now: Date, link?: string): Message {
  return {
    event: 'notification.test',
    severity: 'info',
    subject: `Test notification for channel "${row.name}"`,
    text: `This is a test message from OpsConductor for the ${row.type} channel "${row.name}". If you can read it, the channel works.`,
    ...(link ? { link } : {}),
    facts: [
      { label: 'Channel', value: row.name },
      { label: 'Type', value: row.type },
      { label: 'Sent at', value: now.toISOString() },
    ],
    data: { channel_id: row.id, test: true },
  }
}
