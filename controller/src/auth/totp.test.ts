import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { test } from 'node:test'
import { newTotpSecret, totpStep, totpUri, verifyTotp } from './totp.ts'

/** RFC 4226 §5.3 HOTP, written independently of otpauth to cross-check it. */
function referenceHotp(key: Buffer, counter: number, digits: number): string {
  const msg = Buffer.alloc(8)
  msg.writeBigUInt64BE(BigInt(counter))
  const mac = createHmac('sha1', key).update(msg).digest()
  const offset = mac[mac.length - 1]! & 0x0f
  const binary = mac.readUInt32BE(offset) & 0x7fffffff
  return String(binary % 10 ** digits).padStart(digits, '0')
}

const base32 = (buf: Buffer): string => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = ''
  for (const b of buf) bits += b.toString(2).padStart(8, '0')
  let out = ''
  for (let i = 0; i < bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5).padEnd(5, '0'), 2)]
  return out
}

// RFC 6238 Appendix B, SHA1 rows.
const RFC_KEY = Buffer.from('12345678901234567890', 'ascii')
const RFC_VECTORS: [number, string][] = [
  [59, '94287082'],
  [1111111109, '07081804'],
  [1111111111, '14050471'],
  [1234567890, '89005924'],
  [2000000000, '69279037'],
]
const at = (seconds: number) => new Date(seconds * 1000)

test('the reference implementation reproduces the RFC 6238 test vectors', () => {
  for (const [t, code] of RFC_VECTORS) assert.equal(referenceHotp(RFC_KEY, Math.floor(t / 30), 8), code, `T=${t}`)
})

test('accepts the 6-digit RFC 6238 codes at their times, and agrees with the reference step', () => {
  const secret = base32(RFC_KEY)
  for (const [t, code] of RFC_VECTORS) {
    assert.deepEqual(verifyTotp({ secret, code: code.slice(-6), now: at(t), lastUsedStep: null }), { ok: true, step: Math.floor(t / 30) }, `T=${t}`)
    assert.equal(totpStep(at(t)), Math.floor(t / 30))
  }
})

test('agrees with the reference on random secrets and times', () => {
  for (let i = 0; i < 50; i++) {
    const secret = newTotpSecret()
    const key = Buffer.from(decodeBase32(secret))
    const t = Math.floor(Math.random() * 4_000_000_000)
    const step = Math.floor(t / 30)
    assert.deepEqual(verifyTotp({ secret, code: referenceHotp(key, step, 6), now: at(t), lastUsedStep: null }), { ok: true, step })
  }
})

test('accepts one step of drift either way, not two', () => {
  const secret = base32(RFC_KEY)
  const t = 1234567890
  const step = Math.floor(t / 30)
  for (const delta of [-1, 0, 1]) {
    const code = referenceHotp(RFC_KEY, step + delta, 6)
    assert.deepEqual(verifyTotp({ secret, code, now: at(t), lastUsedStep: null }), { ok: true, step: step + delta }, `delta ${delta}`)
  }
  for (const delta of [-2, 2, 10]) {
    const code = referenceHotp(RFC_KEY, step + delta, 6)
    assert.deepEqual(verifyTotp({ secret, code, now: at(t), lastUsedStep: null }), { ok: false }, `delta ${delta}`)
  }
})

test('rejects a code whose step is at or before the last used step', () => {
  const secret = base32(RFC_KEY)
  const t = 1234567890
  const step = Math.floor(t / 30)
  const code = referenceHotp(RFC_KEY, step, 6)
  const first = verifyTotp({ secret, code, now: at(t), lastUsedStep: null })
  assert.deepEqual(first, { ok: true, step })
  assert.deepEqual(verifyTotp({ secret, code, now: at(t + 5), lastUsedStep: step }), { ok: false }, 'replay')
  assert.deepEqual(verifyTotp({ secret, code: referenceHotp(RFC_KEY, step - 1, 6), now: at(t), lastUsedStep: step }), { ok: false }, 'older code')
  assert.deepEqual(verifyTotp({ secret, code: referenceHotp(RFC_KEY, step + 1, 6), now: at(t), lastUsedStep: step }), { ok: true, step: step + 1 })
  assert.deepEqual(verifyTotp({ secret, code, now: at(t), lastUsedStep: step - 1 }), { ok: true, step })
})

test('rejects anything but six digits without throwing', () => {
  const secret = base32(RFC_KEY)
  const t = 1234567890
  const code = referenceHotp(RFC_KEY, Math.floor(t / 30), 6)
  for (const input of ['', '12345', '1234567', code + '0', 'abcdef', '12345a', '-12345', '１２３４５６', '89005924', null, undefined, 123456]) {
    assert.deepEqual(verifyTotp({ secret, code: input as string, now: at(t), lastUsedStep: null }), { ok: false }, String(input))
  }
  assert.deepEqual(verifyTotp({ secret, code: ` ${code.slice(0, 3)} ${code.slice(3)} `, now: at(t), lastUsedStep: null }).ok, true, 'spaces as apps display them')
})

test('new secrets are 160-bit base32 and differ', () => {
  const a = newTotpSecret()
  assert.match(a, /^[A-Z2-7]{32}$/)
  assert.equal(decodeBase32(a).length, 20)
  assert.notEqual(a, newTotpSecret())
})

test('builds the otpauth URI authenticator apps expect', () => {
  const secret = newTotpSecret()
  const uri = new URL(totpUri({ secret, account: 'alice@example.com', issuer: 'OpsConductor' }))
  assert.equal(uri.protocol, 'otpauth:')
  assert.equal(uri.host, 'totp')
  assert.equal(decodeURIComponent(uri.pathname), '/OpsConductor:alice@example.com')
  assert.equal(uri.searchParams.get('secret'), secret)
  assert.equal(uri.searchParams.get('issuer'), 'OpsConductor')
  assert.equal(uri.searchParams.get('algorithm'), 'SHA1')
  assert.equal(uri.searchParams.get('digits'), '6')
  assert.equal(uri.searchParams.get('period'), '30')
  assert.equal(new URL(totpUri({ secret, account: 'bob' })).searchParams.get('issuer'), 'OpsConductor')
})

function decodeBase32(s: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = ''
  for (const c of s.replace(/=+$/, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0')
  const bytes: number[] = []
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2))
  return Buffer.from(bytes)
}
