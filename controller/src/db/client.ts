import { existsSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm'
import { sql, type SQL } from 'drizzle-orm'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import postgres from 'postgres'
import { UnavailableError } from '../errors.ts'
import { redactUrl } from '../log.ts'
import * as schema from './schema.ts'
import { settledWithin } from '../wait.ts'

export type Schema = typeof schema
/** The one query interface both backends share; features take this, never a driver. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>

export type DatabaseTarget =
  /** `poolSize`: connections this process opens at most (default 10), plus one for LISTEN. */
  | { kind: 'postgres'; url: string; poolSize?: number }
  /** `dir` undefined → in-memory; `snapshot` starts from a dumped data dir instead of running initdb. */
  | { kind: 'pglite'; dir?: string; snapshot?: Blob }

export interface Database {
  readonly db: Db
  readonly target: DatabaseTarget
  /** Where the data lives, safe to log (no password). */
  readonly description: string
  /** Throws UnavailableError when the database cannot answer. */
  ping(): Promise<void>
  /** LISTEN on a channel (one dedicated connection per process); resolves to the function that stops listening. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>
  close(): Promise<void>
}

/** Opens the database and proves it answers; an unreachable one is an UnavailableError with the reason. */
export async function openDatabase(target: DatabaseTarget): Promise<Database> {
  const database = target.kind === 'postgres' ? openPostgres(target.url, target.poolSize) : await openPglite(target.dir, target.snapshot)
  await database.ping()
  return database
}

const UNLISTEN_WAIT_MS = 2_000

function openPostgres(url: string, poolSize = 10): Database {
  const client = postgres(url, {
    max: poolSize,
    connect_timeout: 5,
    idle_timeout: 60,
    onnotice: () => {},
    connection: { application_name: 'opsconductor' },
  })
  const db = drizzlePostgres({ client, schema }) as unknown as Db
  const description = redactUrl(url)
  return {
    db,
    target: { kind: 'postgres', url },
    description,
    ping: () => pingWith(db, description),
    listen: async (channel, onNotify) => {
      const { unlisten } = await client.listen(channel, (payload) => onNotify(payload))
      // UNLISTEN waits for the listen connection, which may be reconnecting to a database that is
      // gone: bounded, since close() ends that connection anyway.
      return () => settledWithin(UNLISTEN_WAIT_MS, unlisten()).then(() => {})
    },
    close: () => client.end({ timeout: 5 }),
  }
}

/** The extensions the migrations create (Postgres ships them as contrib; PGlite loads them on demand). */
const PGLITE_EXTENSIONS = { pg_trgm }

async function openPglite(dir: string | undefined, snapshot: Blob | undefined): Promise<Database> {
  const fresh = dir !== undefined && !existsSync(path.join(dir, 'PG_VERSION'))
  if (dir) mkdirSync(dir, { recursive: true, mode: 0o700 })
  let client: PGlite
  try {
    client = await PGlite.create({ dataDir: dir, loadDataDir: snapshot, extensions: PGLITE_EXTENSIONS })
    if (fresh) {
      // initdb leaves ~400 MiB of WebAssembly memory behind; reopening (~0.6 s, first start only) releases it.
      await client.close()
      client = await PGlite.create({ dataDir: dir, extensions: PGLITE_EXTENSIONS })
    }
  } catch (err) {
    throw new UnavailableError(`cannot open the embedded database in ${dir ?? 'memory'}: ${describeCause(err)}`, { cause: err })
  }
  const db = drizzlePglite({ client, schema }) as unknown as Db
  const description = dir ? `embedded PGlite at ${dir}` : 'embedded PGlite in memory'
  return {
    db,
    target: { kind: 'pglite', dir },
    description,
    ping: () => pingWith(db, description),
    listen: async (channel, onNotify) => {
      const unlisten = await client.listen(channel, (payload) => onNotify(payload))
      return async () => {
        if (!client.closed) await unlisten()
      }
    },
    close: () => client.close(),
  }
}

async function pingWith(db: Db, description: string): Promise<void> {
  try {
    await db.execute(sql`select 1`)
  } catch (err) {
    throw new UnavailableError(`cannot reach the database (${description}): ${describeCause(err)}`, { cause: err })
  }
}

/** A short, secret-free reason for a driver error (postgres.js errors carry code and message). */
export function describeCause(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: unknown }
  if (e?.cause && !e.code) return describeCause(e.cause)
  const parts = [e?.code, e?.message].filter((p): p is string => typeof p === 'string' && p.length > 0)
  const unique = parts.filter((p, i) => !parts.slice(0, i).some((q) => q.includes(p) || p.includes(q)))
  return unique.join(': ') || String(err)
}

/** A unique constraint refused the write (Postgres 23505), whichever driver reported it. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; cause?: unknown; message?: string } | undefined
  if (!e) return false
  if (e.code === '23505') return true
  if (e.cause && e.cause !== err && isUniqueViolation(e.cause)) return true
  return /duplicate key value violates unique constraint/i.test(String(e.message))
}

/** A string Postgres accepts as a uuid (checked before a query, so a bad id is "not found", never a 500). */
export function isUuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)
}

/** Many uuids as one `uuid[]` parameter (`= any(…)`): one bind value however many ids, unlike `in (…)`. */
export function uuidArray(ids: readonly string[]): SQL {
  return sql`${`{${ids.join(',')}}`}::uuid[]`
}
