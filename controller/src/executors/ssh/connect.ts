import type { Duplex } from 'node:stream'
import type { AppContext } from '../../context.ts'
import type { OpenedCredential } from '../../credentials/service.ts'
import type { Logger } from '../../log.ts'
import { checkHostKey, type HostKeyDecision, type HostKeyPolicy } from '../../targets/host-keys.ts'
import { getTargetRow } from '../../targets/service.ts'
import type { TargetRow } from '../../targets/targets.sql.ts'
import { KeyOpenError, unlockPrivateKey } from './keys.ts'
import { ssh2, type ClientError, type ConnectConfig, type SshClient } from './ssh2.ts'

/*
 * Opens an authenticated SSH connection to a target, through its jump hosts when it has any.
 * Every host's key is checked against the trust store (checkHostKey) before anything is sent to
 * it, and every failure becomes an SshError with one line an operator can act on.
 */

export const SSH_READY_TIMEOUT_MS = 15_000
const KEEPALIVE_INTERVAL_MS = 15_000
const KEEPALIVE_COUNT_MAX = 3

export type SshErrorKind = 'config' | 'credential' | 'auth' | 'host_key' | 'refused' | 'timeout' | 'unreachable' | 'lost' | 'aborted'

/** A failure to reach or use a target: the target's problem (step `failed`), never ours. */
export class SshError extends Error {
  constructor(
    readonly kind: SshErrorKind,
    message: string,
    opts?: { cause?: unknown },
  ) {
    super(message, opts)
    this.name = new.target.name
  }
  /** Worth another attempt later (a network blip), as opposed to a wrong password or key. */
  get retryable(): boolean {
    return this.kind === 'refused' || this.kind === 'timeout' || this.kind === 'unreachable' || this.kind === 'lost'
  }
}

export interface ConnectDeps {
  ctx: AppContext
  log: Logger
  /** Opens a credential by id (the engine's `x.credential`, which also masks its secrets). */
  credential(ref: string): Promise<OpenedCredential>
  signal?: AbortSignal
}

export interface SshConnection {
  client: SshClient
  /** `name (address:port)` of the final host, for messages. */
  label: string
  /** Closes the connection and every jump connection under it. */
  close(): void
}

interface Endpoint {
  targetId: string
  label: string
  address: string
  port: number
  policy: HostKeyPolicy
  credentialId: string | null
}

function endpoint(row: TargetRow, credentialId?: string | null): Endpoint {
  const c = row.connection
  if (c.type !== 'ssh') throw new SshError('config', `target ${row.name} is reached over ${c.type}, not SSH`)
  return { targetId: row.id, label: `${row.name} (${row.address}:${c.port})`, address: row.address, port: c.port, policy: c.host_key_policy, credentialId: credentialId ?? c.credential_id }
}

type Login = { username: string } & ({ password: string } | { privateKey: string })

async function login(ep: Endpoint, deps: ConnectDeps): Promise<Login> {
  if (!ep.credentialId) throw new SshError('credential', `${ep.label} has no SSH credential; set connection.credential_id`)
  let cred: OpenedCredential
  try {
    cred = await deps.credential(ep.credentialId)
  } catch (err) {
    throw new SshError('credential', `credential for ${ep.label}: ${(err as Error).message}`, { cause: err })
  }
  if (cred.type === 'ssh_password') return { username: cred.username, password: cred.password }
  if (cred.type !== 'ssh_key') throw new SshError('credential', `credential ${cred.name} is a ${cred.type} credential; SSH needs ssh_password or ssh_key`)
  if (cred.passphrase === undefined) return { username: cred.username, privateKey: cred.private_key }
  try {
    return { username: cred.username, privateKey: await unlockPrivateKey(cred.private_key, cred.passphrase) }
  } catch (err) {
    if (err instanceof KeyOpenError) throw new SshError('credential', `credential ${cred.name}: ${err.message}`, { cause: err })
    throw err
  }
}

