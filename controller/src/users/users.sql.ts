import { sql } from 'drizzle-orm'
import { bigint, boolean, check, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import type { SealedSecret } from '../crypto/secret-box.ts'

// `user` is reserved in SQL; `app_user` avoids quoting it everywhere.
export const appUser = pgTable(
  'app_user',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    username: text('username').notNull(),
    displayName: text('display_name'),
    email: text('email'),
    role: text('role', { enum: ['viewer', 'operator', 'admin'] }).notNull(),
    passwordHash: text('password_hash').notNull(),
    disabled: boolean('disabled').notNull().default(false),
    mustChangePassword: boolean('must_change_password').notNull().default(false),
    selfRegistered: boolean('self_registered').notNull().default(false),
    mfaEnabled: boolean('mfa_enabled').notNull().default(false),
    totpSecret: jsonb('totp_secret').$type<SealedSecret>(),
    totpPendingSecret: jsonb('totp_pending_secret').$type<SealedSecret>(),
    /** Last accepted TOTP time step: a code is never accepted twice. */
    totpLastStep: bigint('totp_last_step', { mode: 'number' }),
    /** Hashes of unused recovery codes; a used one is removed. */
    recoveryCodes: jsonb('recovery_codes').$type<string[]>().notNull().default([]),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    lastLoginAt: timestamp('last_login_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('app_user_username_lower_idx').on(sql`lower(${t.username})`),
    check('app_user_role_check', sql`${t.role} in ('viewer', 'operator', 'admin')`),
  ],
)
export type AppUserRow = typeof appUser.$inferSelect
