import { createHash, randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import type { AppContext } from '../../context.ts'
import type { OpenedCredential } from '../../credentials/service.ts'
import type { Logger } from '../../log.ts'
import { checkHostKey, type HostKeyDecision, type HostKeyPolicy } from '../../targets/host-keys.ts'
import { getTargetRow } from '../../targets/service.ts'
import type { TargetRow } from '../../targets/targets.sql.ts'
import { KeyOpenError, unlockPrivateKey } from './keys.ts'
import { abortedError, SshError, type SshFailure } from './errors.ts'
import { ssh2, type ClientError, type ConnectConfig, type SshClient } from './ssh2.ts'

/*
 * Opens an authenticated SSH connection to a target, through its jump hosts when it has any.
 * Every host's key is checked against the trust store (checkHostKey) before anything is sent to
 * it, and every failure becomes an SshError with one line an operator can act on. The pool
 * (pool.ts) decides when a connection is opened; this file only knows how.
 */

const KEEPALIVE_INTERVAL_MS = 15_000
const KEEPALIVE_COUNT_MAX = 3

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
  /** Closes the connection and every jump connection under it (a pooled one goes back to its pool). */
  close(): void
  /** True when this connection served an earlier step (pooled connections only). */
  readonly reused?: boolean
  /** Drops a pooled connection that misbehaved instead of returning it to the pool; same as close() otherwise. */
  discard?(): void
  /** False once a pooled connection is known to be closed. */
  alive?(): boolean
}

/**
 * A reused pooled connection that failed to open a channel because it had died since its last
 * step (the server restarted, a NAT forgot it): the step gets one fresh connection instead.
 */
export function staleConnection(conn: SshConnection, err: unknown): boolean {
  if (!conn.reused) return false
  return conn.alive?.() === false || /not connected|no response from server|socket|ECONNRESET|EPIPE/i.test(String((err as Error)?.message ?? err))
}

export interface Endpoint {
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

/** A hop's credential, opened; the private key is unlocked only when a connection is really made. */
interface HopCredential {
  username: string
  /** Changes whenever anything that authenticates changes (username, password, key, passphrase). */
  digest: string
  unlock(): Promise<Login>
}

// Salted, so the digests kept in pool keys say nothing about the secrets outside this process.
const DIGEST_SALT = randomBytes(16)
const digestOf = (parts: (string | undefined)[]) => createHash('sha256').update(DIGEST_SALT).update(JSON.stringify(parts)).digest('base64url')

async function hopCredential(ep: Endpoint, deps: ConnectDeps): Promise<HopCredential> {
  if (!ep.credentialId) throw new SshError('credential', `${ep.label} has no SSH credential; set connection.credential_id`)
  let cred: OpenedCredential
  try {
    cred = await deps.credential(ep.credentialId)
  } catch (err) {
    throw new SshError('credential', `credential for ${ep.label}: ${(err as Error).message}`, { cause: err })
  }
  if (cred.type === 'ssh_password') {
    const login = { username: cred.username, password: cred.password }
    return { username: cred.username, digest: digestOf([cred.id, cred.type, cred.username, cred.password]), unlock: () => Promise.resolve(login) }
  }
  if (cred.type !== 'ssh_key') throw new SshError('credential', `credential ${cred.name} is a ${cred.type} credential; SSH needs ssh_password or ssh_key`)
  const { username, private_key: key, passphrase } = cred
  const digest = digestOf([cred.id, cred.type, username, key, passphrase])
  if (passphrase === undefined) return { username, digest, unlock: () => Promise.resolve({ username, privateKey: key }) }
  return {
    username,
    digest,
    unlock: async () => {
      try {
        return { username, privateKey: await unlockPrivateKey(key, passphrase) }
      } catch (err) {
        if (err instanceof KeyOpenError) throw new SshError('credential', `credential ${cred.name}: ${err.message}`, { cause: err })
        throw err
      }
    },
  }
}

/** Everything needed to open a connection to a target, resolved (jump hosts looked up, credentials opened). */
export interface ResolvedChain {
  /** Jump hosts first, the target last. */
  hops: (Endpoint & { credential: HopCredential })[]
  label: string
  /** Identifies what the connection would be: equal keys may share one connection. */
  key: string
  targetId: string
}

/** Looks up the target's jump hosts and opens every hop's credential. */
export async function resolveChain(target: TargetRow, deps: ConnectDeps): Promise<ResolvedChain> {
  const final = endpoint(target)
  const jumps = target.connection.type === 'ssh' ? target.connection.jump : []
  const eps: Endpoint[] = []
  for (const hop of jumps) {
    const row = await getTargetRow(deps.ctx.db, hop.target_id).catch((err: unknown) => {
      throw new SshError('config', `jump host ${hop.target_id} of ${final.label} does not exist`, { cause: err })
    })
    eps.push(endpoint(row, hop.credential_id))
  }
  eps.push(final)
  const hops = []
  for (const ep of eps) hops.push({ ...ep, credential: await hopCredential(ep, deps) })
  const key = JSON.stringify(hops.map((h) => [h.targetId, h.address, h.port, h.policy, h.credentialId, h.credential.digest]))
  return { hops, label: final.label, key, targetId: final.targetId }
}

/** The key type named at the start of an SSH public key blob (`ssh-ed25519`, `ssh-rsa`, …). */
function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown'
  const len = blob.readUInt32BE(0)
  return len > 0 && len < 64 && blob.length >= 4 + len ? blob.subarray(4, 4 + len).toString('latin1') : 'unknown'
}