/** The key type named at the start of an SSH public key blob (`ssh-ed25519`, `ssh-rsa`, …). */
function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown'
  const len = blob.readUInt32BE(0)
  return len > 0 && len < 64 && blob.length >= 4 + len ? blob.subarray(4, 4 + len).toString('latin1') : 'unknown'
}

function hostKeyRefusal(ep: Endpoint, d: Exclude<HostKeyDecision, { accept: true }>, fingerprint: string, keyType: string): string {
  const key = `${fingerprint} (${keyType})`
  switch (d.reason) {
    case 'unknown_key':
      return `host key of ${ep.label} is not trusted: ${key} is unknown and host_key_policy is ${ep.policy}; approve it in the target's host keys`
    case 'changed_key':
      return `host key of ${ep.label} has changed: it presented ${key}, which is not its trusted key; if the host was rebuilt, approve the new key in the target's host keys, otherwise this may be a man-in-the-middle attack`
    case 'revoked_key':
      return `host key of ${ep.label} was revoked: it presented ${key}`
  }
}

const NET_MESSAGES: Record<string, [SshErrorKind, string]> = {
  ECONNREFUSED: ['refused', 'connection refused (is sshd listening on that port?)'],
  ECONNRESET: ['lost', 'connection reset by the host'],
  ETIMEDOUT: ['timeout', 'timed out connecting'],
  EHOSTUNREACH: ['unreachable', 'host unreachable'],
  ENETUNREACH: ['unreachable', 'network unreachable'],
  ENOTFOUND: ['unreachable', 'the host name does not resolve'],
  EAI_AGAIN: ['unreachable', 'the host name could not be resolved (DNS lookup failed)'],
}

function describeClientError(err: ClientError, ep: Endpoint, auth: Login, readyTimeoutMs: number): SshError {
  if (err.level === 'client-authentication') {
    return new SshError('auth', `authentication as ${auth.username} failed on ${ep.label}: the server refused the ${'password' in auth ? 'password' : 'key'}`, { cause: err })
  }
  if (err.level === 'client-timeout') {
    const msg = /keepalive/i.test(err.message) ? `${ep.label} stopped answering (keepalive timeout)` : `no SSH handshake with ${ep.label} within ${Math.round(readyTimeoutMs / 1000)} s`
    return new SshError('timeout', msg, { cause: err })
  }
  const net = err.code ? NET_MESSAGES[err.code] : undefined
  if (net) return new SshError(net[0], `${ep.label}: ${net[1]}`, { cause: err })
  return new SshError('unreachable', `SSH connection to ${ep.label} failed: ${err.message}`, { cause: err })
}

function openClient(ep: Endpoint, auth: Login, deps: ConnectDeps, sock: Duplex | undefined, readyTimeoutMs: number): Promise<SshClient> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client()
    let refusal: string | undefined
    let settled = false
    const onAbort = () => fail(abortedError(deps.signal!))
    const fail = (err: SshError) => {
      if (settled) return
      settled = true
      deps.signal?.removeEventListener('abort', onAbort)
      client.destroy()
      reject(err)
    }
    if (deps.signal?.aborted) return onAbort()
    deps.signal?.addEventListener('abort', onAbort, { once: true })
    // A permanent handler: an error after the handshake (keepalive, reset) must never crash the process.
    client.on('error', (err) => {
      if (!settled) fail(refusal ? new SshError('host_key', refusal, { cause: err }) : describeClientError(err, ep, auth, readyTimeoutMs))
      else deps.log.debug({ target: ep.label, err: { message: err.message, level: err.level } }, 'ssh.connection_error')
    })
    client.once('close', () => fail(new SshError('lost', `${ep.label} closed the connection during the SSH handshake`)))
    client.once('ready', () => {
      if (settled) return
      settled = true
      deps.signal?.removeEventListener('abort', onAbort)
      resolve(client)
    })
    client.on('keyboard-interactive', (_name, _instructions, _lang, prompts, finish) => finish(prompts.map(() => ('password' in auth ? auth.password : ''))))
    const hostVerifier = (key: Buffer, verify: (ok: boolean) => void) => {
      const keyType = keyTypeOf(key)
      checkHostKey(deps.ctx.db, ep.targetId, ep.policy, { keyType, publicKey: key }, deps.ctx.clock()).then(
        (d) => {
          if (!d.accept) refusal = hostKeyRefusal(ep, d, d.fingerprint, keyType)
          verify(d.accept)
        },
        (err: unknown) => {
          deps.log.error({ err, target: ep.label }, 'ssh.host_key_check_failed')
          refusal = `the host key of ${ep.label} could not be checked against the trust store`
          verify(false)
        },
      )
    }
    const config: ConnectConfig = {
      ...(sock ? { sock } : { host: ep.address, port: ep.port }),
      username: auth.username,
      readyTimeout: readyTimeoutMs,
      keepaliveInterval: KEEPALIVE_INTERVAL_MS,
      keepaliveCountMax: KEEPALIVE_COUNT_MAX,
      hostVerifier,
      ...('password' in auth ? { password: auth.password, tryKeyboard: true, authHandler: ['password', 'keyboard-interactive'] } : { privateKey: auth.privateKey, authHandler: ['publickey'] }),
    }
    try {
      client.connect(config)
    } catch {
      // ssh2 throws synchronously for a key it cannot parse; its message could quote the key.
      fail(new SshError('credential', `the private key for ${ep.label} is not a valid OpenSSH or PEM private key, or is encrypted without a passphrase`))
    }
  })
}

