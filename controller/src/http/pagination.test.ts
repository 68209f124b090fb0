import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { z } from 'zod'
import { ValidationError } from '../errors.ts'
import { decodeCursor, encodeCursor, pageOf, PageQuery, parseQuery } from './pagination.ts'

const Position = z.object({ id: z.number().int().positive() })

describe('cursors', () => {
  test('round-trip as opaque base64url', () => {
    const cursor = encodeCursor({ id: 42 })
    assert.match(cursor, /^[A-Za-z0-9_-]+$/)
    assert.deepEqual(decodeCursor(cursor, Position), { id: 42 })
  })

  test('a garbage, truncated or edited cursor is a ValidationError, never a crash', () => {
    const bad = ['!!!', 'abc', encodeCursor({ id: 42 }).slice(0, -3), encodeCursor({ id: 'x' }), encodeCursor([1]), encodeCursor({ id: -1 }), 'a b', '%%']
    for (const cursor of bad) {
      assert.throws(() => decodeCursor(cursor, Position), (err: unknown) => err instanceof ValidationError && err.code === 'VALIDATION', cursor)
    }
  })
})

describe('PageQuery', () => {
  test('defaults the limit to 50 and coerces it from the query string', () => {
    assert.deepEqual(parseQuery(PageQuery, {}), { limit: 50 })
    assert.deepEqual(parseQuery(PageQuery, { limit: '500', cursor: 'abc' }), { limit: 500, cursor: 'abc' })
  })

  test('rejects limits outside 1..500, listing every problem', () => {
    for (const limit of ['0', '501', '1.5', 'ten', '']) {
      assert.throws(() => parseQuery(PageQuery, { limit }), ValidationError, limit)
    }
    try {
      parseQuery(PageQuery, { limit: '0', cursor: '' })
      assert.fail('expected a ValidationError')
    } catch (err) {
      assert.ok(err instanceof ValidationError)
      const paths = (err.details as { path: string }[]).map((d) => d.path).sort()
      assert.deepEqual(paths, ['cursor', 'limit'])
    }
  })
})

describe('pageOf', () => {
  const rows = [{ id: 5 }, { id: 4 }, { id: 3 }]
  test('uses the extra row only to know there is a next page', () => {
    const page = pageOf(rows, 2, (r) => r.id, (r) => ({ id: r.id }))
    assert.deepEqual(page.items, [5, 4])
    assert.deepEqual(decodeCursor(page.next!, Position), { id: 4 })
  })

  test('has no next cursor on the last page', () => {
    assert.deepEqual(pageOf(rows, 3, (r) => r.id, (r) => r), { items: [5, 4, 3], next: null })
    assert.deepEqual(pageOf([], 3, (r) => r, (r) => r), { items: [], next: null })
  })
})
