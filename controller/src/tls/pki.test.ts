import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { certificateFingerprint, ensureTls } from './pki.ts'

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

test('uses operator-supplied certificate files as they are', async () => {
  const generated = await ensureTls({ dataDir: tempDir() })
  const dir = tempDir()
  writeFileSync(path.join(dir, 'c.pem'), generated.certPem)
  writeFileSync(path.join(dir, 'k.pem'), generated.keyPem)
  const tls = await ensureTls({ dataDir: tempDir(), certFile: path.join(dir, 'c.pem'), keyFile: path.join(dir, 'k.pem') })
  assert.equal(tls.source, 'provided')
  assert.equal(tls.certPem, readFileSync(path.join(dir, 'c.pem'), 'utf8'))
  assert.equal(tls.caCertPem, null)
})
