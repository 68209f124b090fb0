import assert from 'node:assert/strict'
import { test } from 'node:test'
import { hashPassword, needsRehash, passwordProblem, randomPassword, verifyPassword } from './passwords.ts'

test('verifies the right password and refuses a wrong one', async () => {
  const hash = await hashPassword('correct horse battery staple')
  assert.match(hash, /^scrypt\$32768\$8\$1\$/)
  assert.equal(await verifyPassword('correct horse battery staple', hash), true)
  assert.equal(await verifyPassword('correct horse battery stapl', hash), false)
  assert.ok(!hash.includes('correct'))
})

test('two hashes of one password differ (per-hash salt)', async () => {
  assert.notEqual(await hashPassword('same password here'), await hashPassword('same password here'))
})

test('keeps working with older parameters and asks for a rehash', async () => {
  const weak = await hashPassword('an older password', { N: 2 ** 10, r: 8, p: 1 })
  assert.equal(await verifyPassword('an older password', weak), true)
  assert.equal(needsRehash(weak), true)
  assert.equal(needsRehash(await hashPassword('a current password')), false)
})

test('a malformed stored hash never matches', async () => {
  for (const stored of ['', 'plain', 'scrypt$x$8$1$aa$bb', 'bcrypt$2$8$1$aa$bb']) {
    assert.equal(await verifyPassword('anything', stored), false)
  }
})

test('policy: length, username, variety', () => {
  assert.match(passwordProblem('admin123')!, /at least 12/)
  assert.match(passwordProblem('alice-is-great-2026', 'alice')!, /username/)
  assert.match(passwordProblem('aaaaaaaaaaaaaaaa')!, /different characters/)
  assert.equal(passwordProblem('a long enough passphrase', 'bob'), null)
  assert.equal(passwordProblem(randomPassword()), null)
})
