import { createHash, createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto'
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import { ValidationError } from '../errors.ts'

/*
 * Keys and certificates are parsed when they are saved, so a wrong passphrase or a damaged key is
 * a 400 naming the field now rather than a failed connection later. Error messages are our own:
 * a parser's message could quote the input, and nothing here may echo key material.
 */

const SUPPORTED_SSH_KEYS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa'] as const

export interface SshKeyInfo {
  key_type: (typeof SUPPORTED_SSH_KEYS)[number]
  bits: number
  /** OpenSSH form, as `ssh-keygen -lf` prints it: `SHA256:<base64 without padding>`. */
  fingerprint: string
  /** The `authorized_keys` line for this key (without a comment). */
  public_key: string
  encrypted: boolean
}

function invalid(path: string, message: string): ValidationError {
  return new ValidationError(`invalid request body: ${path}: ${message}`, [{ path, message }])
}

/*
 * Opening an encrypted OpenSSH key runs bcrypt_pbkdf in JavaScript: about 0.5 s at ssh-keygen's
 * default 16 rounds, minutes for a key made with a large `-a`. That runs in a worker thread, so the
 * controller's event loop (HTTP, agent streams, heartbeats) never waits for it, and is cut off after
 * `timeoutMs`. The worker is plain CommonJS evaluated from a string, so it needs no separate file
 * in the server bundle; it loads ssh2 by absolute path.
 */
const SSH2_PATH = createRequire(import.meta.url).resolve('ssh2')
const PARSE_WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { utils } = require(workerData.ssh2)
const describe = (r) => {
  if (r instanceof Error) return { error: r.message }
  const key = Array.isArray(r) ? r[0] : r
  if (!key) return { error: 'no key' }
  return { type: key.type, isPrivate: key.isPrivateKey(), publicSsh: key.getPublicSSH().toString('base64'), publicPem: key.getPublicPEM() }
}
const first = utils.parseKey(workerData.key)
const encrypted = /Proc-Type:\\s*4,ENCRYPTED/.test(workerData.key) || (first instanceof Error && /no passphrase given/i.test(first.message))
const parsed = !encrypted ? describe(first) : workerData.passphrase === undefined ? { error: 'no passphrase' } : describe(utils.parseKey(workerData.key, workerData.passphrase))
parentPort.postMessage({ encrypted, parsed })
`

type ParsedSsh = { encrypted: boolean; parsed: { error: string } | { type: string; isPrivate: boolean; publicSsh: string; publicPem: string } }

export const SSH_KEY_PARSE_TIMEOUT_MS = 20_000

function parseSshKeyInWorker(key: string, passphrase: string | undefined, timeoutMs: number): Promise<ParsedSsh | 'timeout'> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(PARSE_WORKER, { eval: true, workerData: { ssh2: SSH2_PATH, key, passphrase } })
    const timer = setTimeout(() => {
      resolve('timeout')
      void worker.terminate()
    }, timeoutMs)
    worker.once('message', (m: ParsedSsh) => {
      clearTimeout(timer)
      resolve(m)
      void worker.terminate()
    })
    worker.once('error', (err) => {
      clearTimeout(timer)
      // The worker's error could quote its input: keep only that it failed.
      reject(new Error('ssh key parser failed', { cause: { name: err.name } }))
    })
    worker.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`ssh key parser exited (${code}) without an answer`))
    })
  })
}

/** An OpenSSH or PEM private key (RSA, ECDSA, Ed25519), opened with its passphrase when it is encrypted. */
export async function inspectSshKey(privateKey: string, passphrase: string | undefined, opts: { timeoutMs?: number } = {}): Promise<SshKeyInfo> {
  const result = await parseSshKeyInWorker(privateKey, passphrase, opts.timeoutMs ?? SSH_KEY_PARSE_TIMEOUT_MS)
  if (result === 'timeout') {
    throw invalid('private_key', 'opening this key takes too long (its passphrase uses many key derivation rounds); re-encrypt it with `ssh-keygen -p -a 16 -f <file>`')
  }
  const { encrypted, parsed } = result
  if (encrypted && passphrase === undefined) throw invalid('passphrase', 'the private key is encrypted: give its passphrase')
  if ('error' in parsed) {
    if (encrypted) throw invalid('passphrase', 'the passphrase does not open the private key (or the key is damaged)')
    throw invalid('private_key', 'not a valid OpenSSH or PEM private key (RSA, ECDSA or Ed25519)')
  }
  if (!parsed.isPrivate) throw invalid('private_key', 'this is a public key; give the private key')
  const type = SUPPORTED_SSH_KEYS.find((t) => t === parsed.type)
  if (!type) throw invalid('private_key', `${parsed.type} keys are not supported; use Ed25519, ECDSA or RSA`)
  const blob = Buffer.from(parsed.publicSsh, 'base64')
  return {
    key_type: type,
    bits: sshKeyBits(type, parsed.publicPem),
    fingerprint: `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`,
    public_key: `${type} ${parsed.publicSsh}`,
    encrypted,
  }
}

function sshKeyBits(type: SshKeyInfo['key_type'], publicPem: string): number {
  if (type === 'ssh-ed25519') return 256
  if (type.startsWith('ecdsa-sha2-nistp')) return Number(type.slice('ecdsa-sha2-nistp'.length))
  return createPublicKey(publicPem).asymmetricKeyDetails?.modulusLength ?? 0
}

export interface CertificateInfo {
  subject: string
  issuer: string
  serial_number: string
  not_before: string
  not_after: string
  /** SHA-256 of the DER certificate, colon-separated hex (as `openssl x509 -fingerprint -sha256`). */
  fingerprint: string
  key_type: string
  /** Certificates after the first in `certificate` (intermediates sent with it). */
  chain_length: number
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

/** Every certificate in a PEM bundle; a 400 naming `field` when there is none or one does not parse. */
export function parseCertificates(pem: string, field: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERT) ?? []
  if (blocks.length === 0) throw invalid(field, 'expected one or more PEM certificates (-----BEGIN CERTIFICATE-----)')
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block)
    } catch {
      throw invalid(field, `certificate ${i + 1} is not a valid X.509 certificate`)
    }
  })
}

/** A client certificate with its private key: the key must open with the passphrase and match the certificate. */
export function inspectCertificate(input: { certificate: string; private_key: string; passphrase?: string | undefined; ca?: string | undefined }): CertificateInfo {
  const [leaf, ...chain] = parseCertificates(input.certificate, 'certificate')
  if (input.ca !== undefined) parseCertificates(input.ca, 'ca')
  const key = openPemPrivateKey(input.private_key, input.passphrase)
  if (!leaf!.checkPrivateKey(key)) throw invalid('private_key', 'does not match the certificate')
  const dn = (s: string) => s.split('\n').filter(Boolean).join(', ')
  return {
    subject: dn(leaf!.subject),
    issuer: dn(leaf!.issuer),
    serial_number: leaf!.serialNumber,
    not_before: new Date(leaf!.validFrom).toISOString(),
    not_after: new Date(leaf!.validTo).toISOString(),
    fingerprint: leaf!.fingerprint256,
    key_type: leaf!.publicKey.asymmetricKeyType ?? 'unknown',
    chain_length: chain.length,
  }
}

function openPemPrivateKey(pem: string, passphrase: string | undefined): KeyObject {
  const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,ENCRYPTED/.test(pem)
  if (encrypted && passphrase === undefined) throw invalid('passphrase', 'the private key is encrypted: give its passphrase')
  try {
    return createPrivateKey({ key: pem, format: 'pem', ...(encrypted ? { passphrase } : {}) })
  } catch {
    if (encrypted) throw invalid('passphrase', 'the passphrase does not open the private key (or the key is damaged)')
    throw invalid('private_key', 'not a valid PEM private key')
  }
}
