import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { AppError } from '../errors.ts'
import { createKeyring } from './master-key.ts'
import { isSealedWithCurrentKey, openSecret, rewrapSecret, sealSecret, SecretDecryptError, type SealedSecret } from './secret-box.ts'

const keyring = createKeyring([randomBytes(32)])
const AAD = 'target:6f1c2e/ssh_password'

const isDecryptError = (reason?: string) => (err: unknown) => {
  assert.ok(err instanceof SecretDecryptError, `expected SecretDecryptError, got ${String(err)}`)
  assert.match(err.message, /^cannot decrypt credentials with the configured master key/)
  if (reason) assert.equal(err.reason, reason)
  return true
}

/** Flips one bit of a base64 field, keeping its length. */
const flip = (b64: string, byte = 0): string => {
  const buf = Buffer.from(b64, 'base64')
  buf[byte] = buf[byte]! ^ 0x01
  return buf.toString('base64')
}

test('round-trips strings and binary data, and survives JSON storage', () => {
  const sealed = sealSecret(keyring, 'hunter2 – ünïcode', AAD)
  assert.equal(openSecret(keyring, sealed, AAD).toString('utf8'), 'hunter2 – ünïcode')
  const binary = randomBytes(1000)
  const stored = JSON.stringify(sealSecret(keyring, binary, AAD))
  assert.ok(openSecret(keyring, stored, AAD).equals(binary))
  assert.ok(openSecret(keyring, JSON.parse(stored) as SealedSecret, AAD).equals(binary))
  assert.equal(openSecret(keyring, sealSecret(keyring, '', AAD), AAD).length, 0)
})

test('the sealed form is versioned, names the master key, and does not contain the plaintext', () => {
  const sealed = sealSecret(keyring, 'plain-secret-value', AAD)
  assert.equal(sealed.v, 1)
  assert.equal(sealed.kid, keyring.current.id)
  assert.equal(Buffer.from(sealed.nonce, 'base64').length, 12)
  assert.equal(Buffer.from(sealed.wrapNonce, 'base64').length, 12)
  assert.equal(Buffer.from(sealed.tag, 'base64').length, 16)
  assert.ok(!JSON.stringify(sealed).includes('plain-secret-value'))
  assert.ok(!JSON.stringify(sealed).includes(Buffer.from('plain-secret-value').toString('base64')))
})

test('two seals of the same plaintext share no field but the key id', () => {
  const a = sealSecret(keyring, 'same', AAD)
  const b = sealSecret(keyring, 'same', AAD)
  for (const field of ['wrapNonce', 'wrappedKey', 'nonce', 'ciphertext', 'tag'] as const) assert.notEqual(a[field], b[field], field)
  assert.equal(a.kid, b.kid)
})

test('rejects tampering with any field', () => {
  const sealed = sealSecret(keyring, 'a credential long enough to flip bytes', AAD)
  for (const field of ['wrapNonce', 'wrappedKey', 'nonce', 'ciphertext', 'tag'] as const) {
    for (const byte of [0, Buffer.from(sealed[field], 'base64').length - 1]) {
      assert.throws(() => openSecret(keyring, { ...sealed, [field]: flip(sealed[field], byte) }, AAD), isDecryptError('auth_failed'), `${field}[${byte}]`)
    }
  }
  assert.throws(() => openSecret(keyring, { ...sealed, kid: 'ffffffffffffffff' }, AAD), isDecryptError('unknown_key'))
})

test('rejects a truncated tag, extended ciphertext, and malformed records', () => {
  const sealed = sealSecret(keyring, 'secret', AAD)
  const tag = Buffer.from(sealed.tag, 'base64')
  assert.throws(() => openSecret(keyring, { ...sealed, tag: tag.subarray(0, 12).toString('base64') }, AAD), isDecryptError('malformed'))
  const ct = Buffer.from(sealed.ciphertext, 'base64')
  assert.throws(() => openSecret(keyring, { ...sealed, ciphertext: Buffer.concat([ct, Buffer.from([0])]).toString('base64') }, AAD), isDecryptError('auth_failed'))
  assert.throws(() => openSecret(keyring, { ...sealed, ciphertext: ct.subarray(1).toString('base64') }, AAD), isDecryptError('auth_failed'))
  const bad: unknown[] = ['', '{', 'null', '[]', { ...sealed, v: 2 }, { ...sealed, kid: 'KID' }, { ...sealed, nonce: undefined }, { ...sealed, nonce: '***' }, { ...sealed, wrappedKey: sealed.nonce }]
  for (const value of bad) assert.throws(() => openSecret(keyring, value as SealedSecret, AAD), isDecryptError('malformed'), JSON.stringify(value))
})

