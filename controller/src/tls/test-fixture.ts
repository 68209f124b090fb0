// Test helpers (not used by the controller): operator-style certificate chains for OPSC_TLS_CERT.
import 'reflect-metadata' // @peculiar/x509 (through tsyringe) needs the Reflect metadata API
import { webcrypto } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import * as x509 from '@peculiar/x509'

export interface IssuedCert {
  cert: x509.X509Certificate
  keys: webcrypto.CryptoKeyPair
  pem: string
}

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const

/** A CA certificate (self-signed when `issuer` is null) or a server certificate for localhost / 127.0.0.1. */
export async function issueCert(subject: string, issuer: IssuedCert | null, ca: boolean): Promise<IssuedCert> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '01' + Buffer.from(webcrypto.getRandomValues(new Uint8Array(7))).toString('hex'),
    subject,
    issuer: issuer?.cert.subject ?? subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 30 * 86_400_000),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    publicKey: keys.publicKey,
    signingKey: (issuer?.keys ?? keys).privateKey,
    extensions: ca
      ? [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)]
      : [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          new x509.SubjectAlternativeNameExtension([
            { type: 'dns', value: 'localhost' },
            { type: 'ip', value: '127.0.0.1' },
          ]),
        ],
  })
  return { cert, keys, pem: cert.toString('pem') + '\n' }
}

export async function privateKeyPem(keys: webcrypto.CryptoKeyPair): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64')
  return `-----BEGIN PRIVATE KEY-----\n${der.match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`
}

/** Writes `chain` (in the given order) and the server key (default: the first certificate's) to a temp dir. */
export async function writeChainFiles(chain: IssuedCert[], key = chain[0]!.keys): Promise<{ certFile: string; keyFile: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'opsc-byo-tls-'))
  const certFile = path.join(dir, 'chain.pem')
  const keyFile = path.join(dir, 'server.key')
  writeFileSync(certFile, chain.map((c) => c.pem).join(''))
  writeFileSync(keyFile, await privateKeyPem(key), { mode: 0o600 })
  return { certFile, keyFile }
}
