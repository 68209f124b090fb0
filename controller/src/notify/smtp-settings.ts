import { createSecureContext } from 'node:tls'
import { eq, inArray } from 'drizzle-orm'
import { z } from 'zod'
import type { AppContext } from '../context.ts'
import { openSecret, sealSecret, type SealedSecret } from '../crypto/secret-box.ts'
import { ValidationError } from '../errors.ts'
import { parseWith } from '../http/validate.ts'
import { setting } from '../settings/settings.sql.ts'

/*
 * The one SMTP server every email channel sends through, stored as the `smtp` setting. The
 * password is the `smtp_password` setting, whose value is the SealedSecret itself (aad
 * `setting:smtp_password`) so master-key rotation can re-wrap it like any sealed column; it is
 * never returned. A POST merges what it sends into what is stored (omitted keeps, null clears),
 * then the whole is checked.
 *
 * security: `tls` = implicit TLS (usually port 465); `starttls` = plain connect, then STARTTLS is
 * required (587); `none` = no encryption (a relay on a trusted network, port 25) — and then no
 * password is accepted, since it would cross the network in clear. Certificates are always
 * verified, against `ca_pem` when given (an internal CA), else the system store.
 */

const KEY = 'smtp'
export const SMTP_PASSWORD_SETTING = 'smtp_password'
export const SMTP_PASSWORD_AAD = `setting:${SMTP_PASSWORD_SETTING}`
export const SMTP_SECURITY = ['tls', 'starttls', 'none'] as const
export type SmtpSecurity = (typeof SMTP_SECURITY)[number]
const DEFAULT_PORT: Record<SmtpSecurity, number> = { tls: 465, starttls: 587, none: 25 }

const Host = z
  .string()
  .trim()
  .min(1)
  .max(255)
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9a-fA-F:]+)$/, 'a host name or IP address')

export const SmtpSettingsInput = z
  .object({
    host: Host,
    port: z.number().int().min(1).max(65_535).nullable(),
    security: z.enum(SMTP_SECURITY),
    username: z.string().min(1).max(320).nullable(),
    /** Write-only: a string sets it, null clears it, omitted keeps it. */
    password: z.string().min(1).max(1024).nullable(),
    from_address: z.email('an email address'),
    from_name: z.string().trim().max(200).nullable(),
    ca_pem: z.string().min(1).max(64 * 1024).nullable(),
    timeout_ms: z.number().int().min(1000).max(120_000),
  })
  .partial()
  .strict()
export type SmtpSettingsInput = z.infer<typeof SmtpSettingsInput>

/** What is stored in the setting row. */
interface StoredSmtp {
  host: string
  port: number
  security: SmtpSecurity
  username: string | null
  from_address: string
  from_name: string | null
  ca_pem: string | null
  timeout_ms: number
}

export interface SmtpSettingsDto {
  configured: boolean
  host: string | null
  port: number | null
  security: SmtpSecurity
  username: string | null
  has_password: boolean
  from_address: string | null
  from_name: string | null
  ca_pem: string | null
  timeout_ms: number
  updated_at: string | null
  updated_by: string | null
}

/** Everything nodemailer needs, password opened: for the email driver only, never for a response or a log. */
export interface SmtpTransportSettings {
  host: string
  port: number
  security: SmtpSecurity
  username: string | null
  password: string | null
  from: { name: string | null; address: string }
  caPem: string | null
  timeoutMs: number
}

const DEFAULT_TIMEOUT_MS = 15_000

interface StoredRows {
  value: StoredSmtp | null
  password: SealedSecret | null
  updatedAt: Date | null
  updatedBy: string | null
}

async function readStored(ctx: Pick<AppContext, 'db'>): Promise<StoredRows> {
  const rows = await ctx.db
    .select()
    .from(setting)
    .where(inArray(setting.key, [KEY, SMTP_PASSWORD_SETTING]))
  const row = rows.find((r) => r.key === KEY)
  const password = rows.find((r) => r.key === SMTP_PASSWORD_SETTING)
  return { value: (row?.value as StoredSmtp | undefined) ?? null, password: (password?.value as SealedSecret | undefined) ?? null, updatedAt: row?.updatedAt ?? null, updatedBy: row?.updatedBy ?? null }
}