function hostKeyRefusal(ep: Endpoint, d: Exclude<HostKeyDecision, { accept: true }>, fingerprint: string, keyType: string): { failure: SshFailure; message: string } {
  const key = `${fingerprint} (${keyType})`
  switch (d.reason) {
    case 'unknown_key':
      return { failure: 'host_key_unknown', message: `host key of ${ep.label} is not trusted: ${key} is unknown and host_key_policy is ${ep.policy}; approve it in the target's host keys` }
    case 'changed_key':
      return { failure: 'host_key_mismatch', message: `host key of ${ep.label} has changed: it presented ${key}, which is not its trusted key; if the host was rebuilt, approve the new key in the target's host keys, otherwise this may be a man-in-the-middle attack` }
    case 'revoked_key':
      return { failure: 'host_key_mismatch', message: `host key of ${ep.label} was revoked: it presented ${key}` }
  }
}

const NET_MESSAGES: Record<string, [SshFailure, string]> = {
  ECONNREFUSED: ['refused', 'connection refused (is sshd listening on that port?)'],
  ECONNRESET: ['lost', 'connection reset by the host'],
  EPIPE: ['lost', 'connection reset by the host'],
  ETIMEDOUT: ['timeout', 'timed out connecting'],
  EHOSTUNREACH: ['unreachable', 'host unreachable'],
  ENETUNREACH: ['unreachable', 'network unreachable'],
  ENOTFOUND: ['dns', 'the host name does not resolve'],
  EAI_AGAIN: ['dns', 'the host name could not be resolved (DNS lookup failed)'],
}

/** `received`: bytes the server sent before the failure (none: it dropped us before its banner). */
function describeClientError(err: ClientError, ep: Endpoint, auth: Login, readyTimeoutMs: number, received: number): SshError {
  if (err.level === 'client-authentication') {
    return new SshError('auth_failed', `authentication as ${auth.username} failed on ${ep.label}: the server refused the ${'password' in auth ? 'password' : 'key'}`, { cause: err })
  }
  if (err.level === 'client-timeout') {
    const msg = /keepalive/i.test(err.message) ? `${ep.label} stopped answering (keepalive timeout)` : `no SSH handshake with ${ep.label} within ${Math.round(readyTimeoutMs / 1000)} s`
    return new SshError('timeout', msg, { cause: err })
  }
  const net = err.code ? NET_MESSAGES[err.code] : undefined
  if (net) return new SshError(net[0], `${ep.label}: ${net[1]}`, { cause: err, transient: net[0] === 'lost' && received === 0 })
  if (err.level === 'protocol' && /lost before handshake/i.test(err.message)) {
    if (received === 0) return new SshError('lost', `SSH connection to ${ep.label} failed: ${err.message}`, { cause: err, transient: true })
    return new SshError('protocol', `${ep.label} is not an SSH server: it answered without an SSH banner`, { cause: err })
  }
  if (err.level === 'protocol' || err.level === 'handshake') return new SshError('protocol', `SSH connection to ${ep.label} failed: ${err.message}`, { cause: err })
  return new SshError('unreachable', `SSH connection to ${ep.label} failed: ${err.message}`, { cause: err })
}

/** A host key a connection was accepted with, so that a reused connection can be checked again. */
export interface AcceptedHostKey {
  targetId: string
  policy: HostKeyPolicy
  fingerprint: string
}