function forwardTo(via: SshClient, viaLabel: string, ep: Endpoint): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    via.forwardOut('127.0.0.1', 0, ep.address, ep.port, (err, channel) => {
      if (err) reject(new SshError('unreachable', `jump host ${viaLabel} could not reach ${ep.label}: ${err.message}`, { cause: err }))
      else resolve(channel)
    })
  })
}

function abortedError(signal: AbortSignal): SshError {
  return new SshError('aborted', `connection attempt ${signal.reason === 'timed_out' ? 'timed out' : 'cancelled'}`)
}

/** Connects to `target` (an SSH target), hop by hop through `connection.jump`. */
export async function connectSsh(target: TargetRow, deps: ConnectDeps, opts: { readyTimeoutMs?: number } = {}): Promise<SshConnection> {
  const readyTimeoutMs = opts.readyTimeoutMs ?? SSH_READY_TIMEOUT_MS
  const final = endpoint(target)
  const jumps = target.connection.type === 'ssh' ? target.connection.jump : []
  const hops: Endpoint[] = []
  for (const hop of jumps) {
    const row = await getTargetRow(deps.ctx.db, hop.target_id).catch((err: unknown) => {
      throw new SshError('config', `jump host ${hop.target_id} of ${final.label} does not exist`, { cause: err })
    })
    hops.push(endpoint(row, hop.credential_id))
  }
  const clients: SshClient[] = []
  const closeAll = () => {
    for (const c of clients.reverse()) c.end()
  }
  const onAbort = () => {
    for (const c of clients) c.destroy()
  }
  deps.signal?.addEventListener('abort', onAbort, { once: true })
  try {
    let prev: { client: SshClient; label: string } | undefined
    for (const ep of [...hops, final]) {
      if (deps.signal?.aborted) throw abortedError(deps.signal)
      const auth = await login(ep, deps)
      const sock = prev ? await forwardTo(prev.client, prev.label, ep) : undefined
      const client = await openClient(ep, auth, deps, sock, readyTimeoutMs).catch((err: unknown) => {
        if (prev && err instanceof SshError) throw new SshError(err.kind, `${err.message} (via jump host ${prev.label})`, { cause: err })
        throw err
      })
      clients.push(client)
      prev = { client, label: ep.label }
    }
    if (deps.signal?.aborted) throw abortedError(deps.signal)
    let closed = false
    return {
      client: clients[clients.length - 1]!,
      label: final.label,
      close: () => {
        if (closed) return
        closed = true
        closeAll()
      },
    }
  } catch (err) {
    closeAll()
    if (deps.signal?.aborted) throw abortedError(deps.signal)
    throw err
  } finally {
    deps.signal?.removeEventListener('abort', onAbort)
  }
}
