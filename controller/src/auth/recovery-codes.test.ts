import assert from 'node:assert/strict'
import { test } from 'node:test'
import { findRecoveryCode, generateRecoveryCodes, hashRecoveryCode, normaliseRecoveryCode } from './recovery-codes.ts'

const FORMAT = /^[2-9a-hjkmnp-z]{4}-[2-9a-hjkmnp-z]{4}-[2-9a-hjkmnp-z]{4}$/

test('generates ten distinct, readable codes by default', () => {
  const codes = generateRecoveryCodes()
  assert.equal(codes.length, 10)
  assert.equal(new Set(codes).size, 10)
  for (const code of codes) assert.match(code, FORMAT)
  assert.equal(generateRecoveryCodes(3).length, 3)
  assert.throws(() => generateRecoveryCodes(0), RangeError)
  assert.throws(() => generateRecoveryCodes(1.5), RangeError)
})

test('codes carry at least 50 bits and use no ambiguous characters', () => {
  // 12 symbols from a 31-letter alphabet.
  assert.ok(12 * Math.log2(31) >= 50)
  const seen = new Set(generateRecoveryCodes(100).join('').replace(/-/g, ''))
  for (const c of '01ilo') assert.ok(!seen.has(c), c)
  assert.equal(seen.size, 31, 'every symbol of the alphabet turns up in 1200 draws')
})

test('finds the matching code, ignoring case, dashes and spaces', () => {
  const codes = generateRecoveryCodes()
  const hashes = codes.map(hashRecoveryCode)
  codes.forEach((code, i) => assert.equal(findRecoveryCode(hashes, code), i))
  const third = codes[2]!
  assert.equal(findRecoveryCode(hashes, third.toUpperCase()), 2)
  assert.equal(findRecoveryCode(hashes, third.replace(/-/g, '')), 2)
  assert.equal(findRecoveryCode(hashes, ` ${third.replace(/-/g, ' ')} `), 2)
  assert.equal(normaliseRecoveryCode(third.toUpperCase()), third.replace(/-/g, ''))
})

test('returns -1 for a wrong, malformed or already used code', () => {
  const codes = generateRecoveryCodes(5)
  const hashes: (string | null)[] = codes.map(hashRecoveryCode)
  const [other] = generateRecoveryCodes(1)
  assert.equal(findRecoveryCode(hashes, other!), -1)
  for (const input of ['', 'abc', codes[0] + 'x', codes[0]!.replace(/./, '0'), '000000', null, undefined]) {
    assert.equal(findRecoveryCode(hashes, input as string), -1, String(input))
  }
  hashes[1] = null
  assert.equal(findRecoveryCode(hashes, codes[1]!), -1)
  assert.equal(findRecoveryCode(hashes, codes[4]!), 4, 'other indexes stay put')
  assert.equal(findRecoveryCode([], codes[0]!), -1)
})

test('salts every hash, so equal codes hash differently and no hash contains the code', () => {
  const [code] = generateRecoveryCodes(1)
  const a = hashRecoveryCode(code!)
  const b = hashRecoveryCode(code!)
  assert.notEqual(a, b)
  assert.match(a, /^sha256\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/)
  assert.ok(!a.includes(code!) && !a.includes(code!.replace(/-/g, '')))
  assert.equal(findRecoveryCode([a, b], code!), 0)
})

test('refuses to hash something that is not a recovery code, and flags a corrupted stored hash', () => {
  assert.throws(() => hashRecoveryCode('password'), /not a recovery code/)
  const [code] = generateRecoveryCodes(1)
  assert.throws(() => findRecoveryCode([hashRecoveryCode(code!), 'garbage'], code!), /hash #1 is malformed/)
})
