import { randomUUID } from 'node:crypto'
import { and, asc, eq, gt, or, sql } from 'drizzle-orm'
import { z } from 'zod'
import { actorOf, type Principal } from '../auth/principal.ts'
import type { AppContext } from '../context.ts'
import { openSecret, sealSecret } from '../crypto/secret-box.ts'
import { isUniqueViolation, type Db } from '../db/client.ts'
import { AppError, NotFoundError, ValidationError } from '../errors.ts'
import { decodeCursor, pageOf, type Page } from '../http/pagination.ts'
import { parseWith } from '../http/validate.ts'
import { target } from '../targets/targets.sql.ts'
import { credential, CREDENTIAL_TYPES, type CredentialRow, type CredentialType } from './credentials.sql.ts'
import { CREDENTIAL_FIELDS, publicFields, splitFields, VARIANT_FIELD, type CreateCredentialInput, type CredentialFields, type UpdateCredentialInput } from './types.ts'
import { containsText } from '../db/text-search.ts'

/** The record id is bound into every credential ciphertext: a `secret` copied to another row does not open there. */
export const credentialAad = (id: string) => `credential:${id}`

/** What the API shows: public fields, `has_<secret>` flags and derived facts; never a secret. */
export interface CredentialDto {
  id: string
  name: string
  type: CredentialType
  description: string | null
  created_at: string
  updated_at: string
  created_by: string | null
  updated_by: string | null
  [field: string]: unknown
}

export function credentialDto(row: CredentialRow): CredentialDto {
  return {
    id: row.id,
    name: row.name,
    type: row.type,
    description: row.description,
    ...row.metadata,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    created_by: row.createdBy,
    updated_by: row.updatedBy,
  }
}

const byWhom = (principal: Principal | undefined) => actorOf(principal).name

export async function getCredentialRow(db: Db, id: string, opts: { forUpdate?: boolean } = {}): Promise<CredentialRow> {
  if (!z.uuid().safeParse(id).success) throw new NotFoundError('credential', id)
  const query = db.select().from(credential).where(eq(credential.id, id))
  const [row] = opts.forUpdate ? await query.for('update') : await query
  if (!row) throw new NotFoundError('credential', id)
  return row
}

export async function getCredential(ctx: AppContext, id: string): Promise<CredentialDto> {
  return credentialDto(await getCredentialRow(ctx.db, id))
}

function seal(ctx: AppContext, id: string, secrets: Record<string, unknown>) {
  return sealSecret(ctx.keyring, JSON.stringify(secrets), credentialAad(id))
}

function openSecrets(ctx: AppContext, row: CredentialRow): Record<string, unknown> {
  return JSON.parse(openSecret(ctx.keyring, row.secret, credentialAad(row.id)).toString('utf8')) as Record<string, unknown>
}

async function assertNameFree(db: Db, name: string, exceptId?: string): Promise<void> {
  const [row] = await db.select({ id: credential.id }).from(credential).where(sql`lower(${credential.name}) = lower(${name})`)
  if (row && row.id !== exceptId) throw new AppError('CONFLICT', `a credential named ${name} already exists`)
}

export async function createCredential(ctx: AppContext, principal: Principal | undefined, input: CreateCredentialInput): Promise<CredentialDto> {
  const { name, description, type, ...fields } = input
  const { metadata, secrets } = await splitFields(type, fields)
  // Generated here, not by the database: the id is the ciphertext's AAD, so it must exist before the insert.
  const id = randomUUID()
  const now = ctx.clock()
  await assertNameFree(ctx.db, name)
  try {
    const [row] = await ctx.db
      .insert(credential)
      .values({ id, name, type, description: description ?? null, metadata, secret: seal(ctx, id, secrets), createdAt: now, updatedAt: now, createdBy: byWhom(principal), updatedBy: byWhom(principal) })
      .returning()
    return credentialDto(row!)
  } catch (err) {
    if (isUniqueViolation(err)) throw new AppError('CONFLICT', `a credential named ${name} already exists`, undefined, { cause: err })
    throw err
  }
}

export const ListCredentialsQuery = z.object({
  type: z.enum(CREDENTIAL_TYPES).optional(),
  /** Case-insensitive substring of the name. */
  q: z.string().trim().min(1).max(100).optional(),
})

export async function listCredentials(ctx: AppContext, query: z.infer<typeof ListCredentialsQuery>, page: { limit: number; cursor?: string | undefined }): Promise<Page<CredentialDto>> {
  const after = page.cursor ? decodeCursor(page.cursor, z.object({ n: z.string() })).n : undefined
  const conditions = [
    after !== undefined ? gt(sql`lower(${credential.name})`, after) : undefined,
    query.type ? eq(credential.type, query.type) : undefined,
    query.q ? containsText(query.q, credential.name) : undefined,
  ].filter((c) => c !== undefined)
  const rows = await ctx.db
    .select()
    .from(credential)
    .where(conditions.length ? and(...conditions) : undefined)
    .orderBy(asc(sql`lower(${credential.name})`))
    .limit(page.limit + 1)
  return pageOf(rows, page.limit, credentialDto, (r) => ({ n: r.name.toLowerCase() }))
}


