import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createServer, type Server } from 'node:tls'
import { after, before, test } from 'node:test'
import { ensureTls, type TlsMaterial } from '../../controller/src/tls/pki.ts'
import { issueCert } from '../../controller/src/tls/test-fixture.ts'
import { fetchPinnedCa, normaliseFingerprint, verifyPinnedChain } from './pin.ts'

// The controller is the peer here; its PKI module makes the certificates, as in production.
let tls: TlsMaterial
let other: TlsMaterial
let server: Server
let port: number
before(async () => {
  tls = await ensureTls({ dataDir: mkdtempSync(path.join(tmpdir(), 'opsc-pin-')) })
  other = await ensureTls({ dataDir: mkdtempSync(path.join(tmpdir(), 'opsc-pin-other-')) })
  server = createServer({ key: tls.keyPem, cert: `${tls.certPem.trimEnd()}\n${tls.caCertPem!.trimEnd()}\n` }, (s) => s.end())
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  port = (server.address() as { port: number }).port
})
after(() => new Promise<void>((r) => server.close(() => r())))

test('accepts the controller whose CA has the pinned fingerprint, and returns that CA', async () => {
  const ca = await fetchPinnedCa('127.0.0.1', port, tls.fingerprint)
  assert.equal(ca.replace(/\s+/g, ''), tls.caCertPem!.replace(/\s+/g, ''))
  const colons = tls.fingerprint.slice(7).toUpperCase().match(/../g)!.join(':')
  assert.equal(normaliseFingerprint(colons), tls.fingerprint)
})

test('refuses a different fingerprint, naming what was presented', async () => {
  await assert.rejects(fetchPinnedCa('127.0.0.1', port, other.fingerprint), (err: Error) => {
    assert.equal(err.name, 'PinError')
    assert.match(err.message, /does not match --ca-fingerprint/)
    assert.ok(err.message.includes(tls.fingerprint))
    return true
  })
})

test('refuses a certificate not issued for the dialled host, or a leaf pinned as CA', () => {
  const chain = [Buffer.from(tls.certPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64'), Buffer.from(tls.caCertPem!.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64')]
  assert.throws(() => verifyPinnedChain(chain, 'evil.example.test', tls.fingerprint), /not issued for evil\.example\.test/)
  const leafFp = `sha256:${createHash('sha256').update(chain[0]!).digest('hex')}`
  assert.throws(() => verifyPinnedChain(chain, 'localhost', leafFp), /not a CA certificate/)
  assert.throws(() => verifyPinnedChain(chain, 'localhost', tls.fingerprint, new Date(Date.now() + 5 * 365 * 86_400_000)), /not valid now/)
  assert.equal(typeof verifyPinnedChain(chain, 'localhost', tls.fingerprint), 'string')
})

test('a malformed fingerprint and an unreachable controller are clear errors', async () => {
  assert.throws(() => normaliseFingerprint('md5:abc'), /must be sha256:/)
  await assert.rejects(fetchPinnedCa('127.0.0.1', 1, tls.fingerprint, 2000), /cannot reach 127\.0\.0\.1:1: ECONNREFUSED/)
})

test('an intermediate CA between the server certificate and the pinned root: the path is followed, and refused when a link is missing', async () => {
  const root = await issueCert('CN=Pin Root CA', null, true)
  const issuing = await issueCert('CN=Pin Issuing CA', root, true)
  const leaf = await issueCert('CN=localhost', issuing, false)
  const der = (c: { cert: { rawData: ArrayBuffer } }) => Buffer.from(c.cert.rawData)
  const rootFp = normaliseFingerprint(createHash('sha256').update(der(root)).digest('hex'))
  const pinned = verifyPinnedChain([der(leaf), der(issuing), der(root)], '127.0.0.1', rootFp)
  assert.equal(pinned.replace(/\s+/g, ''), root.pem.replace(/\s+/g, ''))
  // Without the intermediate the server certificate does not lead to the pinned root.
  assert.throws(() => verifyPinnedChain([der(leaf), der(root)], '127.0.0.1', rootFp), /not signed by the pinned CA/)
  // A CA that is not the leaf's issuer does not complete the path either.
  const stranger = await issueCert('CN=Stranger CA', root, true)
  assert.throws(() => verifyPinnedChain([der(leaf), der(stranger), der(root)], '127.0.0.1', rootFp), /not signed by the pinned CA/)
})
