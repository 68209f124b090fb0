import mysql from 'mysql2'
import postgres from 'postgres'
import type { CredentialOf } from './outcome.ts'
import { splitPostgresScript } from './sql-script.ts'
import type { StepOutputSink } from './types.ts'

/*
 * The two drivers behind the sql steps, as one SqlSession each: PostgreSQL through postgres.js,
 * MySQL/MariaDB through mysql2. One dedicated connection per step; rows come back JSON-ready.
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }
export type Row = Record<string, JsonValue>

/** One connection, whichever the driver. */
export interface SqlSession {
  query(text: string, params: unknown[], maxRows: number): Promise<{ columns: string[]; rows: Row[]; truncated: boolean }>
  execute(text: string, params: unknown[]): Promise<number>
  script(text: string): Promise<{ statements: number; affected_rows: number }>
  /** Stops the running statement on the server (best effort) and drops the connection. */
  abort(): void
  close(): Promise<void>
}

export type DatabaseCredential = CredentialOf<'database'>

// A connect attempt that takes longer is dead (the step's own timeout covers the statement itself).
const CONNECT_TIMEOUT_MS = 15_000

// ---------------------------------------------------------------------------------------------
// PostgreSQL

function pgSsl(cred: DatabaseCredential): boolean | object {
  switch (cred.tls_mode) {
    case 'disable':
      return false
    case 'require':
      return { rejectUnauthorized: false }
    case 'verify_ca':
      // The chain is checked, the host name is not.
      return { rejectUnauthorized: true, ca: cred.tls_ca, checkServerIdentity: () => undefined }
    case 'verify_full':
      return { rejectUnauthorized: true, ca: cred.tls_ca }
  }
}

export function openPostgres(cred: DatabaseCredential, database: string, output: StepOutputSink): SqlSession {
  const sql = postgres({
    host: cred.host,
    port: cred.port ?? 5432,
    database,
    username: cred.username,
    password: cred.password,
    ssl: pgSsl(cred) as boolean,
    max: 1,
    prepare: false,
    connect_timeout: CONNECT_TIMEOUT_MS / 1000,
    connection: { application_name: 'opsconductor' },
    // postgres.js prints notices with console.log unless told otherwise.
    onnotice: (n) => output.write('stderr', `${n.severity ?? 'NOTICE'}: ${n.message}\n`),
  })
  let current: { cancel(): unknown } | undefined
  let aborted = false
  return {
    async query(text, params, maxRows) {
      const rows: Row[] = []
      let truncated = false
      const q = sql.unsafe(text, params as never[])
      current = q
      // A cursor fetches in batches, so a huge result is never held beyond max_rows.
      const res = await q.cursor(Math.min(maxRows + 1, 1000), (batch) => {
        for (const row of batch) {
          if (rows.length >= maxRows) {
            truncated = true
            return sql.CLOSE
          }
          rows.push(jsonRow(row))
        }
        return undefined
      })
      const columns = rows.length > 0 ? Object.keys(rows[0]!) : ((res as { columns?: { name: string }[] }).columns ?? []).map((c) => c.name)
      return { columns, rows, truncated }
    },
    async execute(text, params) {
      const q = sql.unsafe(text, params as never[])
      current = q
      return (await q).count ?? 0
    },
    async script(text) {
      const statements = splitPostgresScript(text)
      let affected = 0
      await sql.begin(async (tx) => {
        for (const [i, statement] of statements.entries()) {
          const q = tx.unsafe(statement)
          current = q
          try {
            affected += (await q).count ?? 0
          } catch (err) {
            throw new StatementError(i + 1, err)
          }
        }
      })
      return { statements: statements.length, affected_rows: affected }
    },
    abort() {
      aborted = true
      // A CancelRequest on its own connection: the server stops the statement (and so the transaction).
      current?.cancel()
    },
    async close() {
      await sql.end({ timeout: aborted ? 0 : 5 }).catch(() => {})
    },
  }
}

/** The n-th statement of a script failed (the message says which). */
export class StatementError extends Error {
  constructor(
    readonly index: number,
    cause: unknown,
  ) {
    super(`statement ${index}`, { cause })
  }
}

// ---------------------------------------------------------------------------------------------
// MySQL / MariaDB

function mysqlSsl(cred: DatabaseCredential): mysql.SslOptions | undefined {
  switch (cred.tls_mode) {
    case 'disable':
      return undefined
    case 'require':
      return { rejectUnauthorized: false }
    case 'verify_ca':
      return { rejectUnauthorized: true, verifyIdentity: false, ...(cred.tls_ca ? { ca: cred.tls_ca } : {}) } as mysql.SslOptions
    case 'verify_full':
      return { rejectUnauthorized: true, verifyIdentity: true, ...(cred.tls_ca ? { ca: cred.tls_ca } : {}) } as mysql.SslOptions
  }
}

type MysqlHandlers = { fields?(fields: unknown[] | undefined): void; row(row: Record<string, unknown>, isOk: boolean): boolean | void }

