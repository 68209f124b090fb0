import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createPostgresDatabase, dropPostgresDatabase, testBackend } from '../../../test/harness/db.ts'
import { ensureInstallation } from '../system/service.ts'
import { openDatabase, type DatabaseTarget } from './client.ts'
import { appliedMigrationCount, migrateDatabase, shippedMigrationCount } from './migrate.ts'

/** An empty database of the backend under test (never migrated). */
async function emptyTarget(): Promise<{ target: DatabaseTarget; drop: () => Promise<void> }> {
  if ((await testBackend()) === 'pglite') return { target: { kind: 'pglite' }, drop: async () => {} }
  const url = await createPostgresDatabase({ migrated: false })
  return { target: { kind: 'postgres', url }, drop: () => dropPostgresDatabase(url) }
}

test('applies every shipped migration to an empty database, and a second run changes nothing', async () => {
  const { target, drop } = await emptyTarget()
  const database = await openDatabase(target)
  try {
    assert.equal(await appliedMigrationCount(database), 0)
    await migrateDatabase(database)
    assert.equal(await appliedMigrationCount(database), shippedMigrationCount())
    await migrateDatabase(database)
    assert.equal(await appliedMigrationCount(database), shippedMigrationCount())
  } finally {
    await database.close()
    await drop()
  }
})

test('controllers starting together migrate once and agree on one installation id', async (t) => {
  if ((await testBackend()) !== 'postgres') return t.skip('several processes share a database only on Postgres')
  const url = await createPostgresDatabase({ migrated: false })
  const databases = await Promise.all([1, 2, 3].map(() => openDatabase({ kind: 'postgres', url })))
  try {
    await Promise.all(databases.map((d) => migrateDatabase(d)))
    const ids = await Promise.all(databases.map((d) => ensureInstallation(d.db)))
    assert.equal(new Set(ids).size, 1)
    assert.equal(await appliedMigrationCount(databases[0]!), shippedMigrationCount())
  } finally {
    await Promise.all(databases.map((d) => d.close()))
    await dropPostgresDatabase(url)
  }
})

test('an unreachable Postgres is a clear UnavailableError without the password', async () => {
  await assert.rejects(openDatabase({ kind: 'postgres', url: 'postgres://ops:s3cret@127.0.0.1:1/nowhere' }), (err: Error) => {
    assert.equal(err.name, 'UnavailableError')
    assert.match(err.message, /^cannot reach the database \(postgres:\/\/ops:\*\*\*@127\.0\.0\.1:1\/nowhere\): ECONNREFUSED/)
    assert.ok(!err.message.includes('s3cret'))
    return true
  })
})

test('the embedded database keeps its data across reopen', async () => {
  const { mkdtempSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const dir = mkdtempSync(`${tmpdir()}/opsc-pglite-`)
  const first = await openDatabase({ kind: 'pglite', dir })
  await migrateDatabase(first)
  const id = await ensureInstallation(first.db)
  await first.close()
  const second = await openDatabase({ kind: 'pglite', dir })
  try {
    assert.equal(await appliedMigrationCount(second), shippedMigrationCount())
    assert.equal(await ensureInstallation(second.db), id)
  } finally {
    await second.close()
  }
})
