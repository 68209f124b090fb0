import { inArray } from 'drizzle-orm'
import type { ControllerConfig } from '../../config.ts'
import type { AppContext } from '../../context.ts'
import type { Db } from '../../db/client.ts'
import { decideHostKey } from '../../targets/host-keys.ts'
import { targetHostKey, type TargetRow } from '../../targets/targets.sql.ts'
import { limitChannels } from './channel.ts'
import { openChain, resolveChain, type ChainOptions, type ConnectDeps, type OpenedChain, type ResolvedChain, type SshConnection } from './connect.ts'
import { abortedError, SshError } from './errors.ts'
import { HandshakeLimiter } from './handshake-limiter.ts'

/*
 * SSH connections shared by the steps that run on a target. A connection is reused only by steps
 * whose connection would be identical: the same target, address, port, host-key policy, jump
 * chain and credential contents (resolveChain's key), and only while every host key it was
 * accepted with is still trusted. Each carries at most `channelsPerConnection` steps; more
 * concurrent steps open another connection, up to `connectionsPerTarget`, then wait. Every
 * handshake, pooled or not, takes a slot of one process-wide limit so that a fan-out over
 * hundreds of hosts does not trip their MaxStartups (and a transient drop is retried with jitter).
 */

export interface SshPoolOptions {
  maxHandshakes: number
  handshakeTimeoutMs: number
  retries: number
  retryBaseMs: number
  channelsPerConnection: number
  connectionsPerTarget: number
  idleMs: number
}

export function poolOptions(config: Partial<ControllerConfig>): SshPoolOptions {
  return {
    maxHandshakes: config.OPSC_SSH_MAX_HANDSHAKES ?? 64,
    handshakeTimeoutMs: config.OPSC_SSH_HANDSHAKE_TIMEOUT_MS ?? 15_000,
    retries: config.OPSC_SSH_HANDSHAKE_RETRIES ?? 3,
    retryBaseMs: 250,
    channelsPerConnection: config.OPSC_SSH_CHANNELS_PER_CONNECTION ?? 8,
    connectionsPerTarget: config.OPSC_SSH_CONNECTIONS_PER_TARGET ?? 4,
    idleMs: config.OPSC_SSH_IDLE_MS ?? 30_000,
  }
}

/**
 * Steps start at most `channelsPerConnection` channels; this many more may be open for the short
 * helper channels a step adds (the kill on cancel, a checksum), still within sshd's MaxSessions 10.
 */
const HELPER_CHANNELS = 2

interface Entry {
  key: string
  targetId: string
  chain: OpenedChain
  leases: number
  /** Steps served so far. */
  uses: number
  dead: boolean
  /** Its target or credential changed: closed once its steps end, never leased again. */
  retired: boolean
  idle?: NodeJS.Timeout
}

interface Opening {
  promise: Promise<Entry>
  /** Steps waiting for it; when all of them give up, the handshake is abandoned. */
  interested: number
  controller: AbortController
}

interface KeyState {
  entries: Entry[]
  openings: Set<Opening>
  /** Steps waiting for a free channel on this key. */
  waiting: number
  wake: Set<() => void>
}

export interface SshPoolStats {
  handshakes: { active: number; peak: number; started: number; retries: number; queued: number }
  connections: number
  opening: number
  leases: number
}

export class SshPool {
  readonly limiter: HandshakeLimiter
  private keys = new Map<string, KeyState>()
  private byTarget = new Map<string, Set<string>>()
  private closed = false

  constructor(
    private readonly db: Db,
    readonly options: SshPoolOptions,
  ) {
    this.limiter = new HandshakeLimiter(options.maxHandshakes)
  }

  chainOptions(readyTimeoutMs = this.options.handshakeTimeoutMs): ChainOptions {
    return { readyTimeoutMs, retries: this.options.retries, retryBaseMs: this.options.retryBaseMs, gate: this.limiter }
  }