function openClient(ep: Endpoint, auth: Login, deps: ConnectDeps, sock: Duplex | undefined, readyTimeoutMs: number, accepted: (k: AcceptedHostKey) => void): Promise<SshClient> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client()
    let refusal: { failure: SshFailure; message: string } | undefined
    let settled = false
    let received = 0
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
      if (!settled) fail(refusal ? new SshError(refusal.failure, refusal.message, { cause: err }) : describeClientError(err, ep, auth, readyTimeoutMs, received))
      else deps.log.debug({ target: ep.label, err: { message: err.message, level: err.level } }, 'ssh.connection_error')
    })
    client.once('close', () => fail(new SshError('lost', `${ep.label} closed the connection during the SSH handshake`, { transient: received === 0 })))
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
          else accepted({ targetId: ep.targetId, policy: ep.policy, fingerprint: d.fingerprint })
          verify(d.accept)
        },
        (err: unknown) => {
          deps.log.error({ err, target: ep.label }, 'ssh.host_key_check_failed')
          refusal = { failure: 'host_key_unknown', message: `the host key of ${ep.label} could not be checked against the trust store` }
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
      return fail(new SshError('credential', `the private key for ${ep.label} is not a valid OpenSSH or PEM private key, or is encrypted without a passphrase`))
    }
    // Counts what the server said before a failure: nothing at all means it dropped us before its banner.
    // (ssh2 paused the socket in connect(); this listener does not resume it.)
    ;(client as unknown as { _sock?: Duplex })._sock?.on('data', (d: Buffer) => (received += d.length))
  })
}

function forwardTo(via: SshClient, viaLabel: string, ep: Endpoint): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    try {
      via.forwardOut('127.0.0.1', 0, ep.address, ep.port, (err, channel) => {
        if (err) reject(new SshError('unreachable', `jump host ${viaLabel} could not reach ${ep.label}: ${err.message}`, { cause: err }))
        else resolve(channel)
      })
    } catch (err) {
      reject(new SshError('lost', `jump host ${viaLabel} closed the connection`, { cause: err }))
    }
  })
}

/** Limits concurrent handshakes (the pool's limiter); `acquire` resolves with the release function. */
export interface HandshakeGate {
  acquire(signal?: AbortSignal): Promise<() => void>
  /** Called before a retry after a transient drop. */
  retried?(): void
}

export interface ChainOptions {
  readyTimeoutMs: number
  /** Extra attempts after a transient drop (MaxStartups, reset before the banner). */
  retries: number
  /** Base of the exponential backoff between attempts; each wait is a random fraction of it (full jitter). */
  retryBaseMs: number
  gate?: HandshakeGate
}

/** A connection chain as opened: the final client, plus what the pool needs to check and close it. */
export interface OpenedChain {
  client: SshClient
  /** Jump clients first, the final one last. */
  clients: SshClient[]
  label: string
  hostKeys: AcceptedHostKey[]
  close(): void
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}

/** One hop's handshake, inside a handshake slot, retried with full jitter when the server dropped it unheard. */
async function handshake(ep: Endpoint, auth: Login, deps: ConnectDeps, sock: () => Promise<Duplex | undefined>, opts: ChainOptions, accepted: (k: AcceptedHostKey) => void): Promise<SshClient> {
  for (let attempt = 0; ; attempt++) {
    const release = opts.gate ? await opts.gate.acquire(deps.signal) : () => {}
    try {
      return await openClient(ep, auth, deps, await sock(), opts.readyTimeoutMs, accepted)
    } catch (err) {
      if (!(err instanceof SshError && err.transient) || attempt >= opts.retries || deps.signal?.aborted) throw err
      deps.log.debug({ target: ep.label, attempt: attempt + 1, err: { message: err.message } }, 'ssh.handshake_retry')
    } finally {
      release()
    }
    opts.gate?.retried?.()
    await sleep(Math.random() * opts.retryBaseMs * 2 ** attempt, deps.signal)
    if (deps.signal?.aborted) throw abortedError(deps.signal)
  }
}

/** Connects hop by hop through the chain's jump hosts; every client is closed again when it fails. */
export async function openChain(chain: ResolvedChain, deps: ConnectDeps, opts: ChainOptions): Promise<OpenedChain> {
  const clients: SshClient[] = []
  const hostKeys: AcceptedHostKey[] = []
  const closeAll = () => {
    for (const c of [...clients].reverse()) c.end()
  }
  const onAbort = () => {
    for (const c of clients) c.destroy()
  }
  deps.signal?.addEventListener('abort', onAbort, { once: true })
  try {
    let prev: { client: SshClient; label: string } | undefined
    for (const ep of chain.hops) {
      if (deps.signal?.aborted) throw abortedError(deps.signal)
      const auth = await ep.credential.unlock()
      const via = prev
      const sock = () => (via ? forwardTo(via.client, via.label, ep) : Promise.resolve(undefined))
      const client = await handshake(ep, auth, deps, sock, opts, (k) => hostKeys.push(k)).catch((err: unknown) => {
        if (via && err instanceof SshError) throw new SshError(err.failure, `${err.message} (via jump host ${via.label})`, { cause: err })
        throw err
      })
      clients.push(client)
      prev = { client, label: ep.label }
    }
    if (deps.signal?.aborted) throw abortedError(deps.signal)
    let closed = false
    return {
      client: clients[clients.length - 1]!,
      clients,
      label: chain.label,
      hostKeys,
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
