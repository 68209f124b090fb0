import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import postgres from 'postgres'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createMariadbDatabase, mariadbUnavailable, type TestMariadbDatabase } from '../../../test/harness/mariadb.ts'
import { createCredential } from '../credentials/service.ts'
import { CreateCredentialInput } from '../credentials/types.ts'
import { SqlInput, sqlExecutor } from './sql.ts'
import { executionContext } from './testing.ts'
import type { ExecutionContext, StepOutcome } from './types.ts'

/*
 * Against the real servers on this machine (and CI): PostgreSQL on 127.0.0.1:5432 (user postgres,
 * trust) and MariaDB on 127.0.0.1:3306 (root, empty password). Each run makes its own database
 * and user with a password, connects to it over TCP as that user, and drops both afterwards.
 */

const PG_ADMIN = { host: '127.0.0.1', port: 5432, username: 'postgres', database: 'postgres' }

async function pgReachable(): Promise<string | false> {
  const sql = postgres({ ...PG_ADMIN, max: 1, connect_timeout: 3, onnotice: () => {} })
  try {
    await sql`select 1`
    return false
  } catch (err) {
    return `PostgreSQL not reachable on 127.0.0.1:5432 (${(err as Error).message})`
  } finally {
    await sql.end({ timeout: 1 })
  }
}

const pgSkip = await pgReachable()
const mysqlSkip = (await mariadbUnavailable()) ?? false
if (pgSkip) console.log(`# skipping postgres sql tests: ${pgSkip}`)
if (mysqlSkip) console.log(`# skipping mysql sql tests: ${mysqlSkip}`)

const suffix = randomBytes(4).toString('hex')
const DB = `opsc_sql_${suffix}`
const USER = `opsc_sql_${suffix}`
const PASSWORD = `pw-${randomBytes(8).toString('hex')}`

let t: TestContext
before(async () => {
  t = await createTestContext()
  await createCredential(t.ctx, undefined, CreateCredentialInput.parse({ name: 'not-a-db', type: 'http_auth', scheme: 'bearer', token: 'tok' }))
})
after(() => t?.close())

const credentials = { created: new Set<string>() }
async function credential(name: string, fields: Record<string, unknown>): Promise<string> {
  if (!credentials.created.has(name)) {
    await createCredential(t.ctx, undefined, CreateCredentialInput.parse({ name, type: 'database', host: '127.0.0.1', tls_mode: 'disable', ...fields }))
    credentials.created.add(name)
  }
  return name
}

function run(type: string, input: Record<string, unknown>, overrides: Partial<ExecutionContext> = {}) {
  const x = executionContext(t.ctx, overrides)
  return { x, outcome: sqlExecutor.run(type, SqlInput.parse(input), x) }
}

async function ok(type: string, input: Record<string, unknown>) {
  const { x, outcome } = run(type, input)
  const result: StepOutcome = await outcome
  assert.equal(result.status, 'succeeded', result.error ?? '')
  return { x, result: result.result as any }
}

async function failed(type: string, input: Record<string, unknown>): Promise<string> {
  const { x, outcome } = run(type, input)
  const result = await outcome
  assert.equal(result.status, 'failed', JSON.stringify(result))
  const error = result.error!
  assert.ok(!error.includes(PASSWORD) && !x.stdout().includes(PASSWORD) && !x.stderr().includes(PASSWORD))
  assert.ok(!error.includes('\n    at '), 'no stack')
  return error
}

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  assert.fail(what)
}

async function closedPort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const port = (probe.address() as AddressInfo).port
  await new Promise((r) => probe.close(r))
  return port
}

