import { z } from 'zod'
import { abortOutcome, aborted, connectionError, oneLine, runStep, StepFailure, useCredential } from './outcome.ts'
import { openMysql, openPostgres, StatementError, type DatabaseCredential, type JsonValue, type Row, type SqlSession } from './sql-drivers.ts'
import type { StepExecutor, StepOutputSink } from './types.ts'

/*
 * `sql.query|execute|script` against a `database` credential: PostgreSQL through postgres.js,
 * MySQL/MariaDB through mysql2, one dedicated connection per step, always closed.
 *
 * Parameters: `params` are bound by the server, never pasted into the text, so values from
 * templates or other steps cannot change the statement. Placeholders are `$1, $2, …` for
 * postgres and `?` for mysql (server-side prepared statement). `sql.script` takes no params.
 */

const Scalar = z.union([z.string().max(1024 * 1024), z.number(), z.boolean(), z.null()])

export const SqlInput = z
  .object({
    /** Name or id of a database credential. */
    credential: z.string().min(1).max(200),
    /** For sql.query and sql.execute: one statement. */
    query: z.string().min(1).max(1024 * 1024).optional(),
    /** For sql.script: statements separated by `;`, run in one transaction. */
    script: z.string().min(1).max(16 * 1024 * 1024).optional(),
    params: z.array(Scalar).max(10_000).default([]),
    /** sql.query: rows kept (the rest is not fetched; `truncated` says so). */
    max_rows: z.number().int().min(1).max(100_000).default(1000),
    /** Another database on the same server than the credential's. */
    database: z.string().trim().min(1).max(128).optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    if ((v.query === undefined) === (v.script === undefined)) ctx.addIssue({ code: 'custom', path: ['query'], message: 'give exactly one of query (sql.query, sql.execute) or script (sql.script)' })
  })
export type SqlInput = z.output<typeof SqlInput>

interface QueryResult {
  columns: string[]
  rows: Row[]
  row_count: number
  truncated: boolean
}

export const sqlExecutor: StepExecutor<SqlInput> = {
  types: ['sql.query', 'sql.execute', 'sql.script'],
  input: SqlInput,
  needsTarget: false,
  run(type, input, x) {
    return runStep(x, async (signal) => {
      const text = checkFields(type, input)
      const cred = await useCredential(x, input.credential, 'database')
      const database = input.database ?? cred.database
      const session = cred.driver === 'postgres' ? openPostgres(cred, database, x.output) : openMysql(cred, database, type === 'sql.script')
      const onAbort = () => session.abort()
      signal.addEventListener('abort', onAbort, { once: true })
      const stop = aborted(signal)
      try {
        return await Promise.race([perform(type, session, text, input, x.output), stop.promise.then(() => abortOutcome(x))])
      } catch (err) {
        if (signal.aborted) throw err
        describeError(err, x.output)
        throw new StepFailure(scrub(failureMessage(err, cred), cred.password), undefined, { cause: err })
      } finally {
        stop.dispose()
        signal.removeEventListener('abort', onAbort)
        await session.close()
      }
    })
  },
}

/** The statement text for the type; the schema cannot see the type, so the pairing is checked here. */
function checkFields(type: string, input: SqlInput): string {
  if (type === 'sql.script') {
    if (input.script === undefined) throw new StepFailure('sql.script takes `script`, not `query`')
    if (input.params.length > 0) throw new StepFailure('sql.script takes no params; use sql.execute for parameterised statements')
    return input.script
  }
  if (type !== 'sql.query' && type !== 'sql.execute') throw new Error(`sqlExecutor cannot run ${type}`)
  if (input.query === undefined) throw new StepFailure(`${type} takes \`query\`, not \`script\``)
  return input.query
}

async function perform(type: string, session: SqlSession, text: string, input: SqlInput, output: StepOutputSink) {
  if (type === 'sql.query') {
    const { columns, rows, truncated } = await session.query(text, input.params, input.max_rows)
    output.write('stdout', formatTable(columns, rows))
    output.write('stdout', `(${rows.length} row${rows.length === 1 ? '' : 's'}${truncated ? `, truncated at max_rows ${input.max_rows}` : ''})\n`)
    return { status: 'succeeded' as const, result: { columns, rows, row_count: rows.length, truncated } satisfies QueryResult }
  }
  if (type === 'sql.execute') {
    const affected = await session.execute(text, input.params)
    output.write('stdout', `${affected} row${affected === 1 ? '' : 's'} affected\n`)
    return { status: 'succeeded' as const, result: { affected_rows: affected } }
  }
  const result = await session.script(text)
  output.write('stdout', `${result.statements} statement${result.statements === 1 ? '' : 's'} committed, ${result.affected_rows} row${result.affected_rows === 1 ? '' : 's'} affected\n`)
  return { status: 'succeeded' as const, result }
}

// ---------------------------------------------------------------------------------------------
// Output and errors

const MAX_CELL = 80

/** A psql-like table: header, rule, one line per row; long or multi-line cells shortened. */
export function formatTable(columns: string[], rows: Row[]): string {
  if (columns.length === 0) return ''
  const cell = (v: JsonValue | undefined) => {
    const text = (v === null || v === undefined ? 'NULL' : typeof v === 'string' ? v : JSON.stringify(v)).replace(/\r?\n/g, '\\n').replace(/\t/g, ' ')
    return text.length > MAX_CELL ? `${text.slice(0, MAX_CELL - 1)}…` : text
  }
  const cells = rows.map((r) => columns.map((c) => cell(r[c])))
  const widths = columns.map((c, i) => cells.reduce((w, row) => Math.max(w, row[i]!.length), c.length))
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join(' | ').trimEnd()
  return [line(columns), widths.map((w) => '-'.repeat(w)).join('-+-'), ...cells.map(line)].join('\n') + '\n'
}

/** The server's detail and hint (postgres) go to stderr; the one-line message becomes the error. */
function describeError(err: unknown, output: StepOutputSink): void {
  const inner = err instanceof StatementError ? err.cause : err
  const { detail, hint } = (inner ?? {}) as { detail?: unknown; hint?: unknown }
  if (typeof detail === 'string' && detail) output.write('stderr', `DETAIL: ${detail}\n`)
  if (typeof hint === 'string' && hint) output.write('stderr', `HINT: ${hint}\n`)
}

const SOCKET_CODES = /^(E[A-Z]+|ERR_(SSL|TLS)_.*|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_.*|CERT_.*)$/

function failureMessage(err: unknown, cred: DatabaseCredential): string {
  if (err instanceof StatementError) return `${err.message}: ${failureMessage(err.cause, cred)}`
  if (err instanceof StepFailure) return err.message
  const code = (err as { code?: unknown }).code
  const where = `${cred.host}:${cred.port ?? (cred.driver === 'postgres' ? 5432 : 3306)}`
  const message = err instanceof Error ? err.message : String(err)
  // postgres.js reports a server that refuses TLS as a reset socket.
  if (cred.tls_mode !== 'disable' && /before secure TLS connection was established/.test(message)) {
    return `could not establish TLS with ${where} (does the server accept TLS? tls_mode is ${cred.tls_mode})`
  }
  if (typeof code === 'string' && SOCKET_CODES.test(code)) return connectionError(err, where, cred.host).message
  if (code === 'CONNECT_TIMEOUT' || code === 'ETIMEDOUT') return `timed out connecting to ${where}`
  return oneLine(message)
}

/** Servers do not echo passwords, but a driver message might; the engine masks too, we do not rely on it. */
function scrub(message: string, secret: string): string {
  return secret.length >= 4 ? message.replaceAll(secret, '***') : message
}
