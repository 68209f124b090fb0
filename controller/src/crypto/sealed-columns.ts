import { sql, type SQL } from 'drizzle-orm'
import { signingKeyAad } from '../agents/signing-keys.ts'
import { totpAad } from '../auth/mfa.ts'
import { credentialAad } from '../credentials/service.ts'
import { runParamsAad } from '../runs/runs.sql.ts'
import type { Db } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'
import { channelAad } from '../notify/channels-service.ts'
import { SMTP_PASSWORD_AAD, SMTP_PASSWORD_SETTING } from '../notify/smtp-settings.ts'

/**
 * Every database column that holds a SealedSecret, with the AAD it was sealed with. Rotation
 * re-wraps all of them and retirement checks all of them: a new sealed column belongs here.
 */
export interface SealedColumn {
  /** `table.column`, for reports. */
  name: string
  table: string
  idColumn: string
  column: string
  aad: (id: string) => string
  /** Narrows a shared table (settings) to the rows that hold a sealed value. */
  where?: SQL
}

export const KEY_CHECK_SETTING = 'master_key_check'
export const KEY_CHECK_AAD = `setting:${KEY_CHECK_SETTING}`

export const SEALED_COLUMNS: readonly SealedColumn[] = [
  { name: 'credential.secret', table: 'credential', idColumn: 'id', column: 'secret', aad: credentialAad },
  { name: 'app_user.totp_secret', table: 'app_user', idColumn: 'id', column: 'totp_secret', aad: totpAad },
  { name: 'app_user.totp_pending_secret', table: 'app_user', idColumn: 'id', column: 'totp_pending_secret', aad: totpAad },
  { name: 'agent_signing_key.private_key', table: 'agent_signing_key', idColumn: 'key_id', column: 'private_key', aad: signingKeyAad },
  { name: 'run.secret_params', table: 'run', idColumn: 'id', column: 'secret_params', aad: runParamsAad },
  { name: `setting.${KEY_CHECK_SETTING}`, table: 'setting', idColumn: 'key', column: 'value', aad: () => KEY_CHECK_AAD, where: sql`key = ${KEY_CHECK_SETTING}` },
  { name: 'notification_channel.secret', table: 'notification_channel', idColumn: 'id', column: 'secret', aad: (id) => channelAad(id) },
  { name: `setting.${SMTP_PASSWORD_SETTING}`, table: 'setting', idColumn: 'key', column: 'value', aad: () => SMTP_PASSWORD_AAD, where: sql`key = ${SMTP_PASSWORD_SETTING}` },
]

const ident = sql.identifier

/** Rows of one column sealed with a key other than `currentKid`, after `afterId` in id order (jsonb as text: drivers differ in parsing it). */
export async function selectStale(
  db: Db,
  col: SealedColumn,
  currentKid: string,
  opts: { afterId: string; limit: number; forUpdate: boolean },
): Promise<{ id: string; sealed: string }[]> {
  const id = ident(col.idColumn)
  const value = ident(col.column)
  return rowsOf<{ id: string; sealed: string }>(
    await db.execute(sql`
      select ${id}::text as id, ${value}::text as sealed from ${ident(col.table)}
      where ${value} is not null and ${value}->>'kid' is distinct from ${currentKid} and ${id}::text > ${opts.afterId}
      ${col.where ? sql`and ${col.where}` : sql``}
      order by ${id}::text limit ${opts.limit} ${opts.forUpdate ? sql`for update` : sql``}`),
  )
}

export async function writeSealed(db: Db, col: SealedColumn, id: string, sealed: unknown): Promise<void> {
  await db.execute(sql`update ${ident(col.table)} set ${ident(col.column)} = ${JSON.stringify(sealed)}::jsonb where ${ident(col.idColumn)}::text = ${id}`)
}

/** How many sealed values each master key id wraps, per column. */
export async function countSealedByKey(db: Db): Promise<{ column: string; kid: string; count: number }[]> {
  const out: { column: string; kid: string; count: number }[] = []
  for (const col of SEALED_COLUMNS) {
    const value = ident(col.column)
    const rows = rowsOf<{ kid: string | null; n: number | string }>(
      await db.execute(sql`
        select ${value}->>'kid' as kid, count(*)::int as n from ${ident(col.table)}
        where ${value} is not null ${col.where ? sql`and ${col.where}` : sql``} group by 1 order by 1`),
    )
    for (const r of rows) out.push({ column: col.name, kid: r.kid ?? '(none)', count: Number(r.n) })
  }
  return out
}
