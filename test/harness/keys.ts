import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

/** Real keys and certificates made by ssh-keygen and openssl, for credential tests. */

export const hasSshKeygen = spawnSync('ssh-keygen', ['-?'], { stdio: 'ignore' }).error === undefined
export const hasOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).error === undefined

export interface SshKeyPair {
  privateKey: string
  publicKey: string
  /** As `ssh-keygen -lf` prints it: `SHA256:…`. */
  fingerprint: string
  bits: number
}

function inTempDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(path.join(tmpdir(), 'opsc-keys-'))
  try {
    return fn(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** `ssh-keygen -t <type> -N <passphrase> [-m PEM] [-b bits] [-a kdf rounds]`; an empty passphrase leaves the key unencrypted. */
export function generateSshKey(type: 'ed25519' | 'ecdsa' | 'rsa', opts: { passphrase?: string; pem?: boolean; bits?: number; rounds?: number } = {}): SshKeyPair {
  return inTempDir((dir) => {
    const file = path.join(dir, 'id')
    const args = ['-q', '-t', type, '-N', opts.passphrase ?? '', '-C', 'opsc-test', '-f', file]
    if (opts.pem) args.push('-m', 'PEM')
    if (opts.bits) args.push('-b', String(opts.bits))
    if (opts.rounds) args.push('-a', String(opts.rounds))
    execFileSync('ssh-keygen', args, { stdio: 'ignore' })
    const [bits, fingerprint] = execFileSync('ssh-keygen', ['-lf', `${file}.pub`], { encoding: 'utf8' }).trim().split(/\s+/)
    return { privateKey: readFileSync(file, 'utf8'), publicKey: readFileSync(`${file}.pub`, 'utf8').trim(), fingerprint: fingerprint!, bits: Number(bits) }
  })
}

export interface TestCertificate {
  certificate: string
  privateKey: string
  /** SHA-256 fingerprint as colon-separated upper-case hex. */
  fingerprint: string
}

/** A self-signed certificate; with a passphrase its key is encrypted PKCS#8. */
export function generateCertificate(opts: { cn?: string; passphrase?: string; key?: 'rsa' | 'ec' } = {}): TestCertificate {
  return inTempDir((dir) => {
    const [keyFile, certFile] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')]
    const keyArgs = opts.key === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048']
    const pass = opts.passphrase ? ['-passout', `pass:${opts.passphrase}`] : ['-nodes']
    execFileSync('openssl', ['req', '-x509', ...keyArgs, ...pass, '-keyout', keyFile, '-out', certFile, '-days', '30', '-subj', `/CN=${opts.cn ?? 'client.test'}/O=OpsConductor Tests`], { stdio: 'ignore' })
    const fp = execFileSync('openssl', ['x509', '-in', certFile, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' }).trim().split('=')[1]!
    return { certificate: readFileSync(certFile, 'utf8'), privateKey: readFileSync(keyFile, 'utf8'), fingerprint: fp }
  })
}
