import { randomBytes } from 'node:crypto'
import { statSync } from 'node:fs'
import { sql } from 'drizzle-orm'
import { appendAudit } from '../audit/service.ts'
import { SYSTEM_ACTOR } from '../auth/principal.ts'
import { ConfigError, type ControllerConfig } from '../config.ts'
import type { Db } from '../db/client.ts'
import { AppError } from '../errors.ts'
import { verifyMasterKey } from './key-check.ts'
import { createKeyring, DEFAULT_RELOAD, keyFilePath, parseEnvKeys, readKeyFileKeys, replaceKeyFile, type Keyring } from './master-key.ts'
import { countSealedByKey, SEALED_COLUMNS, selectStale, writeSealed, type SealedColumn } from './sealed-columns.ts'
import { rewrapSecret, SecretDecryptError, type SecretDecryptReason } from './secret-box.ts'
import { LOCK } from '../db/locks.ts'

/*
 * Master key rotation. Only the small wrapped data keys change (rewrapSecret); ciphertexts stay.
 *
 * Key file (`<data dir>/master.key`):
 *   1. `opsconductor keys rotate` puts a new key on top of the file (older keys stay below it),
 *      then re-wraps every sealed value in the database with it. Running controllers that read the
 *      same file notice within seconds (see fileKeyring) and need no restart. A controller with its
 *      own data dir needs the new file copied there (it, too, reloads it without a restart).
 *   2. `opsconductor keys retire` drops the older keys once nothing uses them.
 *
 * OPSC_MASTER_KEY (several controllers, containers): the variable takes comma-separated keys, the
 * first current. Without downtime:
 *   1. deploy `OPSC_MASTER_KEY=old,new` everywhere (new is accepted but not used yet);
 *   2. deploy `OPSC_MASTER_KEY=new,old` everywhere (new secrets and tokens use the new key);
 *   3. run `opsconductor keys rotate` once: it re-wraps everything to the current key;
 *   4. `opsconductor keys retire` confirms nothing uses the old key; deploy `OPSC_MASTER_KEY=new`.
 * Access tokens are signed with the current key too: a retired key ends tokens it signed
 * (at most 15 minutes old), and clients refresh.
 */

// Serialises rotations and retirements across processes: both rewrite the key file.
const DEFAULT_BATCH = 200
/** Retire waits this long after the key file changed, so every controller watching it has switched keys. */
export const RETIRE_SETTLE_MS = DEFAULT_RELOAD.checkIntervalMs * 2

export interface RewrapResult {
  rewrapped: Record<string, number>
  failed: { column: string; id: string; reason: SecretDecryptReason }[]
}

export interface RotationReport extends RewrapResult {
  mode: 'key_file' | 'env'
  source: string
  currentKeyId: string
  /** Keys still configured besides the current one (retire them once nothing uses them). */
  olderKeyIds: string[]
}

interface KeyOptions {
  db: Db
  dataDir: string
  /** OPSC_MASTER_KEY when set: the keys come from the environment and no file is written. */
  envKey?: string | undefined
  now?: Date
}

/**
 * Key-file mode: a new current key, then every sealed value re-wrapped with it. Env mode (or
 * `rewrapOnly`): re-wraps to the current configured key without changing any key.
 */
export async function rotateMasterKey(opts: KeyOptions & { rewrapOnly?: boolean; batchSize?: number }): Promise<RotationReport> {
  const now = opts.now ?? new Date()
  const keyring = opts.envKey !== undefined || opts.rewrapOnly ? await configuredKeyring(opts) : await introduceNewKey(opts, now)
  const result = await rewrapAll(opts.db, keyring, opts.batchSize ?? DEFAULT_BATCH)
  const report: RotationReport = {
    mode: opts.envKey !== undefined ? 'env' : 'key_file',
    source: keyring.source,
    currentKeyId: keyring.current.id,
    olderKeyIds: keyring.keys.slice(1).map((k) => k.id),
    ...result,
  }
  await appendAudit(
    opts.db,
    {
      actor: SYSTEM_ACTOR,
      action: 'keys.rotate',
      resourceType: 'master_key',
      resourceId: keyring.current.id,
      outcome: result.failed.length === 0 ? 'success' : 'failure',
      summary: { mode: report.mode, new_key: !(opts.envKey !== undefined || opts.rewrapOnly), older_key_ids: report.olderKeyIds, rewrapped: result.rewrapped, failed_count: result.failed.length },
    },
    now,
  )
  return report
}

