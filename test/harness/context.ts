import { randomBytes, randomUUID } from 'node:crypto'
import { createKeyring } from '../../controller/src/crypto/master-key.ts'
import { loadConfig } from '../../controller/src/config.ts'
import type { AppContext } from '../../controller/src/context.ts'
import { shippedMigrationCount } from '../../controller/src/db/migrate.ts'
import { createLogger, type Logger } from '../../controller/src/log.ts'
import { createMetrics } from '../../controller/src/system/metrics.ts'
import { Readiness } from '../../controller/src/system/readiness.ts'
import { ensureInstallation } from '../../controller/src/system/service.ts'
import { VERSION } from '../../proto/src/product-version.ts'
import { createTestDatabase, type TestDatabase } from './db.ts'

export interface TestContext {
  ctx: AppContext
  testDb: TestDatabase
  close(): Promise<void>
}

/** A real AppContext on this file's own database, for in-process route and service tests. */
export async function createTestContext(opts: { log?: Logger; env?: Record<string, string>; masterKey?: Buffer } = {}): Promise<TestContext> {
  const testDb = await createTestDatabase()
  const { database } = testDb
  const ctx: AppContext = {
    db: database.db,
    database,
    log: opts.log ?? createLogger({ level: 'silent' }),
    config: loadConfig({ OPSC_DATA_DIR: '/nonexistent-test-data-dir', ...opts.env }),
    metrics: createMetrics(VERSION),
    readiness: new Readiness(database, shippedMigrationCount()),
    keyring: createKeyring([opts.masterKey ?? randomBytes(32)]),
    version: VERSION,
    installationId: await ensureInstallation(database.db),
    nodeId: randomUUID(),
    startedAt: new Date(),
    clock: () => new Date(),
  }
  return { ctx, testDb, close: () => testDb.drop() }
}