export function openMysql(cred: DatabaseCredential, database: string, multipleStatements: boolean): SqlSession {
  const ssl = mysqlSsl(cred)
  const options: mysql.ConnectionOptions = {
    host: cred.host,
    port: cred.port ?? 3306,
    user: cred.username,
    password: cred.password,
    database,
    ...(ssl ? { ssl } : {}),
    connectTimeout: CONNECT_TIMEOUT_MS,
    // Exact values as text: no precision lost in BIGINT/DECIMAL, no time zone applied to DATETIME.
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    multipleStatements,
  }
  const conn = mysql.createConnection(options)
  // A fatal error (a refused login, a dropped socket) is emitted on the connection, not on the
  // queued command: every command races it. The listener also keeps it from crashing the process.
  // Set once the connection is unusable (fatal error, or dropped by us): close() then skips QUIT.
  let gone = false
  let fail: (err: unknown) => void = () => {}
  const fatal = new Promise<never>((_resolve, reject) => (fail = reject))
  fatal.catch(() => {})
  conn.on('error', (err) => {
    gone = true
    fail(err)
  })
  const drop = () => {
    gone = true
    conn.destroy()
  }
  let killing: Promise<void> | undefined

  /** Runs one command, streaming: `row` returns true to stop reading (the connection is then dropped). */
  const stream = (text: string, params: unknown[], on: MysqlHandlers) => Promise.race([command(text, params, on), fatal])
  const command = (text: string, params: unknown[], on: MysqlHandlers) =>
    new Promise<void>((resolve, reject) => {
      const cmd = params.length > 0 ? conn.execute(text, params as never[]) : conn.query(text)
      let okNext = false
      cmd.on('error', reject)
      cmd.on('fields', (fields: unknown[] | undefined) => {
        okNext = fields === undefined
        on.fields?.(fields)
      })
      cmd.on('result', (row: Record<string, unknown>) => {
        if (on.row(row, okNext) === true) {
          drop()
          resolve()
        }
      })
      cmd.on('end', () => resolve())
    })

  return {
    async query(text, params, maxRows) {
      let columns: string[] | undefined
      const rows: Row[] = []
      let truncated = false
      await stream(text, params, {
        fields: (fields) => {
          columns ??= fields?.map((f) => (f as { name: string }).name)
        },
        row: (row, isOk) => {
          if (isOk) return false
          if (rows.length >= maxRows) return (truncated = true)
          rows.push(jsonRow(row))
          return false
        },
      })
      return { columns: columns ?? [], rows, truncated }
    },
    async execute(text, params) {
      let affected = 0
      await stream(text, params, {
        row: (row, isOk) => {
          affected += isOk ? Number(row.affectedRows ?? 0) : 1
        },
      })
      return affected
    },
    async script(text) {
      let statements = 0
      let affected = 0
      await stream('START TRANSACTION', [], { row: () => {} })
      try {
        await stream(text, [], {
          fields: () => void statements++,
          row: (row, isOk) => void (affected += isOk ? Number(row.affectedRows ?? 0) : 0),
        })
        await stream('COMMIT', [], { row: () => {} })
      } catch (err) {
        await stream('ROLLBACK', [], { row: () => {} }).catch(() => {})
        throw err
      }
      return { statements, affected_rows: affected }
    },
    abort() {
      const threadId = conn.threadId
      drop()
      // Dropping the connection does not stop a running statement in MySQL: KILL QUERY does.
      if (threadId) killing = killQuery({ ...options, multipleStatements: false }, threadId)
    },
    async close() {
      await killing
      if (!gone) {
        // A polite QUIT, but never wait long for it.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 2000)
          conn.end(() => {
            clearTimeout(timer)
            resolve()
          })
        })
      }
      conn.destroy()
    },
  }
}

/** Best effort, at most a few seconds: a login failure is emitted on the connection, not the query. */
function killQuery(options: mysql.ConnectionOptions, threadId: number): Promise<void> {
  return new Promise((resolve) => {
    const killer = mysql.createConnection({ ...options, connectTimeout: 5000 })
    const done = () => {
      clearTimeout(timer)
      killer.destroy()
      resolve()
    }
    const timer = setTimeout(done, 6000)
    killer.on('error', done)
    killer.query(`KILL QUERY ${Number(threadId)}`, done)
  })
}

// ---------------------------------------------------------------------------------------------
// Values

function jsonValue(v: unknown): JsonValue {
  if (v === null || v === undefined) return null
  if (typeof v === 'string' || typeof v === 'boolean') return v
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v)
  if (typeof v === 'bigint') return v.toString()
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? String(v) : v.toISOString()
  // bytea / BLOB: PostgreSQL's own hex text form.
  if (v instanceof Uint8Array) return `\\x${Buffer.from(v).toString('hex')}`
  if (Array.isArray(v)) return v.map(jsonValue)
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonValue(x)]))
  return String(v)
}

export const jsonRow = (row: Record<string, unknown>): Row => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, jsonValue(v)]))
