import 'reflect-metadata' // @peculiar/x509 (through tsyringe) needs the Reflect metadata API
import { createPrivateKey, X509Certificate as NodeX509, webcrypto } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import path from 'node:path'
import { isIP } from 'node:net'
import * as x509 from '@peculiar/x509'
import { ConfigError } from '../config.ts'
import type { Logger } from '../log.ts'

const { subtle } = webcrypto
type CryptoKey = webcrypto.CryptoKey
type CryptoKeyPair = webcrypto.CryptoKeyPair
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const
const DAY_MS = 86_400_000
const CA_VALIDITY_DAYS = 3650
// Browsers refuse leaf certificates valid longer than 398 days.
const SERVER_VALIDITY_DAYS = 397
const RENEW_BEFORE_DAYS = 30

export interface TlsMaterial {
  certPem: string
  keyPem: string
  /** The CA that agents pin: the generated one, or the root at the end of the operator's chain. */
  caCertPem: string
  /** `sha256:<hex>` of that CA certificate: what agents enrol with (`--ca-fingerprint`). */
  fingerprint: string
  source: 'generated' | 'provided'
}

export interface TlsOptions {
  dataDir: string
  certFile?: string | undefined
  keyFile?: string | undefined
  /** Extra DNS names / IPs the generated server certificate must cover. */
  sans?: string[]
  log?: Logger
  now?: () => Date
}

/** `sha256:` + lowercase hex of the certificate's DER, the form the agent's --ca-fingerprint takes. */
export function certificateFingerprint(pem: string): string {
  return 'sha256:' + new NodeX509(pem).fingerprint256.replaceAll(':', '').toLowerCase()
}

/** Loads the given certificate, or creates (once) a private CA and a server certificate in the data dir. */
export async function ensureTls(opts: TlsOptions): Promise<TlsMaterial> {
  if (opts.certFile && opts.keyFile) {
    const provided = loadProvidedTls(opts.certFile, opts.keyFile)
    return provided
  }
  const dir = path.join(opts.dataDir, 'tls')
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const now = opts.now?.() ?? new Date()
  const ca = await loadOrCreateCa(dir, now, opts.log)
  const names = [...new Set(['localhost', hostname(), '127.0.0.1', '::1', ...(opts.sans ?? [])])]
  const server = await loadOrIssueServerCert(dir, ca, names, now, opts.log)
  return { ...server, caCertPem: ca.certPem, fingerprint: certificateFingerprint(ca.certPem), source: 'generated' }
}

const CHAIN_HINT =
  'put the server certificate first, then each CA certificate that issued the one before it, up to and including the root CA (all PEM)'

function readSetting(name: string, file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`${name}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
}

const issuedBy = (cert: NodeX509, ca: NodeX509) => ca.ca && cert.checkIssued(ca) && cert.verify(ca.publicKey)

/**
 * Bring-your-own certificate: OPSC_TLS_CERT holds the server certificate and its chain. Agents pin a
 * CA by fingerprint and must find it in the handshake, so the chain must reach a root CA; that root
 * is what agents pin, and the chain (server certificate to root) is what both listeners present.
 */
export function loadProvidedTls(certFile: string, keyFile: string): TlsMaterial {
  const certText = readSetting('OPSC_TLS_CERT', certFile)
  const keyPem = readSetting('OPSC_TLS_KEY', keyFile)
  const blocks = certText.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  if (blocks.length === 0) throw new ConfigError(`OPSC_TLS_CERT: ${certFile} holds no PEM certificate; ${CHAIN_HINT}`)
  const certs = blocks.map((pem, i) => {
    try {
      return new NodeX509(pem)
    } catch {
      throw new ConfigError(`OPSC_TLS_CERT: certificate ${i + 1} in ${certFile} cannot be parsed`)
    }
  })
  const leaf = certs[0]!
  if (leaf.ca) throw new ConfigError(`OPSC_TLS_CERT: the first certificate in ${certFile} (${leaf.subject.replaceAll('\n', ', ')}) is a CA certificate, not the server certificate; ${CHAIN_HINT}`)
  try {
    if (!leaf.checkPrivateKey(createPrivateKey(keyPem))) throw new Error('mismatch')
  } catch {
    throw new ConfigError(`OPSC_TLS_KEY: ${keyFile} is not the private key (PEM) of the server certificate in ${certFile}`)
  }
  // Walk from the server certificate up through the file's CA certificates to the top one.
  const chain = [leaf]
  for (let cert = leaf; ; ) {
    const issuer = certs.find((c) => !chain.includes(c) && issuedBy(cert, c))
    if (!issuer) break
    chain.push((cert = issuer))
  }
  const top = chain[chain.length - 1]!
  const dn = (name: string) => name.replaceAll('\n', ', ')
  if (top === leaf) {
    throw new ConfigError(
      `OPSC_TLS_CERT: ${certFile} lacks the certificate of the CA that issued the server certificate (${dn(leaf.issuer)}), so agents have no CA to pin; ${CHAIN_HINT}`,
    )
  }
  if (!(top.checkIssued(top) && top.verify(top.publicKey))) {
    throw new ConfigError(
      `OPSC_TLS_CERT: the chain in ${certFile} ends at ${dn(top.subject)}, which is not a root CA; append its issuer's certificate (${dn(top.issuer)}): agents pin the root; ${CHAIN_HINT}`,
    )
  }
  const certPem = chain.map((c) => c.toString()).join('')
  const caCertPem = top.toString()
  return { certPem, keyPem, caCertPem, fingerprint: certificateFingerprint(caCertPem), source: 'provided' }
}