async function configuredKeyring(opts: KeyOptions): Promise<Keyring> {
  const keyring = opts.envKey !== undefined ? createKeyring(parseEnvKeys(opts.envKey), 'OPSC_MASTER_KEY') : createKeyring(requireKeyFile(opts.dataDir), keyFilePath(opts.dataDir))
  await verifyMasterKey(opts.db, keyring)
  return keyring
}

function requireKeyFile(dataDir: string): Buffer[] {
  const file = keyFilePath(dataDir)
  const keys = readKeyFileKeys(file)
  if (!keys) throw new ConfigError(`no master key file at ${file}; point OPSC_DATA_DIR at the controller's data directory (or set OPSC_MASTER_KEY)`)
  return keys
}

/** Under the key-file lock: check the file's keys against the database, then write `new, …old`. */
async function introduceNewKey(opts: KeyOptions, now: Date): Promise<Keyring> {
  return withKeyFileLock(opts.db, async (tx) => {
    const file = keyFilePath(opts.dataDir)
    const old = requireKeyFile(opts.dataDir)
    // Adding a key to a file that cannot open the database would leave everything unreadable.
    await verifyMasterKey(tx, createKeyring(old, file))
    const keys = [randomBytes(32), ...old]
    const keyring = createKeyring(keys, file)
    replaceKeyFile(file, keys, `rotated ${now.toISOString()}: ${keyring.current.id} is current; retire the others with \`opsconductor keys retire\``)
    return keyring
  })
}

async function withKeyFileLock<T>(db: Db, fn: (tx: Db) => Promise<T>): Promise<T> {
  return db.transaction(async (txRaw) => {
    const tx = txRaw as unknown as Db
    await tx.execute(sql`select pg_advisory_xact_lock(${LOCK.keyFile})`)
    return fn(tx)
  })
}

/** Re-wraps every sealed value not yet under the current key, in batches, each batch one transaction. */
export async function rewrapAll(db: Db, keyring: Keyring, batchSize = DEFAULT_BATCH): Promise<RewrapResult> {
  const result: RewrapResult = { rewrapped: {}, failed: [] }
  for (const col of SEALED_COLUMNS) result.rewrapped[col.name] = await rewrapColumn(db, keyring, col, batchSize, result.failed)
  return result
}

async function rewrapColumn(db: Db, keyring: Keyring, col: SealedColumn, batchSize: number, failed: RewrapResult['failed']): Promise<number> {
  const current = keyring.current.id
  let afterId = ''
  let count = 0
  for (;;) {
    const more = await db.transaction(async (txRaw) => {
      const tx = txRaw as unknown as Db
      const rows = await selectStale(tx, col, current, { afterId, limit: batchSize, forUpdate: true })
      for (const row of rows) {
        try {
          await writeSealed(tx, col, row.id, rewrapSecret(keyring, row.sealed, col.aad(row.id)))
          count++
        } catch (err) {
          // An unreadable row stays as it is (and is reported); the rest still rotate.
          if (!(err instanceof SecretDecryptError)) throw err
          failed.push({ column: col.name, id: row.id, reason: err.reason })
        }
      }
      afterId = rows.at(-1)?.id ?? afterId
      return rows.length === batchSize
    })
    if (!more) return count
  }
}

/**
 * Drops every key but the current one, once no sealed value uses another. Key-file mode rewrites
 * the file; env mode only checks (the operator then removes the old keys from OPSC_MASTER_KEY).
 */
export async function retireOldKeys(opts: KeyOptions & { settleMs?: number }): Promise<{ mode: 'key_file' | 'env'; source: string; currentKeyId: string; retiredKeyIds: string[] }> {
  const now = opts.now ?? new Date()
  if (opts.envKey !== undefined) {
    const keyring = createKeyring(parseEnvKeys(opts.envKey), 'OPSC_MASTER_KEY')
    await assertOnlyCurrentKeyUsed(opts.db, keyring)
    return { mode: 'env', source: keyring.source, currentKeyId: keyring.current.id, retiredKeyIds: keyring.keys.slice(1).map((k) => k.id) }
  }
  const retired = await withKeyFileLock(opts.db, async (tx) => {
    const file = keyFilePath(opts.dataDir)
    const keyring = createKeyring(requireKeyFile(opts.dataDir), file)
    if (keyring.keys.length === 1) return { keyring, retiredKeyIds: [] as string[] }
    const age = now.getTime() - statSync(file).mtimeMs
    const settleMs = opts.settleMs ?? RETIRE_SETTLE_MS
    if (age < settleMs) {
      throw new AppError('PRECONDITION_FAILED', `the key file changed ${Math.max(0, Math.round(age / 1000))} s ago; wait ${Math.ceil(settleMs / 1000)} s so running controllers switch to the new key, then retire`)
    }
    await assertOnlyCurrentKeyUsed(tx, keyring)
    await verifyMasterKey(tx, createKeyring([keyring.current.key], file))
    replaceKeyFile(file, [keyring.current.key], `older keys retired ${now.toISOString()}`)
    return { keyring, retiredKeyIds: keyring.keys.slice(1).map((k) => k.id) }
  })
  if (retired.retiredKeyIds.length > 0) {
    await appendAudit(
      opts.db,
      { actor: SYSTEM_ACTOR, action: 'keys.retire', resourceType: 'master_key', resourceId: retired.keyring.current.id, outcome: 'success', summary: { retired_key_ids: retired.retiredKeyIds } },
      now,
    )
  }
  return { mode: 'key_file', source: retired.keyring.source, currentKeyId: retired.keyring.current.id, retiredKeyIds: retired.retiredKeyIds }
}

