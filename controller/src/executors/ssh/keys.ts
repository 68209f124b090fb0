import { randomBytes } from 'node:crypto'
import { Worker } from 'node:worker_threads'
import { SSH2_PATH } from './ssh2.ts'

/*
 * ssh2 opens an encrypted OpenSSH key with bcrypt_pbkdf in JavaScript, synchronously, when a
 * connection starts: about 0.5 s of blocked event loop per connection at ssh-keygen's default
 * rounds. So a key with a passphrase is opened in a worker thread and handed back unencrypted, in
 * a form ssh2 parses instantly (PKCS#1 / SEC1 PEM, or an unencrypted OpenSSH container for
 * Ed25519, whose PKCS#8 PEM ssh2 cannot read). The decrypted key lives only in this connection's
 * memory.
 */

const OPEN_WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { utils } = require(workerData.ssh2)
let key = utils.parseKey(workerData.key, workerData.passphrase)
if (Array.isArray(key)) key = key[0]
if (!key || key instanceof Error || !key.isPrivateKey()) parentPort.postMessage({ error: true })
else parentPort.postMessage({ type: key.type, privatePem: key.getPrivatePEM(), publicSsh: key.getPublicSSH() })
`

type Opened = { error: true } | { type: string; privatePem: string; publicSsh: Uint8Array }

const KEY_OPEN_TIMEOUT_MS = 20_000

export class KeyOpenError extends Error {}

function openInWorker(key: string, passphrase: string, timeoutMs: number): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(OPEN_WORKER, { eval: true, workerData: { ssh2: SSH2_PATH, key, passphrase } })
    const finish = (fn: () => void) => {
      clearTimeout(timer)
      fn()
      void worker.terminate()
    }
    const timer = setTimeout(() => finish(() => reject(new KeyOpenError('opening the private key takes too long (its passphrase uses many key derivation rounds); re-encrypt it with `ssh-keygen -p -a 16 -f <file>`'))), timeoutMs)
    worker.once('message', (m: Opened) => finish(() => resolve(m)))
    // The worker's own error could quote the key: keep only that it failed.
    worker.once('error', () => finish(() => reject(new KeyOpenError('the private key could not be opened'))))
    worker.once('exit', () => finish(() => reject(new KeyOpenError('the private key could not be opened'))))
  })
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}
const sshString = (b: Buffer | string) => {
  const buf = typeof b === 'string' ? Buffer.from(b) : b
  return Buffer.concat([u32(buf.length), buf])
}

/** An unencrypted `openssh-key-v1` container for an Ed25519 key (PROTOCOL.key in OpenSSH). */
function openSshEd25519(seed: Buffer, publicBlob: Buffer): string {
  const pub = publicBlob.subarray(publicBlob.length - 32)
  const check = randomBytes(4)
  let priv = Buffer.concat([check, check, sshString('ssh-ed25519'), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString('')])
  const pad = (8 - (priv.length % 8)) % 8
  priv = Buffer.concat([priv, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))])
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0', 'latin1'), sshString('none'), sshString('none'), sshString(''), u32(1), sshString(publicBlob), sshString(priv)])
  const lines = body.toString('base64').match(/.{1,70}/g) ?? []
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`
}

/** The key, opened with its passphrase off the main thread, as text ssh2 reads without a passphrase. */
export async function unlockPrivateKey(key: string, passphrase: string, timeoutMs = KEY_OPEN_TIMEOUT_MS): Promise<string> {
  const opened = await openInWorker(key, passphrase, timeoutMs)
  if ('error' in opened) throw new KeyOpenError('the passphrase does not open the private key (or the key is damaged)')
  if (opened.type !== 'ssh-ed25519') return opened.privatePem
  // ssh2's Ed25519 PEM is PKCS#8, whose DER ends with the 32-byte seed.
  const der = Buffer.from(opened.privatePem.replace(/-----[^-]+-----|\s/g, ''), 'base64')
  return openSshEd25519(der.subarray(der.length - 32), Buffer.from(opened.publicSsh))
}
