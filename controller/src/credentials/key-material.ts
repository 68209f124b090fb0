import { createHash, createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto'
import ssh2 from 'ssh2'
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

/** An OpenSSH or PEM private key (RSA, ECDSA, Ed25519), opened with its passphrase when it is encrypted. */
export function inspectSshKey(privateKey: string, passphrase: string | undefined): SshKeyInfo {
  const encrypted = /Proc-Type:\s*4,ENCRYPTED/.test(privateKey) || /no passphrase given/i.test(errorOf(ssh2.utils.parseKey(privateKey)) ?? '')
  if (encrypted && passphrase === undefined) throw invalid('passphrase', 'the private key is encrypted: give its passphrase')
  const parsed = ssh2.utils.parseKey(privateKey, encrypted ? passphrase : undefined)
  if (parsed instanceof Error) {
    if (encrypted) throw invalid('passphrase', 'the passphrase does not open the private key (or the key is damaged)')
    throw invalid('private_key', 'not a valid OpenSSH or PEM private key (RSA, ECDSA or Ed25519)')
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed
  if (!key || !key.isPrivateKey()) throw invalid('private_key', 'this is a public key; give the private key')
  const type = SUPPORTED_SSH_KEYS.find((t) => t === key.type)
  if (!type) throw invalid('private_key', `${key.type} keys are not supported; use Ed25519, ECDSA or RSA`)
  const blob = key.getPublicSSH()
  return {
    key_type: type,
    bits: sshKeyBits(type, key.getPublicPEM()),
    fingerprint: `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`,
    public_key: `${type} ${blob.toString('base64')}`,
    encrypted,
  }
}

function sshKeyBits(type: SshKeyInfo['key_type'], publicPem: string): number {
  if (type === 'ssh-ed25519') return 256
  if (type.startsWith('ecdsa-sha2-nistp')) return Number(type.slice('ecdsa-sha2-nistp'.length))
  return createPublicKey(publicPem).asymmetricKeyDetails?.modulusLength ?? 0
}

const errorOf = (r: unknown) => (r instanceof Error ? r.message : undefined)

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