describe('sql executor on PostgreSQL', { skip: pgSkip }, () => {
  let admin: postgres.Sql
  const cred = 'pg-app'
  before(async () => {
    admin = postgres({ ...PG_ADMIN, max: 1, onnotice: () => {} })
    await admin.unsafe(`create role ${USER} login password '${PASSWORD}'`)
    await admin.unsafe(`create database ${DB} owner ${USER}`)
    await credential(cred, { driver: 'postgres', port: 5432, database: DB, username: USER, password: PASSWORD })
  })
  after(async () => {
    if (!admin) return
    await admin.unsafe(`drop database if exists ${DB} with (force)`)
    await admin.unsafe(`drop role if exists ${USER}`)
    await admin.end({ timeout: 1 })
  })

  test('sql.query binds params and returns columns, JSON-friendly rows and a text table', async () => {
    const { x, result } = await ok('sql.query', {
      credential: cred,
      query: `select $1::int + 1 as n, $2::text as label, null as nothing, 9007199254740993::int8 as big, 1.50::numeric as price,
                     '2024-05-06T07:08:09Z'::timestamptz as at, '\\xdeadbeef'::bytea as bin, '{"a":[1,2]}'::jsonb as doc, true as flag`,
      params: [41, 'it\'s; drop table x --'],
    })
    assert.deepEqual(result.columns, ['n', 'label', 'nothing', 'big', 'price', 'at', 'bin', 'doc', 'flag'])
    assert.deepEqual(result.rows, [{ n: 42, label: "it's; drop table x --", nothing: null, big: '9007199254740993', price: '1.50', at: '2024-05-06T07:08:09.000Z', bin: '\\xdeadbeef', doc: { a: [1, 2] }, flag: true }])
    assert.equal(result.row_count, 1)
    assert.equal(result.truncated, false)
    const lines = x.stdout().split('\n')
    assert.match(lines[0]!, /^n  \| label +\| nothing \| big +\| price/)
    assert.match(lines[1]!, /^---\+-/)
    assert.match(lines[2]!, /^42 \| it's; drop table x -- \| NULL +\| 9007199254740993/)
    assert.equal(lines[3], '(1 row)')
  })

  test('sql.query keeps max_rows and says it truncated; an empty result still names its columns', async () => {
    const { x, result } = await ok('sql.query', { credential: cred, query: 'select g as id from generate_series(1, 5000) g', max_rows: 10 })
    assert.equal(result.row_count, 10)
    assert.equal(result.truncated, true)
    assert.deepEqual(result.rows.at(-1), { id: 10 })
    assert.match(x.stdout(), /\(10 rows, truncated at max_rows 10\)\n$/)
    const exact = await ok('sql.query', { credential: cred, query: 'select g as id from generate_series(1, 10) g', max_rows: 10 })
    assert.equal(exact.result.truncated, false)
    const empty = await ok('sql.query', { credential: cred, query: 'select 1 as a, 2 as b where false' })
    assert.deepEqual(empty.result, { columns: ['a', 'b'], rows: [], row_count: 0, truncated: false })
  })

  test('sql.execute reports affected rows; sql.script runs in one transaction and commits', async () => {
    const script = `
      create table item (id int primary key, name text); -- a comment; with a semicolon
      insert into item values (1, 'a;b'), (2, $$x;y$$);
      /* block; comment */
      insert into item values (3, E'it\\'s;');
      update item set name = name || '!' where id < 3;
    `
    const { x, result } = await ok('sql.script', { credential: cred, script })
    assert.deepEqual(result, { statements: 4, affected_rows: 5 })
    assert.match(x.stdout(), /4 statements committed, 5 rows affected/)
    const exec = await ok('sql.execute', { credential: cred, query: 'delete from item where id >= $1', params: [2] })
    assert.deepEqual(exec.result, { affected_rows: 2 })
    const rows = await ok('sql.query', { credential: cred, query: 'select id, name from item order by id' })
    assert.deepEqual(rows.result.rows, [{ id: 1, name: 'a;b!' }])
  })

  test('a failing script is rolled back and names the statement and the server message', async () => {
    await ok('sql.execute', { credential: cred, query: 'create table ledger (n int)' })
    const error = await failed('sql.script', { credential: cred, script: 'insert into ledger values (1); insert into nope values (2); insert into ledger values (3)' })
    assert.equal(error, 'statement 2: relation "nope" does not exist')
    const { result } = await ok('sql.query', { credential: cred, query: 'select count(*)::int as n from ledger' })
    assert.deepEqual(result.rows, [{ n: 0 }])
  })

  test('server errors fail the step with the server message; details go to stderr', async () => {
    assert.equal(await failed('sql.query', { credential: cred, query: 'select * from nope' }), 'relation "nope" does not exist')
    const { x, outcome } = run('sql.execute', { credential: cred, query: 'select 1/0' })
    assert.deepEqual(await outcome, { status: 'failed', error: 'division by zero' })
    assert.equal(x.stderr(), '')
    assert.match(await failed('sql.query', { credential: cred, query: 'select 1; select 2' }), /cannot insert multiple commands into a prepared statement/)
  })

  test('database overrides the credential database; an unknown one fails clearly', async () => {
    const { result } = await ok('sql.query', { credential: cred, query: 'select current_database() as db', database: 'postgres' })
    assert.deepEqual(result.rows, [{ db: 'postgres' }])
    assert.equal(await failed('sql.query', { credential: cred, query: 'select 1', database: `${DB}_missing` }), `database "${DB}_missing" does not exist`)
  })

  test('notices are written to stderr', async () => {
    const { x } = await ok('sql.execute', { credential: cred, query: `do $$ begin raise notice 'hello from plpgsql'; end $$` })
    assert.equal(x.stderr(), 'NOTICE: hello from plpgsql\n')
  })

  test('a cancel stops the statement on the server and returns at once', async () => {
    const marker = `opsc_cancel_${suffix}`
    const { x, outcome } = run('sql.query', { credential: cred, query: `select pg_sleep(30), '${marker}'` })
    setTimeout(() => x.abort('cancelled'), 300)
    const started = Date.now()
    assert.deepEqual(await outcome, { status: 'cancelled' })
    assert.ok(Date.now() - started < 3000)
    await eventually(async () => (await admin`select count(*)::int as n from pg_stat_activity where query like ${'%' + marker + '%'} and pid <> pg_backend_pid()`)[0]!.n === 0, 'the sleeping query is gone')
  })

  test('the step timeout ends a long script as timed_out and rolls it back', async () => {
    await ok('sql.execute', { credential: cred, query: 'create table slow (n int)' })
    const { outcome } = run('sql.script', { credential: cred, script: 'insert into slow values (1); select pg_sleep(30)' }, { timeoutMs: 400 })
    assert.deepEqual(await outcome, { status: 'timed_out' })
    await eventually(async () => (await admin.unsafe(`select count(*)::int as n from pg_stat_activity where datname = '${DB}' and query like '%pg_sleep(30)%' and pid <> pg_backend_pid()`))[0]!.n === 0, 'the script is gone')
    const { result } = await ok('sql.query', { credential: cred, query: 'select count(*)::int as n from slow' })
    assert.deepEqual(result.rows, [{ n: 0 }])
  })

  test('connection problems: refused, unknown role, TLS required by a server without it', async () => {
    const port = await closedPort()
    await credential('pg-closed', { driver: 'postgres', port, database: DB, username: USER, password: PASSWORD })
    assert.equal(await failed('sql.query', { credential: 'pg-closed', query: 'select 1' }), `connection refused by 127.0.0.1:${port}`)
    await credential('pg-nobody', { driver: 'postgres', database: DB, username: `${USER}_nobody`, password: PASSWORD })
    assert.equal(await failed('sql.query', { credential: 'pg-nobody', query: 'select 1' }), `role "${USER}_nobody" does not exist`)
    const [ssl] = await admin`show ssl`
    if (ssl?.ssl === 'off') {
      await credential('pg-tls', { driver: 'postgres', database: DB, username: USER, password: PASSWORD, tls_mode: 'require' })
      assert.equal(await failed('sql.query', { credential: 'pg-tls', query: 'select 1' }), 'could not establish TLS with 127.0.0.1:5432 (does the server accept TLS? tls_mode is require)')
    }
  })
})

describe('sql executor on MariaDB/MySQL', { skip: mysqlSkip }, () => {
  let db: TestMariadbDatabase | undefined
  let admin: TestMariadbDatabase['admin']
  const cred = 'my-app'
  before(async () => {
    db = await createMariadbDatabase({ database: DB, user: USER, password: PASSWORD })
    admin = db.admin
    await credential(cred, { driver: 'mysql', port: db.port, database: DB, username: USER, password: PASSWORD })
  })
  after(async () => {
    await db?.drop()
  })

  test('sql.query binds params (server-side) and returns columns, rows and a text table', async () => {
    const { x, result } = await ok('sql.query', {
      credential: cred,
      query: `select ? + 1 as n, ? as label, null as nothing, cast(9007199254740993 as signed) as big, cast(1.50 as decimal(5,2)) as price,
                     cast('2024-05-06 07:08:09' as datetime) as at, x'deadbeef' as bin, current_user() as who`,
      params: [41, "it's; drop table x --"],
    })
    assert.deepEqual(result.columns, ['n', 'label', 'nothing', 'big', 'price', 'at', 'bin', 'who'])
    const row = result.rows[0]
    assert.equal(Number(row.n), 42)
    assert.equal(row.label, "it's; drop table x --")
    assert.equal(row.nothing, null)
    assert.equal(row.big, '9007199254740993')
    assert.equal(row.price, '1.50')
    assert.equal(row.at, '2024-05-06 07:08:09')
    assert.equal(row.bin, '\\xdeadbeef')
    assert.match(row.who, new RegExp(`^${USER}@`))
    assert.match(x.stdout(), /^n +\| label +\| nothing \| big/)
    assert.match(x.stdout(), /\(1 row\)\n$/)
  })

  test('sql.query keeps max_rows and says it truncated; an empty result still names its columns', async () => {
    const query = 'with recursive s(n) as (select 1 union all select n + 1 from s where n < 5000) select n as id from s'
    const { result } = await ok('sql.query', { credential: cred, query, max_rows: 10 })
    assert.equal(result.row_count, 10)
    assert.equal(result.truncated, true)
    assert.deepEqual(result.rows.at(-1), { id: 10 })
    const empty = await ok('sql.query', { credential: cred, query: 'select 1 as a, 2 as b from dual where false' })
    assert.deepEqual(empty.result, { columns: ['a', 'b'], rows: [], row_count: 0, truncated: false })
  })

  test('sql.execute reports affected rows; sql.script runs in one transaction and commits', async () => {
    await ok('sql.execute', { credential: cred, query: 'create table item (id int primary key, name text) engine=InnoDB' })
    const script = `insert into item values (1, 'a;b'), (2, 'x');
      insert into item values (3, 'c');
      update item set name = concat(name, '!') where id < 3`
    const { result } = await ok('sql.script', { credential: cred, script })
    assert.deepEqual(result, { statements: 3, affected_rows: 5 })
    const exec = await ok('sql.execute', { credential: cred, query: 'delete from item where id >= ?', params: [2] })
    assert.deepEqual(exec.result, { affected_rows: 2 })
    const rows = await ok('sql.query', { credential: cred, query: 'select id, name from item order by id' })
    assert.deepEqual(rows.result.rows, [{ id: 1, name: 'a;b!' }])
  })

  test('a failing script is rolled back with the server message', async () => {
    await ok('sql.execute', { credential: cred, query: 'create table ledger (n int) engine=InnoDB' })
    const error = await failed('sql.script', { credential: cred, script: 'insert into ledger values (1); insert into nope values (2); insert into ledger values (3)' })
    assert.equal(error, `Table '${DB}.nope' doesn't exist`)
    const { result } = await ok('sql.query', { credential: cred, query: 'select count(*) as n from ledger' })
    assert.deepEqual(result.rows, [{ n: '0' }])
  })

  test('server errors and a wrong password fail with the server message, never the password', async () => {
    assert.equal(await failed('sql.query', { credential: cred, query: 'select * from nope' }), `Table '${DB}.nope' doesn't exist`)
    await credential('my-wrong', { driver: 'mysql', database: DB, username: USER, password: `${PASSWORD}-wrong` })
    assert.match(await failed('sql.query', { credential: 'my-wrong', query: 'select 1' }), new RegExp(`^Access denied for user '${USER}'@'[^']+' \\(using password: YES\\)$`))
  })

  test('a cancel kills the statement on the server and returns at once', async () => {
    const marker = `opsc_cancel_${suffix}`
    const { x, outcome } = run('sql.query', { credential: cred, query: `select sleep(30), '${marker}'` })
    setTimeout(() => x.abort('cancelled'), 300)
    const started = Date.now()
    assert.deepEqual(await outcome, { status: 'cancelled' })
    assert.ok(Date.now() - started < 3000)
    await eventually(async () => {
      const [rows] = await admin.query(`select count(*) as n from information_schema.processlist where info like ? and id <> connection_id()`, [`%${marker}%`])
      return Number((rows as { n: number }[])[0]!.n) === 0
    }, 'the sleeping query is gone')
  })

  test('the step timeout ends a long script as timed_out and rolls it back', async () => {
    await ok('sql.execute', { credential: cred, query: 'create table slow (n int) engine=InnoDB' })
    const { outcome } = run('sql.script', { credential: cred, script: 'insert into slow values (1); select sleep(30)' }, { timeoutMs: 400 })
    assert.deepEqual(await outcome, { status: 'timed_out' })
    await eventually(async () => {
      const [rows] = await admin.query(`select count(*) as n from information_schema.processlist where user = ?`, [USER])
      return Number((rows as { n: number }[])[0]!.n) === 0
    }, 'the script connection is gone')
    const { result } = await ok('sql.query', { credential: cred, query: 'select count(*) as n from slow' })
    assert.deepEqual(result.rows, [{ n: '0' }])
  })

  test('connection problems: refused, TLS required by a server without it', async () => {
    const port = await closedPort()
    await credential('my-closed', { driver: 'mysql', port, database: DB, username: USER, password: PASSWORD })
    assert.equal(await failed('sql.query', { credential: 'my-closed', query: 'select 1' }), `connection refused by 127.0.0.1:${port}`)
    const [vars] = await admin.query(`show variables like 'have_ssl'`)
    if ((vars as { Value: string }[])[0]?.Value !== 'YES') {
      await credential('my-tls', { driver: 'mysql', database: DB, username: USER, password: PASSWORD, tls_mode: 'require' })
      assert.match(await failed('sql.query', { credential: 'my-tls', query: 'select 1' }), /does not support secure connection/i)
    }
  })
})

describe('sql executor input', () => {
  test('exactly one of query or script, matching the type; params scalars only; strict', async () => {
    assert.equal(SqlInput.safeParse({ credential: 'c' }).success, false)
    assert.equal(SqlInput.safeParse({ credential: 'c', query: 'select 1', script: 'select 1' }).success, false)
    assert.equal(SqlInput.safeParse({ credential: 'c', query: 'select 1', params: [{ a: 1 }] }).success, false)
    assert.equal(SqlInput.safeParse({ credential: 'c', query: 'select 1', max_rows: 100_001 }).success, false)
    assert.equal(SqlInput.safeParse({ credential: 'c', query: 'select 1', timeout: 1 }).success, false)
    assert.deepEqual(SqlInput.parse({ credential: 'c', query: 'select 1' }), { credential: 'c', query: 'select 1', params: [], max_rows: 1000 })
    assert.deepEqual(await run('sql.script', { credential: 'c', query: 'select 1' }).outcome, { status: 'failed', error: 'sql.script takes `script`, not `query`' })
    assert.deepEqual(await run('sql.query', { credential: 'c', script: 'select 1' }).outcome, { status: 'failed', error: 'sql.query takes `query`, not `script`' })
    assert.equal((await run('sql.script', { credential: 'c', script: 'select 1', params: [1] }).outcome).status, 'failed')
    assert.deepEqual(await run('sql.query', { credential: 'not-a-db', query: 'select 1' }).outcome, {
      status: 'failed',
      error: 'credential "not-a-db" is a http_auth credential, expected database',
    })
    assert.equal(sqlExecutor.needsTarget, false)
  })
})
