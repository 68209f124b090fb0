import { and, asc, count, eq, gt, ne, sql } from 'drizzle-orm'
import { z } from 'zod'
import { appendAudit } from '../audit/service.ts'
import { hashPassword, passwordProblem, randomPassword } from '../auth/passwords.ts'
import { SYSTEM_ACTOR, type Principal } from '../auth/principal.ts'
import { ROLES, type Role } from '../auth/roles.ts'
import { revokeUserSessions } from '../auth/sessions.ts'
import type { AppContext } from '../context.ts'
import { isUniqueViolation, type Db } from '../db/client.ts'
import { AppError, NotFoundError, ValidationError } from '../errors.ts'
import { decodeCursor, pageOf, type Page } from '../http/pagination.ts'
import { appUser, type AppUserRow } from './users.sql.ts'
import { containsText } from '../db/text-search.ts'
import { LOCK } from '../db/locks.ts'

export const Username = z
  .string()
  .trim()
  .min(2)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@-]*$/, 'letters, digits and . _ @ - only, starting with a letter or digit')

const Password = z.string().min(1).max(1024)

export interface UserDto {
  id: string
  username: string
  display_name: string | null
  email: string | null
  role: Role
  disabled: boolean
  mfa_enabled: boolean
  must_change_password: boolean
  self_registered: boolean
  created_at: string
  updated_at: string
  last_login_at: string | null
}

export function userDto(row: AppUserRow): UserDto {
  return {
    id: row.id,
    username: row.username,
    display_name: row.displayName,
    email: row.email,
    role: row.role,
    disabled: row.disabled,
    mfa_enabled: row.mfaEnabled,
    must_change_password: row.mustChangePassword,
    self_registered: row.selfRegistered,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    last_login_at: row.lastLoginAt?.toISOString() ?? null,
  }
}

export function checkPassword(password: string, username: string, field = 'password'): void {
  const problem = passwordProblem(password, username)
  if (problem) throw new ValidationError(`${field} ${problem}`, [{ path: field, message: problem }])
}

export async function findUserByUsername(db: Db, username: string): Promise<AppUserRow | undefined> {
  const [row] = await db.select().from(appUser).where(sql`lower(${appUser.username}) = lower(${username})`)
  return row
}

export async function getUserRow(db: Db, id: string): Promise<AppUserRow> {
  if (!z.uuid().safeParse(id).success) throw new NotFoundError('user', id)
  const [row] = await db.select().from(appUser).where(eq(appUser.id, id))
  if (!row) throw new NotFoundError('user', id)
  return row
}

export const CreateUserInput = z
  .object({
    username: Username,
    password: Password.optional(),
    role: z.enum(ROLES),
    display_name: z.string().trim().max(200).nullish(),
    email: z.email().max(320).nullish(),
    must_change_password: z.boolean().optional(),
  })
  .strict()
export type CreateUserInput = z.infer<typeof CreateUserInput>

/** Creates a user. Without a password one is generated and returned once (and must be changed at first login). */
export async function insertUser(db: Db, input: CreateUserInput & { selfRegistered?: boolean }, now: Date): Promise<{ user: UserDto; generatedPassword?: string }> {
  const generated = input.password === undefined ? randomPassword() : undefined
  const password = input.password ?? generated!
  checkPassword(password, input.username)
  if (await findUserByUsername(db, input.username)) throw new AppError('CONFLICT', `username ${input.username} is taken`)
  try {
    const [row] = await db
      .insert(appUser)
      .values({
        username: input.username,
        role: input.role,
        displayName: input.display_name ?? null,
        email: input.email ?? null,
        passwordHash: await hashPassword(password),
        mustChangePassword: input.must_change_password ?? generated !== undefined,
        selfRegistered: input.selfRegistered ?? false,
        createdAt: now,
        updatedAt: now,
      })
      .returning()
    return { user: userDto(row!), ...(generated ? { generatedPassword: generated } : {}) }
  } catch (err) {
    if (isUniqueViolation(err)) {
      throw new AppError('CONFLICT', `username ${input.username} is taken`, undefined, { cause: err })
    }
    throw err
  }
}

export const ListUsersQuery = z.object({
  q: z.string().trim().max(100).optional(),
  role: z.enum(ROLES).optional(),
  disabled: z.enum(['true', 'false']).optional(),
})

export async function listUsers(db: Db, query: z.infer<typeof ListUsersQuery>, page: { limit: number; cursor?: string | undefined }): Promise<Page<UserDto>> {
  const after = page.cursor ? decodeCursor(page.cursor, z.object({ u: z.string() })).u : undefined
  const conditions = [
    after !== undefined ? gt(sql`lower(${appUser.username})`, after) : undefined,
    query.role ? eq(appUser.role, query.role) : undefined,
    query.disabled ? eq(appUser.disabled, query.disabled === 'true') : undefined,
    query.q ? containsText(query.q, appUser.username, appUser.displayName, appUser.email) : undefined,
  ].filter((c) => c !== undefined)
  const rows = await db
    .select()
    .from(appUser)
    .where(conditions.length ? and(...conditions) : undefined)
    .orderBy(asc(sql`lower(${appUser.username})`))
    .limit(page.limit + 1)
  return pageOf(rows, page.limit, userDto, (r) => ({ u: r.username.toLowerCase() }))
}