  /** A connection for `target` from the pool; its close() hands it back. */
  async lease(target: TargetRow, deps: ConnectDeps): Promise<SshConnection> {
    const chain = await resolveChain(target, deps)
    for (;;) {
      if (deps.signal?.aborted) throw abortedError(deps.signal)
      if (this.closed) throw new SshError('aborted', 'the controller is shutting down')
      const state = this.state(chain)
      const entry = this.pick(state)
      if (entry) {
        entry.leases++
        this.clearIdle(entry)
        const reused = entry.uses > 0
        if (reused && (!(await this.stillTrusted(entry).catch(() => false)) || entry.dead)) {
          entry.retired = true
          this.release(state, entry, false)
          continue
        }
        entry.uses++
        return this.handle(state, entry, reused)
      }
      const usable = state.entries.filter((e) => !e.dead && !e.retired).length
      const room = state.openings.size * this.options.channelsPerConnection
      let opening: Opening | undefined
      if (usable + state.openings.size < this.options.connectionsPerTarget && room < state.waiting + 1) opening = this.open(chain, state, deps)
      else opening = [...state.openings].at(-1)
      state.waiting++
      try {
        if (opening) await this.waitFor(opening, deps.signal)
        else await this.waitForRoom(state, deps.signal)
      } finally {
        state.waiting--
        this.forget(state, chain.key, chain.targetId)
      }
    }
  }

  stats(): SshPoolStats {
    let connections = 0
    let opening = 0
    let leases = 0
    for (const s of this.keys.values()) {
      connections += s.entries.length
      opening += s.openings.size
      for (const e of s.entries) leases += e.leases
    }
    const l = this.limiter
    return { handshakes: { active: l.active, peak: l.peak, started: l.started, retries: l.retries, queued: l.queued }, connections, opening, leases }
  }

  resetPeak(): void {
    this.limiter.peak = this.limiter.active
  }

  /** Closes every connection and abandons every handshake; leases still out end with their connection. */
  close(): void {
    this.closed = true
    for (const s of this.keys.values()) {
      for (const o of s.openings) o.controller.abort('cancelled')
      for (const e of [...s.entries]) this.kill(s, e)
      for (const w of s.wake) w()
    }
  }

  private state(chain: ResolvedChain): KeyState {
    let s = this.keys.get(chain.key)
    if (!s) {
      s = { entries: [], openings: new Set(), waiting: 0, wake: new Set() }
      this.keys.set(chain.key, s)
      // A new key for a known target: its target or credential changed, so the old connections go.
      const others = this.byTarget.get(chain.targetId) ?? new Set()
      for (const k of others) {
        const old = this.keys.get(k)
        for (const e of old?.entries ?? []) {
          e.retired = true
          if (e.leases === 0) this.kill(old!, e)
        }
      }
      others.add(chain.key)
      this.byTarget.set(chain.targetId, others)
    }
    return s
  }

  /** The fullest connection that still has a free channel, so that steps pack onto few connections. */
  private pick(state: KeyState): Entry | undefined {
    let best: Entry | undefined
    for (const e of state.entries) {
      if (e.dead || e.retired || e.leases >= this.options.channelsPerConnection) continue
      if (!best || e.leases > best.leases) best = e
    }
    return best
  }

  private open(chain: ResolvedChain, state: KeyState, deps: ConnectDeps): Opening {
    const controller = new AbortController()
    const opening: Opening = { interested: 0, controller, promise: Promise.resolve(null as never) }
    opening.promise = openChain(chain, { ...deps, signal: controller.signal }, this.chainOptions()).then(
      (opened) => {
        state.openings.delete(opening)
        const entry: Entry = { key: chain.key, targetId: chain.targetId, chain: opened, leases: 0, uses: 0, dead: false, retired: false }
        if (this.closed) {
          opened.close()
          throw new SshError('aborted', 'the controller is shutting down')
        }
        limitChannels(opened.client, this.options.channelsPerConnection + HELPER_CHANNELS)
        // Any hop closing ends the connection; error events are already handled by connect.ts.
        for (const c of opened.clients) {
          c.once('close', () => this.kill(state, entry))
          c.once('end', () => this.kill(state, entry))
        }
        state.entries.push(entry)
        // The steps waiting for it take it in the next microtasks; the timer is for when they all gave up.
        this.idleLater(state, entry, true)
        this.notify(state)
        return entry
      },
      (err: unknown) => {
        state.openings.delete(opening)
        this.notify(state)
        throw err
      },
    )
    opening.promise.catch(() => {})
    state.openings.add(opening)
    return opening
  }

  private async waitFor(opening: Opening, signal: AbortSignal | undefined): Promise<void> {
    opening.interested++
    let onAbort: (() => void) | undefined
    try {
      await Promise.race([
        opening.promise,
        new Promise<never>((_, reject) => {
          if (!signal) return
          onAbort = () => reject(abortedError(signal))
          if (signal.aborted) onAbort()
          else signal.addEventListener('abort', onAbort, { once: true })
        }),
      ])
    } finally {
      if (onAbort) signal!.removeEventListener('abort', onAbort)
      if (--opening.interested === 0 && signal?.aborted) opening.controller.abort(signal.reason)
    }
  }

