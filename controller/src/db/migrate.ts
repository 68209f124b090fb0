import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { sql } from 'drizzle-orm'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator'
import postgres from 'postgres'
import { UnavailableError } from '../errors.ts'
import { describeCause, type Database } from './client.ts'
import { LOCK } from './locks.ts'

/** Bundled builds put migrations beside the bundle; source runs find them beside this file. */
export function migrationsFolder(): string {
  return process.env.OPSC_MIGRATIONS_DIR ?? path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations')
}

/** How many migrations this build ships (the journal drizzle-kit writes). */
export function shippedMigrationCount(folder = migrationsFolder()): number {
  const journal = JSON.parse(readFileSync(path.join(folder, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] }
  return journal.entries.length
}

/** Applies pending migrations; safe when several controllers start at once against one Postgres. */
export async function migrateDatabase(database: Database): Promise<void> {
  const migrationsFolderPath = migrationsFolder()
  try {
    if (database.target.kind === 'postgres') {
      // One dedicated connection so the session-level advisory lock covers the whole migration.
      const client = postgres(database.target.url, { max: 1, connect_timeout: 5, onnotice: () => {} })
      try {
        await client`select pg_advisory_lock(${LOCK.migration})`
        await migratePostgres(drizzlePostgres({ client }), { migrationsFolder: migrationsFolderPath })
        await client`select pg_advisory_unlock(${LOCK.migration})`
      } finally {
        await client.end({ timeout: 5 })
      }
    } else {
      await migratePglite(database.db as unknown as ReturnType<typeof drizzlePglite>, { migrationsFolder: migrationsFolderPath })
    }
  } catch (err) {
    throw new UnavailableError(`database migration failed (${database.description}): ${describeCause(err)}`, { cause: err })
  }
}

/** Migrations recorded as applied in the database; 0 when none ever ran. */
export async function appliedMigrationCount(database: Database): Promise<number> {
  const exists = await database.db.execute(
    sql`select to_regclass('drizzle.__drizzle_migrations') is not null as present`,
  )
  if (!rowsOf<{ present: boolean }>(exists)[0]?.present) return 0
  const counted = await database.db.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`)
  return Number(rowsOf<{ n: number }>(counted)[0]?.n ?? 0)
}

/** postgres.js returns an array of rows, PGlite an object with `rows`. */
export function rowsOf<T>(result: unknown): T[] {
  return Array.isArray(result) ? (result as T[]) : ((result as { rows: T[] }).rows ?? [])
}