interface Ca {
  certPem: string
  cert: x509.X509Certificate
  key: CryptoKey
}

async function loadOrCreateCa(dir: string, now: Date, log?: Logger): Promise<Ca> {
  const certFile = path.join(dir, 'ca.crt')
  const keyFile = path.join(dir, 'ca.key')
  if (existsSync(certFile) && existsSync(keyFile)) {
    const certPem = readFileSync(certFile, 'utf8')
    return { certPem, cert: new x509.X509Certificate(certPem), key: await importKey(readFileSync(keyFile, 'utf8')) }
  }
  const keys = (await subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=OpsConductor CA ${hostname()}, O=OpsConductor`,
    notBefore: new Date(now.getTime() - 5 * 60_000),
    notAfter: new Date(now.getTime() + CA_VALIDITY_DAYS * DAY_MS),
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  })
  const certPem = cert.toString('pem')
  writeSecret(keyFile, await exportKey(keys.privateKey))
  writeAtomic(certFile, certPem, 0o644)
  log?.info({ fingerprint: certificateFingerprint(certPem) }, 'tls.ca_created')
  return { certPem, cert, key: keys.privateKey }
}

async function loadOrIssueServerCert(dir: string, ca: Ca, names: string[], now: Date, log?: Logger) {
  const certFile = path.join(dir, 'server.crt')
  const keyFile = path.join(dir, 'server.key')
  if (existsSync(certFile) && existsSync(keyFile)) {
    const certPem = readFileSync(certFile, 'utf8')
    if (serverCertStillFits(certPem, ca, names, now)) return { certPem, keyPem: readFileSync(keyFile, 'utf8') }
    log?.info({ names }, 'tls.server_certificate_reissued')
  }
  const keys = (await subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${names.find((n) => n !== 'localhost' && !isIP(n)) ?? 'localhost'}, O=OpsConductor`,
    issuer: ca.cert.subject,
    notBefore: new Date(now.getTime() - 5 * 60_000),
    notAfter: new Date(Math.min(now.getTime() + SERVER_VALIDITY_DAYS * DAY_MS, ca.cert.notAfter.getTime())),
    signingAlgorithm: SIGNING,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: isIP(n) ? ('ip' as const) : ('dns' as const), value: n }))),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  })
  const keyPem = await exportKey(keys.privateKey)
  const certPem = cert.toString('pem')
  writeSecret(keyFile, keyPem)
  writeAtomic(certFile, certPem, 0o644)
  log?.info({ names, notAfter: cert.notAfter.toISOString() }, 'tls.server_certificate_issued')
  return { certPem, keyPem }
}

/** Reuse the server certificate while it is signed by our CA, covers every name and is not near expiry. */
function serverCertStillFits(certPem: string, ca: Ca, names: string[], now: Date): boolean {
  const cert = new NodeX509(certPem)
  if (!cert.checkIssued(new NodeX509(ca.certPem)) || !cert.verify(new NodeX509(ca.certPem).publicKey)) return false
  if (new Date(cert.validTo).getTime() - now.getTime() < RENEW_BEFORE_DAYS * DAY_MS) return false
  const san = cert.subjectAltName ?? ''
  return names.every((n) => (isIP(n) ? san.includes(`IP Address:${n === '::1' ? '0:0:0:0:0:0:0:1' : n}`) || san.includes(`IP Address:${n}`) : san.includes(`DNS:${n}`)))
}

function randomSerial(): string {
  // Positive 64-bit serial: hex string with the top bit clear.
  const bytes = webcrypto.getRandomValues(new Uint8Array(8))
  bytes[0] = bytes[0]! & 0x7f
  return Buffer.from(bytes).toString('hex')
}

async function exportKey(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await subtle.exportKey('pkcs8', key))
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`
}

async function importKey(pem: string): Promise<CryptoKey> {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64')
  return subtle.importKey('pkcs8', der, EC, true, ['sign'])
}

function writeSecret(file: string, content: string): void {
  writeAtomic(file, content, 0o600)
}

function writeAtomic(file: string, content: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, content, { mode })
  renameSync(tmp, file)
}