  private waitForRoom(state: KeyState, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = () => {
        state.wake.delete(done)
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      const onAbort = () => {
        state.wake.delete(done)
        reject(abortedError(signal!))
      }
      if (signal?.aborted) return onAbort()
      state.wake.add(done)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  private notify(state: KeyState): void {
    for (const w of [...state.wake]) w()
  }

  private handle(state: KeyState, entry: Entry, reused: boolean): SshConnection {
    let released = false
    const release = (discard: boolean) => {
      if (released) return
      released = true
      this.release(state, entry, discard)
    }
    return { client: entry.chain.client, label: entry.chain.label, reused, alive: () => !entry.dead, close: () => release(false), discard: () => release(true) }
  }

  private release(state: KeyState, entry: Entry, discard: boolean): void {
    entry.leases--
    if (discard || ((entry.retired || this.closed) && entry.leases === 0)) this.kill(state, entry)
    else this.idleLater(state, entry)
    this.notify(state)
  }

  private idleLater(state: KeyState, entry: Entry, fresh = false): void {
    if (entry.leases > 0 || entry.dead) return
    this.clearIdle(entry)
    if (this.options.idleMs === 0 && !fresh) return this.kill(state, entry)
    entry.idle = setTimeout(() => this.kill(state, entry), fresh ? Math.max(this.options.idleMs, 1000) : this.options.idleMs)
    entry.idle.unref()
  }

  private clearIdle(entry: Entry): void {
    if (entry.idle) clearTimeout(entry.idle)
    entry.idle = undefined
  }

  /** Closes a connection and forgets it (on idle, error, close, discard or pool shutdown). */
  private kill(state: KeyState, entry: Entry): void {
    this.clearIdle(entry)
    if (!entry.dead) {
      entry.dead = true
      entry.chain.close()
    }
    const i = state.entries.indexOf(entry)
    if (i >= 0) state.entries.splice(i, 1)
    this.forget(state, entry.key, entry.targetId)
    this.notify(state)
  }

  /** Drops a key's bookkeeping once nothing uses it (no connection, handshake or waiting step). */
  private forget(state: KeyState, key: string, targetId: string): void {
    if (state.entries.length > 0 || state.openings.size > 0 || state.waiting > 0 || this.keys.get(key) !== state) return
    this.keys.delete(key)
    const keys = this.byTarget.get(targetId)
    keys?.delete(key)
    if (keys?.size === 0) this.byTarget.delete(targetId)
  }

  /** Every host key the connection was accepted with is still trusted (none was revoked or replaced since). */
  private async stillTrusted(entry: Entry): Promise<boolean> {
    const keys = entry.chain.hostKeys.filter((k) => k.policy !== 'off')
    if (keys.length === 0) return true
    const rows = await this.db
      .select({ targetId: targetHostKey.targetId, fingerprint: targetHostKey.fingerprint, status: targetHostKey.status })
      .from(targetHostKey)
      .where(inArray(targetHostKey.targetId, [...new Set(keys.map((k) => k.targetId))]))
    return keys.every((k) => {
      const d = decideHostKey(k.policy, rows.filter((r) => r.targetId === k.targetId), k.fingerprint)
      return d.accept && d.record === 'none'
    })
  }
}

// One pool per database (in practice, per controller process).
const pools = new Map<Db, SshPool>()

export function sshPool(ctx: AppContext): SshPool {
  let pool = pools.get(ctx.db)
  if (!pool) {
    pool = new SshPool(ctx.db, poolOptions(ctx.config ?? {}))
    pools.set(ctx.db, pool)
  }
  return pool
}

/** Closes the pool's connections (controller shutdown, end of a test). */
export function closeSshPool(ctx: AppContext): void {
  pools.get(ctx.db)?.close()
  pools.delete(ctx.db)
}

export function sshPoolStats(ctx: AppContext): SshPoolStats {
  return sshPool(ctx).stats()
}

/**
 * An authenticated connection to `target`. By default a connection of its own (a connection
 * test's), closed by close(); with `pooled`, one shared with other steps on the same target,
 * handed back by close(). Either way the handshake takes a slot of the process-wide limit.
 */
export async function connectSsh(target: TargetRow, deps: ConnectDeps, opts: { readyTimeoutMs?: number; pooled?: boolean } = {}): Promise<SshConnection> {
  const pool = sshPool(deps.ctx)
  if (opts.pooled) return pool.lease(target, deps)
  const chain = await resolveChain(target, deps)
  const opened = await openChain(chain, deps, pool.chainOptions(opts.readyTimeoutMs))
  return { client: opened.client, label: opened.label, close: opened.close }
}