/** Stored fields overlaid with the patch: omitted keeps, `null` clears. A changed variant (http_auth scheme) starts afresh. */
function mergeFields(type: CredentialType, stored: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const variant = VARIANT_FIELD[type]
  const switched = variant !== undefined && patch[variant] !== undefined && patch[variant] !== stored[variant]
  const merged: Record<string, unknown> = switched ? {} : { ...stored }
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key]
    else merged[key] = value
  }
  return merged
}

export interface CredentialUpdate {
  credential: CredentialDto
  /** Names of the type fields the request touched (for the audit note; never values). */
  fields: string[]
}

/**
 * Updates name, description and any type fields. Secrets that are not sent are kept: the stored
 * secrets are opened, merged with the request, validated as a whole and sealed again.
 */
export async function updateCredential(ctx: AppContext, principal: Principal | undefined, id: string, input: UpdateCredentialInput): Promise<CredentialUpdate> {
  const { name, description, type, ...patch } = input
  return ctx.db.transaction(async (txRaw) => {
    const tx = txRaw as unknown as Db
    const row = await getCredentialRow(tx, id, { forUpdate: true })
    if (type !== undefined && type !== row.type) {
      throw new ValidationError(`the type of a credential cannot change (it is ${row.type}); create a new credential instead`, [{ path: 'type', message: 'cannot change' }])
    }
    if (name !== undefined) await assertNameFree(tx, name, id)
    const changes: Partial<typeof credential.$inferInsert> = {}
    if (Object.keys(patch).length > 0) {
      const stored = { ...pick(row.metadata, publicFields(row.type)), ...openSecrets(ctx, row) }
      const fields = parseWith(CREDENTIAL_FIELDS[row.type] as z.ZodType<Record<string, unknown>>, mergeFields(row.type, stored, patch))
      const { metadata, secrets } = await splitFields(row.type, fields)
      Object.assign(changes, { metadata, secret: seal(ctx, id, secrets) })
    }
    try {
      const [updated] = await tx
        .update(credential)
        .set({
          ...changes,
          ...(name !== undefined ? { name } : {}),
          ...(description !== undefined ? { description } : {}),
          updatedAt: ctx.clock(),
          updatedBy: byWhom(principal),
        })
        .where(eq(credential.id, id))
        .returning()
      return { credential: credentialDto(updated!), fields: Object.keys(patch) }
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('CONFLICT', `a credential named ${name} already exists`, undefined, { cause: err })
      throw err
    }
  })
}

const pick = (obj: Record<string, unknown>, keys: readonly string[]) => Object.fromEntries(keys.filter((k) => obj[k] !== undefined).map((k) => [k, obj[k]]))

/** Targets whose connection (or one of its jump hosts) uses the credential. */
export async function targetsUsingCredential(db: Db, id: string): Promise<{ id: string; name: string }[]> {
  const direct = JSON.stringify({ credential_id: id })
  const viaJump = JSON.stringify({ jump: [{ credential_id: id }] })
  return db
    .select({ id: target.id, name: target.name })
    .from(target)
    .where(or(sql`${target.connection} @> ${direct}::jsonb`, sql`${target.connection} @> ${viaJump}::jsonb`))
    .orderBy(asc(sql`lower(${target.name})`))
}

/** Deletes a credential no target uses; otherwise a 409 listing the targets (`details.targets`). */
export async function removeCredential(ctx: AppContext, id: string): Promise<CredentialDto> {
  return ctx.db.transaction(async (txRaw) => {
    const tx = txRaw as unknown as Db
    // The row lock makes a concurrent target save that locks the credential (FOR SHARE) wait for us.
    const row = await getCredentialRow(tx, id, { forUpdate: true })
    const targets = await targetsUsingCredential(tx, id)
    if (targets.length > 0) {
      const names = targets.slice(0, 5).map((t) => t.name).join(', ')
      throw new AppError('CONFLICT', `credential ${row.name} is used by ${targets.length} target(s): ${names}${targets.length > 5 ? ', …' : ''}`, { targets })
    }
    await tx.delete(credential).where(eq(credential.id, id))
    return credentialDto(row)
  })
}

export type OpenedCredential = CredentialFields & { id: string }

/**
 * Every field of a credential, secrets included, for executors and connection tests inside the
 * controller. Never send the result over HTTP or put it in a log line or an audit summary.
 */
export async function openCredential(ctx: AppContext, id: string): Promise<OpenedCredential> {
  const row = await getCredentialRow(ctx.db, id)
  const fields = { ...pick(row.metadata, publicFields(row.type)), ...openSecrets(ctx, row) }
  ctx.log.debug({ credentialId: id, type: row.type }, 'credential.opened')
  return { ...fields, id: row.id, name: row.name, description: row.description, type: row.type } as OpenedCredential
}
