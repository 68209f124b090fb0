import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { ConfigError } from '../config.ts'
import { certificateFingerprint, ensureTls } from './pki.ts'
import { issueCert, privateKeyPem, writeChainFiles, type IssuedCert } from './test-fixture.ts'

const tempDir = () => mkdtempSync(path.join(tmpdir(), 'opsc-tls-'))

test('creates a private CA and a server certificate it signed, with private keys readable only by the owner', async () => {
  const dataDir = tempDir()
  const tls = await ensureTls({ dataDir })
  assert.equal(tls.source, 'generated')
  const ca = new X509Certificate(tls.caCertPem!)
  const server = new X509Certificate(tls.certPem)
  assert.equal(ca.ca, true)
  assert.equal(server.ca, false)
  assert.ok(server.checkIssued(ca) && server.verify(ca.publicKey))
  assert.equal(server.checkHost('localhost'), 'localhost')
  assert.equal(server.checkIP('127.0.0.1'), '127.0.0.1')
  for (const key of ['ca.key', 'server.key']) assert.equal(statSync(path.join(dataDir, 'tls', key)).mode & 0o777, 0o600)
  assert.equal(tls.fingerprint, certificateFingerprint(tls.caCertPem!))
  assert.match(tls.fingerprint, /^sha256:[0-9a-f]{64}$/)
})

test('reuses the same CA and certificate on the next start', async () => {
  const dataDir = tempDir()
  const first = await ensureTls({ dataDir })
  const second = await ensureTls({ dataDir })
  assert.equal(second.fingerprint, first.fingerprint)
  assert.equal(second.certPem, first.certPem)
  assert.equal(second.keyPem, first.keyPem)
})

test('reissues the server certificate (same CA) when a name is added or expiry nears', async () => {
  const dataDir = tempDir()
  const first = await ensureTls({ dataDir })
  const named = await ensureTls({ dataDir, sans: ['ops.example.test', '10.9.8.7'] })
  assert.equal(named.fingerprint, first.fingerprint)
  assert.notEqual(named.certPem, first.certPem)
  const cert = new X509Certificate(named.certPem)
  assert.equal(cert.checkHost('ops.example.test'), 'ops.example.test')
  assert.equal(cert.checkIP('10.9.8.7'), '10.9.8.7')
  const later = () => new Date(Date.now() + 380 * 86_400_000)
  const renewed = await ensureTls({ dataDir, sans: ['ops.example.test', '10.9.8.7'], now: later })
  assert.notEqual(renewed.certPem, named.certPem)
  assert.equal(renewed.fingerprint, first.fingerprint)
})

// Bring-your-own certificates: a root CA, an optional intermediate, a server certificate.
const issue = issueCert
const keyPem = privateKeyPem
const loadByo = async (chain: IssuedCert[], key?: IssuedCert['keys']) => ensureTls({ dataDir: tempDir(), ...(await writeChainFiles(chain, key)) })

const root = await issue('CN=BYO Root CA', null, true)
const intermediate = await issue('CN=BYO Issuing CA', root, true)
const server = await issue('CN=localhost', root, false)
const serverViaIntermediate = await issue('CN=localhost', intermediate, false)

test('own certificate: the root CA at the end of the chain file is what agents pin and what the listeners present', async () => {
  const tls = await loadByo([server, root])
  assert.equal(tls.source, 'provided')
  assert.equal(tls.fingerprint, certificateFingerprint(root.pem))
  assert.notEqual(tls.fingerprint, certificateFingerprint(server.pem))
  assert.equal(new X509Certificate(tls.caCertPem).fingerprint256, new X509Certificate(root.pem).fingerprint256)
  const presented = tls.certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!.map((p) => new X509Certificate(p).fingerprint256)
  assert.deepEqual(presented, [new X509Certificate(server.pem).fingerprint256, new X509Certificate(root.pem).fingerprint256])
})

test('own certificate through an intermediate: the root is pinned and the whole chain presented, in order', async () => {
  // Files often list the chain out of order or with extra certificates; only the path to the root counts.
  const files = await writeChainFiles([serverViaIntermediate, root, intermediate, await issue('CN=Unrelated CA', null, true)])
  const tls = await ensureTls({ dataDir: tempDir(), ...files })
  assert.equal(tls.fingerprint, certificateFingerprint(root.pem))
  const presented = tls.certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!.map((p) => new X509Certificate(p).subject)
  assert.deepEqual(presented, ['CN=localhost', 'CN=BYO Issuing CA', 'CN=BYO Root CA'])
})

test('own certificate without its CA is a configuration error that says what the file must hold', async () => {
  const refused = (pattern: RegExp) => (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err))
    assert.match(err.message, pattern)
    return true
  }
  await assert.rejects(loadByo([server]), refused(/^OPSC_TLS_CERT: .*chain\.pem lacks the certificate of the CA that issued the server certificate \(CN=BYO Root CA\), so agents have no CA to pin; put the server certificate first, then each CA certificate .* up to and including the root CA/))
  await assert.rejects(loadByo([serverViaIntermediate, intermediate]), refused(/^OPSC_TLS_CERT: the chain in .* ends at CN=BYO Issuing CA, which is not a root CA; append its issuer's certificate \(CN=BYO Root CA\)/))
  await assert.rejects(loadByo([root, server], server.keys), refused(/is a CA certificate, not the server certificate/))
  await assert.rejects(loadByo([server, root], root.keys), refused(/^OPSC_TLS_KEY: .* is not the private key \(PEM\) of the server certificate/))
  await assert.rejects(ensureTls({ dataDir: tempDir(), certFile: '/nonexistent/chain.pem', keyFile: '/nonexistent/key.pem' }), refused(/^OPSC_TLS_CERT: cannot read \/nonexistent\/chain\.pem \(ENOENT\)/))
})

test('the generated CA (data dir) is untouched by a run with an own certificate', async () => {
  const dataDir = tempDir()
  const generated = await ensureTls({ dataDir })
  const dir = tempDir()
  writeFileSync(path.join(dir, 'c.pem'), server.pem + root.pem)
  writeFileSync(path.join(dir, 'k.pem'), await keyPem(server.keys))
  const own = await ensureTls({ dataDir, certFile: path.join(dir, 'c.pem'), keyFile: path.join(dir, 'k.pem') })
  assert.equal(own.fingerprint, certificateFingerprint(root.pem))
  assert.equal((await ensureTls({ dataDir })).fingerprint, generated.fingerprint)
})
