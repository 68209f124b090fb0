import assert from 'node:assert/strict'
import { test } from 'node:test'
import { LOCK, LOCK_CLASS } from './locks.ts'

test('no two advisory locks share a key', () => {
  for (const keys of [LOCK, LOCK_CLASS]) {
    const values = Object.values(keys)
    const clashes = Object.entries(keys).filter(([, v]) => values.indexOf(v) !== values.lastIndexOf(v))
    assert.deepEqual(clashes, [], 'each key names one lock')
    for (const v of values) assert.ok(Number.isInteger(v) && v > 0 && v < 2 ** 31, 'fits the int form too')
  }
})
