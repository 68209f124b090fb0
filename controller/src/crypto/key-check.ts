import { eq, sql } from 'drizzle-orm'
import { ConfigError } from '../config.ts'
import type { Db } from '../db/client.ts'
import { setting } from '../settings/settings.sql.ts'
import type { Keyring } from './master-key.ts'
import { KEY_CHECK_AAD, KEY_CHECK_SETTING, SEALED_COLUMNS, selectStale } from './sealed-columns.ts'
import { openSecret, sealSecret, SecretDecryptError, type SealedSecret } from './secret-box.ts'

/*
 * A wrong or missing master key must stop the controller at start, not surface later as failed
 * logins or runs. The database keeps a sentinel sealed with the master key (setting
 * `master_key_check`, created on the first start); every start must be able to open it.
 */

const SENTINEL = 'opsconductor master key check v1'

export function masterKeyMismatch(keyring: Keyring, cause?: unknown): ConfigError {
  return new ConfigError(`OPSC_MASTER_KEY: cannot decrypt credentials with the configured master key (key id ${keyring.current.id})`, { cause })
}

async function readSentinel(db: Db): Promise<string | undefined> {
  const [row] = await db.select({ value: sql<string>`${setting.value}::text` }).from(setting).where(eq(setting.key, KEY_CHECK_SETTING))
  return row?.value
}

/**
 * Proves the configured keys open what the database holds; throws a ConfigError otherwise.
 * The first start with this check (including an upgrade of a database that already holds
 * secrets) also tries one existing secret of each kind before recording the sentinel.
 */
export async function verifyMasterKey(db: Db, keyring: Keyring): Promise<{ created: boolean; keyId: string }> {
  let stored = await readSentinel(db)
  let created = false
  if (stored === undefined) {
    await probeExistingSecrets(db, keyring)
    const inserted = await db
      .insert(setting)
      .values({ key: KEY_CHECK_SETTING, value: sealSecret(keyring, SENTINEL, KEY_CHECK_AAD), updatedBy: 'system' })
      .onConflictDoNothing()
      .returning({ key: setting.key })
    created = inserted.length > 0
    // Another controller may have written it first, perhaps with another key: check what is stored.
    stored = (await readSentinel(db))!
  }
  try {
    if (openSecret(keyring, stored, KEY_CHECK_AAD).toString('utf8') !== SENTINEL) throw new SecretDecryptError('auth_failed', undefined)
  } catch (err) {
    if (err instanceof SecretDecryptError) throw masterKeyMismatch(keyring, err)
    throw err
  }
  return { created, keyId: (JSON.parse(stored) as SealedSecret).kid }
}

async function probeExistingSecrets(db: Db, keyring: Keyring): Promise<void> {
  for (const col of SEALED_COLUMNS) {
    // '' is no key id: the first sealed value of the column, whatever key wraps it.
    const [row] = await selectStale(db, col, '', { afterId: '', limit: 1, forUpdate: false })
    if (!row) continue
    try {
      openSecret(keyring, row.sealed, col.aad(row.id)).fill(0)
    } catch (err) {
      // Key ids are hashes of the keys: a wrong key always shows as an unknown id. A known id that
      // fails to open is one damaged row, which rotation reports; it must not stop the controller.
      if (err instanceof SecretDecryptError && err.reason === 'unknown_key') throw masterKeyMismatch(keyring, err)
      if (!(err instanceof SecretDecryptError)) throw err
    }
  }
}
