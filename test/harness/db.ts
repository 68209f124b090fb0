import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import postgres from 'postgres'
import { openDatabase, type Database } from '../../controller/src/db/client.ts'
import { migrateDatabase, migrationsFolder } from '../../controller/src/db/migrate.ts'

/**
 * Each test file gets its own database: a copy of a migrated template on the real Postgres
 * (127.0.0.1:5432, or TEST_DATABASE_URL) when reachable, otherwise an in-memory PGlite.
 * OPSC_TEST_DB=pglite forces PGlite; OPSC_TEST_DB=postgres makes an unreachable Postgres an error.
 */
export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const TEST_DB_PREFIX = 'opsc_test_'
const TEMPLATE_LOCK_KEY = 0x6f707374

export type TestBackend = 'postgres' | 'pglite'

let backendPromise: Promise<TestBackend> | undefined

export function testBackend(): Promise<TestBackend> {
  return (backendPromise ??= chooseBackend())
}

async function chooseBackend(): Promise<TestBackend> {
  const wanted = process.env.OPSC_TEST_DB
  if (wanted === 'pglite') return 'pglite'
  const admin = postgres(ADMIN_URL, { max: 1, connect_timeout: 3, onnotice: () => {} })
  try {
    await admin`select 1`
    return 'postgres'
  } catch (err) {
    if (wanted === 'postgres') throw new Error(`OPSC_TEST_DB=postgres but ${ADMIN_URL} is unreachable: ${(err as Error).message}`)
    return 'pglite'
  } finally {
    await admin.end({ timeout: 1 })
  }
}

export interface TestDatabase {
  database: Database
  backend: TestBackend
  /** Set for Postgres: a URL a spawned controller can use. */
  url?: string
  drop(): Promise<void>
}

/** A migrated, isolated database for one test file. */
export async function createTestDatabase(): Promise<TestDatabase> {
  if ((await testBackend()) === 'pglite') {
    const snapshot = existsSync(pgliteSnapshotPath()) ? new Blob([readFileSync(pgliteSnapshotPath())]) : undefined
    const database = await openDatabase({ kind: 'pglite', snapshot })
    if (!snapshot) await migrateDatabase(database)
    return { database, backend: 'pglite', drop: () => database.close() }
  }
  const url = await createPostgresDatabase({ migrated: true })
  const database = await openDatabase({ kind: 'postgres', url })
  return {
    database,
    backend: 'postgres',
    url,
    drop: async () => {
      await database.close()
      await dropPostgresDatabase(url)
    },
  }
}

/** A new Postgres database, empty or copied from the migrated template. */
export async function createPostgresDatabase(opts: { migrated: boolean }): Promise<string> {
  const template = opts.migrated ? await ensureTemplate() : 'template0'
  const name = `${TEST_DB_PREFIX}${process.pid}_${randomBytes(4).toString('hex')}`
  await withAdmin(async (sql) => {
    // Copies from one template can collide while another copy is starting; retry briefly.
    for (let attempt = 0; ; attempt++) {
      try {
        await sql.unsafe(`create database "${name}" template "${template}"`)
        return
      } catch (err) {
        if (attempt >= 20 || !/being accessed by other users/.test((err as Error).message)) throw err
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 200))
      }
    }
  })
  return databaseUrl(name)
}

export async function dropPostgresDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1)
  await withAdmin((sql) => sql.unsafe(`drop database if exists "${name}" with (force)`))
}

/** Drops databases left behind by interrupted runs: only those whose creating process is gone. */
export async function dropStaleTestDatabases(): Promise<number> {
  return withAdmin(async (sql) => {
    const rows = await sql<{ datname: string }[]>`select datname from pg_database where datname like ${TEST_DB_PREFIX + '%'}`
    const stale = rows.filter(({ datname }) => !processAlive(Number(datname.slice(TEST_DB_PREFIX.length).split('_')[0])))
    for (const { datname } of stale) await sql.unsafe(`drop database if exists "${datname}" with (force)`)
    return stale.length
  })
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function databaseUrl(name: string): string {
  const u = new URL(ADMIN_URL)
  u.pathname = `/${name}`
  return u.toString()
}

async function withAdmin<T>(fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(ADMIN_URL, { max: 1, connect_timeout: 5, onnotice: () => {} })
  try {
    return await fn(sql)
  } finally {
    await sql.end({ timeout: 5 })
  }
}

/** The template's name carries a hash of the migrations, so changing them builds a new one. */
export function templateName(): string {
  const folder = migrationsFolder()
  const hash = createHash('sha256')
  for (const file of readdirSync(folder).filter((f) => f.endsWith('.sql')).sort()) {
    hash.update(file).update(readFileSync(path.join(folder, file)))
  }
  return `opsc_tpl_${hash.digest('hex').slice(0, 16)}`
}

let templatePromise: Promise<string> | undefined

export function ensureTemplate(): Promise<string> {
  return (templatePromise ??= buildTemplate())
}

async function buildTemplate(): Promise<string> {
  const name = templateName()
  await withAdmin(async (sql) => {
    // Test files start in parallel processes; the lock makes one of them build the template.
    await sql`select pg_advisory_lock(${TEMPLATE_LOCK_KEY})`
    try {
      const [exists] = await sql`select 1 from pg_database where datname = ${name}`
      if (exists) return
      await sql.unsafe(`create database "${name}" template template0`)
      const database = await openDatabase({ kind: 'postgres', url: databaseUrl(name) })
      try {
        await migrateDatabase(database)
      } finally {
        await database.close()
      }
    } finally {
      await sql`select pg_advisory_unlock(${TEMPLATE_LOCK_KEY})`
    }
  })
  return name
}

/** A migrated PGlite data dir, dumped once per migration set, so test files skip initdb (seconds each). */
export function pgliteSnapshotPath(): string {
  return path.join(tmpdir(), `${templateName()}.pglite.tar.gz`)
}

export async function ensurePgliteSnapshot(): Promise<string> {
  const file = pgliteSnapshotPath()
  if (existsSync(file)) return file
  const database = await openDatabase({ kind: 'pglite' })
  try {
    await migrateDatabase(database)
    const client = (database.db as unknown as { $client: { dumpDataDir(c: 'gzip'): Promise<Blob> } }).$client
    const tmp = `${file}.${process.pid}.tmp`
    writeFileSync(tmp, Buffer.from(await (await client.dumpDataDir('gzip')).arrayBuffer()))
    renameSync(tmp, file)
  } finally {
    await database.close()
  }
  return file
}
