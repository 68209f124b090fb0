import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { isSecretKey, LIMITS, REDACTED, redactSummary } from './redact.ts'

describe('redactSummary', () => {
  test('redacts values under secret-looking keys and keeps the rest', () => {
    const out = redactSummary({
      username: 'alice', role: 'admin', password: 'hunter2', newPassword: 'x', passphrase: 'y', clientSecret: 'z',
      accessToken: 't', totpCode: '123456', otp: 654321, passwordHash: '$argon2id$…', privateKey: 'k', apiKey: 'k2',
      credentials: { user: 'u', pass: 'p' }, Authorization: 'Bearer abc', cookie: 'sid=1', recoveryCodes: ['a', 'b'],
    })
    assert.deepEqual(out, {
      username: 'alice', role: 'admin', password: REDACTED, newPassword: REDACTED, passphrase: REDACTED,
      clientSecret: REDACTED, accessToken: REDACTED, totpCode: REDACTED, otp: REDACTED, passwordHash: REDACTED,
      privateKey: REDACTED, apiKey: REDACTED, credentials: REDACTED, Authorization: REDACTED, cookie: REDACTED,
      recoveryCodes: REDACTED,
    })
  })

  test('redacts inside nested objects and arrays', () => {
    const out = redactSummary({ changes: [{ field: 'role', to: 'admin' }, { field: 'x', secret: 's' }], target: { ssh: { privateKey: 'k', user: 'root' } } })
    assert.deepEqual(out, { changes: [{ field: 'role', to: 'admin' }, { field: 'x', secret: REDACTED }], target: { ssh: { privateKey: REDACTED, user: 'root' } } })
  })

  test('keeps identifiers and facts about secrets, which are not the secrets', () => {
    const out = redactSummary({ tokenId: 't-1', tokenName: 'ci', key_id: 'k1', passwordChangedAt: '2025-01-01', mfaEnabled: true, totp: false, token: null })
    assert.deepEqual(out, { tokenId: 't-1', tokenName: 'ci', key_id: 'k1', passwordChangedAt: '2025-01-01', mfaEnabled: true, totp: false, token: null })
    assert.equal(isSecretKey('tokenid'), true)
    assert.equal(isSecretKey('token'), true)
  })

  test('redacts credential-shaped values under innocent keys', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'
    const pem = '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----'
    const apiToken = `opsc_${'A1b2C3d4'.repeat(5)}`
    const refresh = `opsc_rt_${'x-Y_z9'.repeat(7)}`
    assert.deepEqual(redactSummary({ note: `see ${jwt}`, header: 'Bearer abcdefgh12345', file: pem, plan: 'basic plan', pasted: `use ${apiToken}`, rt: refresh, mode: 'opsc_default' }), {
      note: REDACTED, header: REDACTED, file: REDACTED, plan: 'basic plan', pasted: REDACTED, rt: REDACTED, mode: 'opsc_default',
    })
  })

  test('returns a copy; the input is untouched', () => {
    const input = { user: { password: 'p' } }
    redactSummary(input)
    assert.equal(input.user.password, 'p')
  })

  test('caps depth, string length, array items and keys', () => {
    let deep: Record<string, unknown> = { leaf: 1 }
    for (let i = 0; i < 10; i++) deep = { d: deep }
    let node = redactSummary(deep) as unknown
    let levels = 0
    while (typeof node === 'object' && node !== null) {
      node = (node as { d: unknown }).d
      levels++
    }
    assert.equal(node, '[truncated]')
    assert.equal(levels, LIMITS.depth)

    const out = redactSummary({ s: 'x'.repeat(5000), a: Array.from({ length: 80 }, (_, i) => i) })
    assert.equal((out.s as string).length, LIMITS.stringLength + 1)
    assert.equal((out.a as unknown[]).length, LIMITS.arrayItems + 1)
    assert.equal((out.a as unknown[]).at(-1), '[+30 more]')

    const wide = Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`k${i}`, i]))
    assert.equal(Object.keys(redactSummary(wide)).length, LIMITS.objectKeys + 1)
  })

  test('survives cycles and produces only JSON Postgres can store', () => {
    const cyclic: Record<string, unknown> = { name: 'a' }
    cyclic.self = cyclic
    assert.doesNotThrow(() => JSON.stringify(redactSummary(cyclic)))
    const out = redactSummary({
      nul: 'a\u0000b', lone: 'x\uD800y', pair: '😀', big: 10n, nan: Number.NaN, when: new Date('2025-01-01T00:00:00Z'),
      fn: () => 1, undef: undefined, buf: Buffer.from('secret'), err: new Error('postgres://u:pw@host'), set: new Set([1]),
    })
    assert.deepEqual(out, {
      nul: 'ab', lone: 'x\uFFFDy', pair: '😀', big: '10', nan: null, when: '2025-01-01T00:00:00.000Z',
      buf: '[binary 6 bytes]', err: { error: 'Error' }, set: [1],
    })
  })

  test('treats a missing summary as empty', () => {
    assert.deepEqual(redactSummary(undefined), {})
    assert.deepEqual(redactSummary(null), {})
  })
})
