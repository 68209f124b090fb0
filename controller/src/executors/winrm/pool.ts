import { createHash } from 'node:crypto'
import { WinrmError, WsmanFault } from './errors.ts'
import { WinrmShell } from './shell.ts'
import { WinrmTransport, type TransportOptions } from './transport.ts'

/*
 * Shells pooled per (host, user): Windows allows a user 30 shells (MaxShellsPerUser) and creating
 * one costs a round trip and an NTLM handshake, so steps reuse idle shells and at most
 * `maxShells` exist per host; more concurrent steps wait for one. Idle shells are deleted after
 * `idleMs`; a shell whose command was cancelled or failed in transit is deleted, never reused.
 */

export const POOL_MAX_SHELLS = 5
export const POOL_IDLE_MS = 30_000
/** Shells we lose track of (controller killed) end on the server after this much idleness. */
const SHELL_IDLE_TIMEOUT_SEC = 600

interface Waiter {
  resolve(shell: WinrmShell): void
  reject(err: unknown): void
  signal: AbortSignal | undefined
  onAbort(): void
}

const abortError = () => new WinrmError('aborted', 'aborted while waiting for a WinRM shell')

export class HostPool {
  private readonly idle: { shell: WinrmShell; timer: NodeJS.Timeout }[] = []
  private readonly waiters: Waiter[] = []
  /** Shells alive or being created (or being deleted: their slot frees once the server confirms). */
  private total = 0
  /** Shells created over the pool's life (tests check reuse with it). */
  created = 0

  constructor(
    readonly transportOptions: TransportOptions,
    readonly maxShells = POOL_MAX_SHELLS,
    readonly idleMs = POOL_IDLE_MS,
  ) {}

  get size(): number {
    return this.total
  }

  acquire(signal?: AbortSignal): Promise<WinrmShell> {
    if (signal?.aborted) return Promise.reject(abortError())
    const reused = this.takeIdle()
    if (reused) return Promise.resolve(reused)
    if (this.total < this.maxShells) return this.create(signal)
    return new Promise<WinrmShell>((resolve, reject) => {
      const w: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.waiters.indexOf(w)
          if (i >= 0) this.waiters.splice(i, 1)
          reject(abortError())
        },
      }
      signal?.addEventListener('abort', w.onAbort, { once: true })
      this.waiters.push(w)
    })
  }

  /** Returns a shell after its command: kept for reuse unless `broken`, in which case it is deleted. */
  release(shell: WinrmShell): void {
    if (shell.broken) {
      void this.destroy(shell)
      return
    }
    const w = this.nextWaiter()
    if (w) return w.resolve(shell)
    const timer = setTimeout(() => {
      const i = this.idle.findIndex((e) => e.shell === shell)
      if (i >= 0) {
        this.idle.splice(i, 1)
        void this.destroy(shell)
      }
    }, this.idleMs)
    timer.unref()
    this.idle.push({ shell, timer })
  }

  /** Deletes every idle shell (and lets busy ones be deleted when released). */
  async close(): Promise<void> {
    const idle = this.idle.splice(0)
    await Promise.all(
      idle.map(({ shell, timer }) => {
        clearTimeout(timer)
        return this.destroy(shell)
      }),
    )
  }

  private takeIdle(): WinrmShell | undefined {
    const e = this.idle.pop()
    if (!e) return undefined
    clearTimeout(e.timer)
    return e.shell
  }

  private nextWaiter(): Waiter | undefined {
    const w = this.waiters.shift()
    w?.signal?.removeEventListener('abort', w.onAbort)
    return w
  }

  private async create(signal?: AbortSignal): Promise<WinrmShell> {
    this.total++
    const transport = new WinrmTransport(this.transportOptions)
    try {
      const shell = await WinrmShell.create(transport, { signal, idleTimeoutSec: SHELL_IDLE_TIMEOUT_SEC })
      this.created++
      return shell
    } catch (err) {
      transport.close()
      this.total--
      // The server's quota is shared with other clients of the same user: wait for one of ours.
      if (isQuotaFault(err) && this.total > 0 && !signal?.aborted) {
        return new Promise<WinrmShell>((resolve, reject) => {
          const w: Waiter = { resolve, reject, signal, onAbort: () => {} }
          w.onAbort = () => {
            const i = this.waiters.indexOf(w)
            if (i >= 0) this.waiters.splice(i, 1)
            reject(abortError())
          }
          signal?.addEventListener('abort', w.onAbort, { once: true })
          this.waiters.unshift(w)
        })
      }
      this.pump()
      throw err
    }
  }

  private async destroy(shell: WinrmShell): Promise<void> {
    try {
      await shell.delete()
    } finally {
      this.total--
      this.pump()
    }
  }

  /** Hands free capacity to waiters: an idle shell, else a new one. */
  private pump(): void {
    while (this.waiters.length > 0 && (this.idle.length > 0 || this.total < this.maxShells)) {
      const w = this.nextWaiter()!
      const idle = this.takeIdle()
      if (idle) w.resolve(idle)
      else this.create(w.signal).then(w.resolve, w.reject)
    }
  }
}

function isQuotaFault(err: unknown): boolean {
  // ERROR_WSMAN_QUOTA_MAX_SHELLS (0x803381A5), or its text on servers that send no code.
  return err instanceof WsmanFault && (err.wsmanCode === 2150859173 || /maximum number of \d* ?(concurrent )?shells/i.test(err.reason))
}

const pools = new Map<string, HostPool>()

/** The pool for these connection settings (the key includes a hash of the secret, so a new password gets new shells). */
export function hostPool(opts: TransportOptions, maxShells = POOL_MAX_SHELLS): HostPool {
  const key = createHash('sha256').update(JSON.stringify([opts.https, opts.host, opts.port, opts.auth, opts.username, opts.domain ?? '', opts.password, opts.ca ?? '', opts.verifyTls])).digest('hex')
  let pool = pools.get(key)
  if (!pool) {
    pool = new HostPool(opts, maxShells)
    pools.set(key, pool)
  }
  return pool
}

/** Deletes every idle shell of every pool (shutdown, tests). */
export async function closeWinrmPools(): Promise<void> {
  const all = [...pools.values()]
  pools.clear()
  await Promise.all(all.map((p) => p.close()))
}
