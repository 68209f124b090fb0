import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isCompatibleProtocol } from './version.ts'

test('accepts peers one minor version apart and refuses a different major', () => {
  assert.equal(isCompatibleProtocol({ major: 1, minor: 3 }, { major: 1, minor: 3 }), true)
  assert.equal(isCompatibleProtocol({ major: 1, minor: 3 }, { major: 1, minor: 4 }), true)
  assert.equal(isCompatibleProtocol({ major: 1, minor: 4 }, { major: 1, minor: 2 }), false)
  assert.equal(isCompatibleProtocol({ major: 2, minor: 0 }, { major: 1, minor: 0 }), false)
})
