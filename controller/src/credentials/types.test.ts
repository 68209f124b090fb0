import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { generateCertificate, generateSshKey, hasOpenssl, hasSshKeygen } from '../../../test/harness/keys.ts'
import { ValidationError } from '../errors.ts'
import { parseWith } from '../http/validate.ts'
import { inspectCertificate, inspectSshKey } from './key-material.ts'
import { CreateCredentialInput, splitFields } from './types.ts'

function pathsOf(err: unknown): string[] {
  assert.ok(err instanceof ValidationError, String(err))
  return (err.details as { path: string; message: string }[]).map((d) => d.path)
}
const detailsOf = (fn: () => unknown) => {
  try {
    fn()
  } catch (err) {
    return pathsOf(err)
  }
  assert.fail('expected a ValidationError')
}
const rejectedPaths = async (p: Promise<unknown>) => pathsOf(await p.then(() => assert.fail('expected a ValidationError'), (err: unknown) => err))

describe('ssh keys', { skip: !hasSshKeygen && 'ssh-keygen is not installed' }, () => {
  const cases = [
    { type: 'ed25519', keyType: 'ssh-ed25519', opts: {} },
    { type: 'ecdsa', keyType: 'ecdsa-sha2-nistp256', opts: {} },
    { type: 'ecdsa', keyType: 'ecdsa-sha2-nistp384', opts: { bits: 384 } },
    { type: 'rsa', keyType: 'ssh-rsa', opts: { bits: 3072 } },
    { type: 'rsa', keyType: 'ssh-rsa', opts: { pem: true, bits: 2048 } },
  ] as const
  for (const { type, keyType, opts } of cases) {
    test(`reads a ${'pem' in opts ? 'PEM' : 'OpenSSH'} ${keyType} key with its passphrase: type, bits and the ssh-keygen fingerprint`, async () => {
      const key = generateSshKey(type, { passphrase: 'open sesame', ...opts })
      const info = await inspectSshKey(key.privateKey, 'open sesame')
      assert.equal(info.key_type, keyType)
      assert.equal(info.bits, key.bits)
      assert.equal(info.fingerprint, key.fingerprint)
      assert.equal(info.public_key, key.publicKey.split(' ').slice(0, 2).join(' '))
      assert.equal(info.encrypted, true)
    })
  }

  test('names passphrase for a wrong or missing passphrase, private_key for a damaged or public key', async () => {
    const key = generateSshKey('ed25519', { passphrase: 'right one' })
    assert.deepEqual(await rejectedPaths(inspectSshKey(key.privateKey, 'wrong one')), ['passphrase'])
    assert.deepEqual(await rejectedPaths(inspectSshKey(key.privateKey, undefined)), ['passphrase'])
    const pem = generateSshKey('rsa', { passphrase: 'right one', pem: true, bits: 2048 })
    assert.deepEqual(await rejectedPaths(inspectSshKey(pem.privateKey, 'wrong one')), ['passphrase'])
    const plain = generateSshKey('ed25519')
    const lines = plain.privateKey.split('\n')
    lines[2] = lines[2]!.replace(/[A-Za-z]/g, (c) => (c === 'A' ? 'B' : 'A'))
    assert.deepEqual(await rejectedPaths(inspectSshKey(lines.join('\n'), undefined)), ['private_key'])
    assert.deepEqual(await rejectedPaths(inspectSshKey('not a key at all', undefined)), ['private_key'])
    assert.deepEqual(await rejectedPaths(inspectSshKey(plain.publicKey, undefined)), ['private_key'])
  })

  test('an unencrypted key needs no passphrase', async () => {
    const key = generateSshKey('ed25519')
    assert.equal((await inspectSshKey(key.privateKey, undefined)).encrypted, false)
    assert.equal((await inspectSshKey(key.privateKey, 'ignored')).fingerprint, key.fingerprint)
  })

  test('opening an encrypted key does not block the event loop, and a key that takes too long is refused', async () => {
    const key = generateSshKey('ed25519', { passphrase: 'slow phrase', rounds: 64 })
    let ticks = 0
    const timer = setInterval(() => ticks++, 10)
    const started = Date.now()
    const info = await inspectSshKey(key.privateKey, 'slow phrase')
    clearInterval(timer)
    assert.equal(info.fingerprint, key.fingerprint)
    assert.ok(ticks >= ((Date.now() - started) / 10) * 0.5, `the event loop ran ${ticks} timer ticks in ${Date.now() - started} ms`)
    const slow = await inspectSshKey(key.privateKey, 'slow phrase', { timeoutMs: 50 }).catch((e: unknown) => e)
    assert.deepEqual(pathsOf(slow), ['private_key'])
    assert.match((slow as Error).message, /takes too long/)
  })
})

