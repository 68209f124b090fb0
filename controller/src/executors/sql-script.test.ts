import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { splitPostgresScript } from './sql-script.ts'

describe('splitPostgresScript', () => {
  test('splits at top-level semicolons and drops empty and comment-only chunks', () => {
    assert.deepEqual(splitPostgresScript('select 1; select 2;;\n -- done\n'), ['select 1', 'select 2'])
    assert.deepEqual(splitPostgresScript('select 1'), ['select 1'])
    assert.deepEqual(splitPostgresScript(' ; -- nothing\n /* at all */ ;'), [])
  })

  test('keeps semicolons inside strings, identifiers, dollar quotes and comments', () => {
    const script = [
      `insert into t values ('a;b', 'it''s;')`,
      `select E'x\\';y' as "semi;colon"`,
      `create function f() returns int language plpgsql as $body$ begin return 1; end $body$`,
      `do $$ begin perform 1; end $$`,
      `select 1 /* a; /* nested; */ still; */ + 2 -- trailing; comment\n`,
      `select a$b from t where x = $1`,
    ]
    assert.deepEqual(
      splitPostgresScript(script.join(';\n')),
      script.map((s) => s.trim()),
    )
  })

  test('keeps a BEGIN ATOMIC body (with CASE … END inside) in one statement', () => {
    const fn = `create function g(x int) returns int begin atomic select case when x > 0 then 1 else 0 end; select 2; end`
    assert.deepEqual(splitPostgresScript(`${fn}; select 3`), [fn, 'select 3'])
  })

  test('an unterminated string or dollar quote runs to the end (the server reports it)', () => {
    assert.deepEqual(splitPostgresScript(`select 'abc; select 2`), [`select 'abc; select 2`])
    assert.deepEqual(splitPostgresScript(`select $q$abc; select 2`), [`select $q$abc; select 2`])
  })
})