async function assertOnlyCurrentKeyUsed(db: Db, keyring: Keyring): Promise<void> {
  const stale = (await countSealedByKey(db)).filter((c) => c.kid !== keyring.current.id)
  if (stale.length === 0) return
  const total = stale.reduce((n, c) => n + c.count, 0)
  const list = stale.map((c) => `${c.column} ${c.count} under key ${c.kid}${keyring.byId(c.kid) ? '' : ' (not configured)'}`).join(', ')
  throw new AppError('PRECONDITION_FAILED', `${total} sealed value(s) still use an older master key (${list}); run \`opsconductor keys rotate --rewrap-only\` first`, { stale })
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`

/** `opsconductor keys rotate [--rewrap-only]`: exit 0 when everything was re-wrapped, 1 when some value could not be. */
export async function keysRotateCommand(db: Db, config: ControllerConfig, opts: { rewrapOnly?: boolean; now?: Date } = {}): Promise<{ exitCode: number; output: string }> {
  const report = await rotateMasterKey({ db, dataDir: config.OPSC_DATA_DIR, envKey: config.OPSC_MASTER_KEY, ...opts })
  const total = Object.values(report.rewrapped).reduce((a, b) => a + b, 0)
  const counts = Object.entries(report.rewrapped).filter(([, n]) => n > 0).map(([col, n]) => `${col} ${n}`).join(', ')
  const newKey = report.mode === 'key_file' && !opts.rewrapOnly
  const lines = [
    newKey ? `new master key ${report.currentKeyId} is current in ${report.source}` : `current master key ${report.currentKeyId} (${report.source})`,
    `re-wrapped ${plural(total, 'sealed value')}${counts ? ` (${counts})` : ''}`,
    ...report.failed.map((f) => `cannot re-wrap ${f.column} ${f.id}: ${f.reason === 'unknown_key' ? 'sealed with a master key that is not configured' : 'does not decrypt (damaged or tampered)'}`),
  ]
  if (report.olderKeyIds.length > 0) {
    lines.push(
      report.mode === 'env'
        ? `older keys still configured: ${report.olderKeyIds.join(', ')}; run \`opsconductor keys retire\`, then remove them from OPSC_MASTER_KEY`
        : `older keys kept: ${report.olderKeyIds.join(', ')}. Controllers reading this file switch within ${DEFAULT_RELOAD.checkIntervalMs / 1000} s (copy it to controllers with another data dir); then run \`opsconductor keys retire\``,
    )
  }
  return { exitCode: report.failed.length === 0 ? 0 : 1, output: lines.join('\n') }
}

/** `opsconductor keys retire`: exit 0 when the older keys are gone (or none were left), 1 while something still uses them. */
export async function keysRetireCommand(db: Db, config: ControllerConfig, opts: { now?: Date; settleMs?: number } = {}): Promise<{ exitCode: number; output: string }> {
  try {
    const r = await retireOldKeys({ db, dataDir: config.OPSC_DATA_DIR, envKey: config.OPSC_MASTER_KEY, ...opts })
    if (r.retiredKeyIds.length === 0) return { exitCode: 0, output: `nothing to retire: ${r.source} holds only the current key ${r.currentKeyId}` }
    if (r.mode === 'env') {
      return { exitCode: 0, output: `every sealed value uses the current key ${r.currentKeyId}; remove ${r.retiredKeyIds.join(', ')} from OPSC_MASTER_KEY on every controller` }
    }
    return { exitCode: 0, output: `retired ${r.retiredKeyIds.join(', ')}; ${r.source} now holds only the current key ${r.currentKeyId}` }
  } catch (err) {
    if (err instanceof AppError && err.code === 'PRECONDITION_FAILED') return { exitCode: 1, output: err.message }
    throw err
  }
}
