import { chmodSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import type { ControllerConfig } from '../config.ts'
import { ConfigError } from '../config.ts'
import type { Db } from '../db/client.ts'
import { ValidationError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { ensureFirstAdmin } from './service.ts'

export const INITIAL_PASSWORD_FILE = 'initial-admin-password'

/**
 * First start on an empty database: there is no default password. A generated one is printed
 * once on stdout and written to a 0600 file in the data dir; OPSC_ADMIN_PASSWORD sets it instead.
 */
export async function announceFirstAdmin(db: Db, config: ControllerConfig, log: Logger): Promise<void> {
  let result
  try {
    result = await ensureFirstAdmin(db, { password: config.OPSC_ADMIN_PASSWORD }, new Date())
  } catch (err) {
    if (err instanceof ValidationError) throw new ConfigError(`OPSC_ADMIN_PASSWORD: ${err.message.replace(/^password /, '')}`)
    throw err
  }
  if (!result.created) return
  if (result.generatedPassword) {
    const file = path.join(config.OPSC_DATA_DIR, INITIAL_PASSWORD_FILE)
    writeFileSync(file, `${result.generatedPassword}\n`, { mode: 0o600 })
    chmodSync(file, 0o600) // also when an older file was left behind
    process.stdout.write(`Initial admin password: ${result.generatedPassword}\n`)
    log.warn({ username: 'admin', file }, 'auth.initial_admin_created')
  } else {
    log.info({ username: 'admin', source: 'OPSC_ADMIN_PASSWORD' }, 'auth.initial_admin_created')
  }
}