describe('certificates', { skip: !hasOpenssl && 'openssl is not installed' }, () => {
  test('reads subject, issuer, expiry and fingerprint; the encrypted key opens with its passphrase', () => {
    const cert = generateCertificate({ cn: 'api.client.test', passphrase: 'cert pass' })
    const info = inspectCertificate({ certificate: cert.certificate, private_key: cert.privateKey, passphrase: 'cert pass', ca: cert.certificate })
    assert.equal(info.subject, 'CN=api.client.test, O=OpsConductor Tests')
    assert.equal(info.issuer, info.subject)
    assert.equal(info.fingerprint, cert.fingerprint)
    assert.equal(info.key_type, 'rsa')
    assert.ok(Date.parse(info.not_after) > Date.now() + 29 * 86_400_000)
  })

  test('a key that does not match, a wrong passphrase or a broken certificate is a 400 naming the field', () => {
    const cert = generateCertificate({ passphrase: 'cert pass' })
    const other = generateCertificate({ key: 'ec' })
    assert.deepEqual(detailsOf(() => inspectCertificate({ certificate: cert.certificate, private_key: other.privateKey })), ['private_key'])
    assert.deepEqual(detailsOf(() => inspectCertificate({ certificate: cert.certificate, private_key: cert.privateKey, passphrase: 'nope' })), ['passphrase'])
    assert.deepEqual(detailsOf(() => inspectCertificate({ certificate: cert.certificate, private_key: cert.privateKey })), ['passphrase'])
    assert.deepEqual(detailsOf(() => inspectCertificate({ certificate: 'garbage', private_key: other.privateKey })), ['certificate'])
    const broken = other.certificate.replace(/\n[A-Za-z0-9+/]{20}/, '\n!!!!')
    assert.deepEqual(detailsOf(() => inspectCertificate({ certificate: broken, private_key: other.privateKey })), ['certificate'])
    assert.deepEqual(detailsOf(() => inspectCertificate({ certificate: other.certificate, private_key: other.privateKey, ca: 'nope' })), ['ca'])
  })
})

describe('credential schemas', () => {
  const bad = (body: Record<string, unknown>) => detailsOf(() => parseWith(CreateCredentialInput, body)).sort()

  test('checks fields per type and names each problem', () => {
    assert.deepEqual(bad({ name: 'x', type: 'nope' }), ['type'])
    assert.deepEqual(bad({ name: 'x', type: 'ssh_password', username: 'root' }), ['password'])
    assert.deepEqual(bad({ name: 'x', type: 'ssh_password', username: 'root', password: 'p', private_key: 'k' }), [''])
    assert.deepEqual(bad({ name: 'x', type: 'winrm', username: 'u', password: 'p', auth: 'basic', transport: 'http' }), ['transport'])
    assert.deepEqual(bad({ name: 'x', type: 'http_auth', scheme: 'bearer', username: 'u' }), ['token', 'username'])
    assert.deepEqual(bad({ name: 'x', type: 'http_auth', scheme: 'headers', headers: { 'bad header': 'v' } }), ['headers.bad header'])
    assert.deepEqual(bad({ name: 'x', type: 'snmp', version: 'v2c', username: 'u' }), ['community', 'username'])
    assert.deepEqual(bad({ name: 'x', type: 'snmp', version: 'v3', username: 'u', priv_protocol: 'aes', priv_password: 'long enough' }), ['auth_protocol'])
    assert.deepEqual(bad({ name: 'x', type: 'snmp', version: 'v3', username: 'u', auth_protocol: 'sha' }), ['auth_password'])
    assert.deepEqual(bad({ name: 'x', type: 'database', driver: 'oracle', host: 'db', database: 'd', username: 'u', password: 'p', port: 70000 }), ['driver', 'port'])
  })

  test('splits public fields into metadata with has_ flags, and secrets apart', async () => {
    const input = parseWith(CreateCredentialInput, { name: 'w', type: 'winrm', username: 'svc', password: 'pw', domain: 'CORP' })
    const { name: _n, description: _d, type, ...fields } = input
    const { metadata, secrets } = await splitFields(type, fields)
    assert.deepEqual(metadata, { username: 'svc', domain: 'CORP', auth: 'ntlm', transport: 'https', has_password: true })
    assert.deepEqual(secrets, { password: 'pw' })
    const headers = parseWith(CreateCredentialInput, { name: 'h', type: 'http_auth', scheme: 'headers', headers: { 'X-Tenant': 't1', 'X-Key': 'k' } })
    const split = await splitFields('http_auth', { scheme: 'headers', headers: (headers as { headers: Record<string, string> }).headers })
    assert.deepEqual(split.metadata, { scheme: 'headers', header_names: ['X-Tenant', 'X-Key'], has_password: false, has_token: false, has_api_key: false, has_headers: true })
  })
})