export const UpdateUserInput = z
  .object({
    role: z.enum(ROLES).optional(),
    disabled: z.boolean().optional(),
    display_name: z.string().trim().max(200).nullish(),
    email: z.email().max(320).nullish(),
    /** Admin reset: the user must change it at next login. */
    password: Password.optional(),
    /** Clears TOTP and recovery codes (a user who lost their device). */
    reset_mfa: z.literal(true).optional(),
  })
  .strict()
export type UpdateUserInput = z.infer<typeof UpdateUserInput>

/** The last enabled admin cannot be demoted, disabled or deleted: the installation would be unmanageable. */
async function assertAnotherAdminRemains(db: Db, userId: string): Promise<void> {
  // Lock the admin rows so two concurrent demotions cannot both pass this check.
  await db.execute(sql`select id from app_user where role = 'admin' and not disabled for update`)
  const [row] = await db
    .select({ n: count() })
    .from(appUser)
    .where(and(eq(appUser.role, 'admin'), eq(appUser.disabled, false), ne(appUser.id, userId)))
  if ((row?.n ?? 0) === 0) throw new AppError('CONFLICT', 'this is the last enabled admin; make another user admin first')
}

export async function updateUser(ctx: AppContext, principal: Principal, id: string, input: UpdateUserInput): Promise<UserDto> {
  const now = ctx.clock()
  return ctx.db.transaction(async (txRaw) => {
    const tx = txRaw as unknown as Db
    const before = await getUserRow(tx, id)
    const losesAdmin = before.role === 'admin' && !before.disabled && ((input.role && input.role !== 'admin') || input.disabled === true)
    if (losesAdmin) await assertAnotherAdminRemains(tx, id)
    if (input.password !== undefined) checkPassword(input.password, before.username)
    const [row] = await tx
      .update(appUser)
      .set({
        ...(input.role !== undefined ? { role: input.role } : {}),
        ...(input.disabled !== undefined ? { disabled: input.disabled } : {}),
        ...(input.display_name !== undefined ? { displayName: input.display_name } : {}),
        ...(input.email !== undefined ? { email: input.email } : {}),
        ...(input.password !== undefined ? { passwordHash: await hashPassword(input.password), mustChangePassword: principal.userId !== id } : {}),
        ...(input.reset_mfa ? { mfaEnabled: false, totpSecret: null, totpPendingSecret: null, totpLastStep: null, recoveryCodes: [] } : {}),
        updatedAt: now,
      })
      .where(eq(appUser.id, id))
      .returning()
    if (input.disabled === true || input.password !== undefined) {
      await revokeUserSessions(tx, id, input.disabled ? 'user disabled' : 'password reset by admin', now)
    }
    return userDto(row!)
  })
}

export async function removeUser(ctx: AppContext, id: string): Promise<UserDto> {
  return ctx.db.transaction(async (txRaw) => {
    const tx = txRaw as unknown as Db
    const row = await getUserRow(tx, id)
    if (row.role === 'admin' && !row.disabled) await assertAnotherAdminRemains(tx, id)
    await tx.delete(appUser).where(eq(appUser.id, id))
    return userDto(row)
  })
}

/**
 * On the first start with no users, creates `admin` with OPSC_ADMIN_PASSWORD or a random password
 * (which must be changed at first login). Returns the generated password so the caller can show it once.
 */
export async function ensureFirstAdmin(db: Db, opts: { password?: string | undefined }, now: Date): Promise<{ created: boolean; generatedPassword?: string }> {
  return db.transaction(async (txRaw) => {
    const tx = txRaw as unknown as Db
    await tx.execute(sql`select pg_advisory_xact_lock(${LOCK.firstAdmin})`)
    const [existing] = await tx.select({ n: count() }).from(appUser)
    if ((existing?.n ?? 0) > 0) return { created: false }
    const { user, generatedPassword } = await insertUser(
      tx,
      { username: 'admin', role: 'admin', password: opts.password, must_change_password: opts.password === undefined },
      now,
    )
    await appendAudit(tx, { actor: SYSTEM_ACTOR, action: 'users.create_initial_admin', resourceType: 'user', resourceId: user.id, outcome: 'success', summary: { username: 'admin', generated: generatedPassword !== undefined } }, now)
    return { created: true, ...(generatedPassword ? { generatedPassword } : {}) }
  })
}

/** CLI `admin reset-password`: sets a new password, ends the user's sessions. */
export async function resetPassword(db: Db, username: string, password: string | undefined, now: Date): Promise<{ password: string; generated: boolean }> {
  const row = await findUserByUsername(db, username)
  if (!row) throw new NotFoundError('user', username)
  const chosen = password ?? randomPassword()
  checkPassword(chosen, row.username)
  await db.update(appUser).set({ passwordHash: await hashPassword(chosen), mustChangePassword: password === undefined, disabled: false, updatedAt: now }).where(eq(appUser.id, row.id))
  await revokeUserSessions(db, row.id, 'password reset from the command line', now)
  await appendAudit(db, { actor: SYSTEM_ACTOR, action: 'users.reset_password', resourceType: 'user', resourceId: row.id, outcome: 'success', summary: { username: row.username, via: 'cli' } }, now)
  return { password: chosen, generated: password === undefined }
}