function dto({ value: stored, password, updatedAt, updatedBy }: StoredRows): SmtpSettingsDto {
  return {
    configured: stored !== null,
    host: stored?.host ?? null,
    port: stored?.port ?? null,
    security: stored?.security ?? 'starttls',
    username: stored?.username ?? null,
    has_password: stored !== null && password !== null,
    from_address: stored?.from_address ?? null,
    from_name: stored?.from_name ?? null,
    ca_pem: stored?.ca_pem ?? null,
    timeout_ms: stored?.timeout_ms ?? DEFAULT_TIMEOUT_MS,
    updated_at: updatedAt?.toISOString() ?? null,
    updated_by: updatedBy,
  }
}

export async function getSmtpSettings(ctx: Pick<AppContext, 'db'>): Promise<SmtpSettingsDto> {
  return dto(await readStored(ctx))
}

/** Fields the request touched (for the audit note; the password only as "password"). */
export interface SmtpUpdate {
  settings: SmtpSettingsDto
  fields: string[]
}

export async function updateSmtpSettings(ctx: Pick<AppContext, 'db' | 'keyring' | 'clock'>, body: unknown, updatedBy: string): Promise<SmtpUpdate> {
  const input = parseWith(SmtpSettingsInput, body)
  const { value: stored, password: storedPassword } = await readStored(ctx)
  const security = input.security ?? stored?.security ?? 'starttls'
  const pick = <K extends keyof StoredSmtp>(k: K & keyof SmtpSettingsInput, fallback: StoredSmtp[K]): StoredSmtp[K] =>
    (input[k] !== undefined ? input[k] : (stored?.[k] ?? fallback)) as StoredSmtp[K]
  const password = input.password === undefined ? storedPassword : input.password === null ? null : sealSecret(ctx.keyring, input.password, SMTP_PASSWORD_AAD)
  const next: StoredSmtp = {
    host: pick('host', ''),
    // A port left out follows the security mode, unless one was stored for the same mode.
    port: input.port ?? (input.port === undefined && stored && stored.security === security ? stored.port : DEFAULT_PORT[security]),
    security,
    username: pick('username', null),
    from_address: pick('from_address', ''),
    from_name: pick('from_name', null) || null,
    ca_pem: pick('ca_pem', null),
    timeout_ms: pick('timeout_ms', DEFAULT_TIMEOUT_MS),
  }
  const problems = checkSmtp(next, password !== null)
  if (problems.length) throw new ValidationError(`invalid SMTP settings: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems)
  const now = ctx.clock()
  await ctx.db.transaction(async (tx) => {
    await tx
      .insert(setting)
      .values({ key: KEY, value: next, updatedAt: now, updatedBy })
      .onConflictDoUpdate({ target: setting.key, set: { value: next, updatedAt: now, updatedBy } })
    if (password === null) await tx.delete(setting).where(eq(setting.key, SMTP_PASSWORD_SETTING))
    else if (input.password !== undefined) {
      await tx
        .insert(setting)
        .values({ key: SMTP_PASSWORD_SETTING, value: password, updatedAt: now, updatedBy })
        .onConflictDoUpdate({ target: setting.key, set: { value: password, updatedAt: now, updatedBy } })
    }
  })
  return { settings: dto({ value: next, password, updatedAt: now, updatedBy }), fields: Object.keys(input) }
}

function checkSmtp(s: StoredSmtp, hasPassword: boolean): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = []
  if (!s.host) problems.push({ path: 'host', message: 'required' })
  if (!s.from_address) problems.push({ path: 'from_address', message: 'required' })
  if (hasPassword && !s.username) problems.push({ path: 'username', message: 'required with a password' })
  if (s.security === 'none' && hasPassword) problems.push({ path: 'security', message: 'a password is never sent unencrypted: use starttls or tls (or clear the password for an unauthenticated relay)' })
  if (s.ca_pem !== null) {
    let ok = s.ca_pem.includes('-----BEGIN CERTIFICATE-----')
    try {
      if (ok) createSecureContext({ ca: s.ca_pem })
    } catch {
      ok = false
    }
    if (!ok) problems.push({ path: 'ca_pem', message: 'not a PEM CA certificate' })
  }
  return problems
}

/** The settings with the password opened, or null when SMTP has not been configured. */
export async function loadSmtpTransport(ctx: Pick<AppContext, 'db' | 'keyring'>): Promise<SmtpTransportSettings | null> {
  const { value, password } = await readStored(ctx)
  if (!value) return null
  return {
    host: value.host,
    port: value.port,
    security: value.security,
    username: value.username,
    password: password ? openSecret(ctx.keyring, password, SMTP_PASSWORD_AAD).toString('utf8') : null,
    from: { name: value.from_name, address: value.from_address },
    caPem: value.ca_pem,
    timeoutMs: value.timeout_ms,
  }
}