test('will not open a ciphertext under another aad (a row swapped with another)', () => {
  const a = sealSecret(keyring, 'password of A', 'target:a/password')
  assert.throws(() => openSecret(keyring, a, 'target:b/password'), isDecryptError('auth_failed'))
  assert.throws(() => openSecret(keyring, a, 'target:a/private_key'), isDecryptError('auth_failed'))
  // Only the payload moved, with the data key of another row: still refused.
  const b = sealSecret(keyring, 'password of B', 'target:b/password')
  assert.throws(() => openSecret(keyring, { ...b, nonce: a.nonce, ciphertext: a.ciphertext, tag: a.tag }, 'target:b/password'), isDecryptError('auth_failed'))
})

test('fails clearly under a different master key, never returning garbage', () => {
  const sealed = sealSecret(keyring, 'secret', AAD)
  const other = createKeyring([randomBytes(32)])
  assert.throws(() => openSecret(other, sealed, AAD), (err: unknown) => {
    isDecryptError('unknown_key')(err)
    assert.ok((err as Error).message.includes(keyring.current.id))
    return true
  })
  // Same id forged onto another key: the wrapped data key does not authenticate.
  const forged = { ...other, byId: () => other.current }
  assert.throws(() => openSecret(forged, sealed, AAD), isDecryptError('auth_failed'))
})

test('is an AppError with code INTERNAL, so the API answers without leaking details', () => {
  const sealed = sealSecret(keyring, 'secret', AAD)
  assert.throws(() => openSecret(keyring, sealed, 'other'), (err: unknown) => err instanceof AppError && err.code === 'INTERNAL' && !err.message.includes('secret'))
})

test('rewrap moves a secret to the new current key without touching the ciphertext', () => {
  const oldKey = randomBytes(32)
  const before = createKeyring([oldKey])
  const sealed = sealSecret(before, 'rotate me', AAD)
  const rotated = createKeyring([randomBytes(32), oldKey])
  assert.equal(isSealedWithCurrentKey(rotated, sealed), false)
  const rewrapped = rewrapSecret(rotated, sealed, AAD)
  assert.equal(rewrapped.kid, rotated.current.id)
  assert.equal(isSealedWithCurrentKey(rotated, rewrapped), true)
  assert.deepEqual([rewrapped.nonce, rewrapped.ciphertext, rewrapped.tag], [sealed.nonce, sealed.ciphertext, sealed.tag])
  assert.notEqual(rewrapped.wrappedKey, sealed.wrappedKey)
  // After the old key is dropped only the rewrapped copy opens.
  const onlyNew = createKeyring([rotated.current.key])
  assert.equal(openSecret(onlyNew, rewrapped, AAD).toString(), 'rotate me')
  assert.throws(() => openSecret(onlyNew, sealed, AAD), isDecryptError('unknown_key'))
  assert.throws(() => openSecret(onlyNew, rewrapped, 'other aad'), isDecryptError('auth_failed'))
})

test('rewrap refuses a damaged secret, a wrong aad, or a key it does not have', () => {
  const sealed = sealSecret(keyring, 'secret', AAD)
  assert.throws(() => rewrapSecret(keyring, { ...sealed, ciphertext: flip(sealed.ciphertext) }, AAD), isDecryptError('auth_failed'))
  assert.throws(() => rewrapSecret(keyring, sealed, 'other'), isDecryptError('auth_failed'))
  assert.throws(() => rewrapSecret(createKeyring([randomBytes(32)]), sealed, AAD), isDecryptError('unknown_key'))
})
