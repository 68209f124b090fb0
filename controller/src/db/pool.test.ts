import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { sql } from 'drizzle-orm'
import { createPostgresDatabase, dropPostgresDatabase, testBackend } from '../../../test/harness/db.ts'
import { loadConfig } from '../config.ts'
import { databaseTarget } from '../main.ts'
import { openDatabase, type Database } from './client.ts'
import { rowsOf } from './migrate.ts'

const skip = (await testBackend()) !== 'postgres' ? 'the pool is Postgres only' : false
let url: string | undefined
let database: Database | undefined
after(async () => {
  await database?.close()
  if (url) await dropPostgresDatabase(url)
})

test('OPSC_DB_POOL_SIZE caps the connections one controller opens', { skip }, async () => {
  url = await createPostgresDatabase({ migrated: false })
  database = await openDatabase(databaseTarget(loadConfig({ DATABASE_URL: url, OPSC_DB_POOL_SIZE: '3' })))
  const pids = await Promise.all(
    Array.from({ length: 12 }, async () => rowsOf<{ pid: number }>(await database!.db.execute(sql`select pg_backend_pid() as pid, pg_sleep(0.2)`))[0]!.pid),
  )
  assert.equal(new Set(pids).size, 3, 'twelve concurrent queries shared three connections')
})

test('a pool size outside 1–1000 is refused, naming the variable', () => {
  assert.throws(() => loadConfig({ OPSC_DB_POOL_SIZE: '0' }), { message: /^OPSC_DB_POOL_SIZE/ })
  assert.equal(loadConfig({}).OPSC_DB_POOL_SIZE, 10)
})
