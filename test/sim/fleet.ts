// The agent simulator: N virtual agents spread over `processes` worker processes (worker.ts), each a
// real identity with its own key and its own Connect stream. Usable from tests, benchmarks and cli.ts.
//
//   const fleet = await Fleet.start({ controller: '127.0.0.1:7443', caFingerprint, count: 500, processes: 4,
//                                     enroll: { token }, behaviour: { latencyMs: [5, 50], failureRate: 0.1, seed: 7 } })
//   await fleet.ready()      // every agent has had a SessionReady
//   await fleet.stats()      // connected, received/verified/rejected, executed/succeeded/failed, bytes sent…
//   await fleet.kill(10)     // 10 agents drop their TCP connections without a goodbye and stay down
//   await fleet.stop()
import { fork, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fetchPinnedCa } from '../../agent/src/pin.ts'
import { parseControllerAddress } from '../../agent/src/enroll.ts'
import { addStats, DEFAULT_BEHAVIOUR, emptyStats, type Behaviour, type FromWorker, type ReadyReport, type SimIdentity, type SimStats, type ToWorker, type WorkerStart } from './protocol.ts'

const WORKER = path.join(import.meta.dirname, 'worker.ts')

export interface FleetOptions {
  /** HOST:PORT of the controller's gRPC listener, or several (agents rotate through them on reconnect). */
  controller: string | string[]
  /** The controller's CA certificate, or its fingerprint (fetched and pinned as `opsconductor-agent enroll` does). */
  caPem?: string
  caFingerprint?: string
  /** Enrol this many new agents through the real Enroll RPC with a token (max_uses ≥ count)… */
  enroll?: { token: string; namePrefix?: string }
  count?: number
  /** …or use identities already in the controller's database (see seedIdentities). */
  identities?: SimIdentity[]
  /** Worker processes (default 1); agents are dealt round-robin. */
  processes?: number
  behaviour?: Partial<Behaviour>
  /** Handshakes (and enrolments) in flight at once per process (default 16). */
  concurrency?: number
  /** Do not connect yet: call connect() (for measuring the connect phase on its own). */
  deferConnect?: boolean
  onProgress?(ready: number): void
  /** Reconnect backoff of every agent (the agent's defaults: 1 s base, 30 s cap). */
  backoffBaseMs?: number
  backoffCapMs?: number
  /** The agents' own warnings (JSON log lines) on stderr. */
  verbose?: boolean
}

type Pending = { resolve(value: unknown): void; reject(err: Error): void }

class WorkerHandle {
  private nextId = 1
  private readonly pending = new Map<number, Pending>()
  readonly loaded: Promise<void>
  progress = 0

  constructor(
    readonly proc: ChildProcess,
    onProgress: () => void,
  ) {
    this.loaded = new Promise((resolve, reject) => {
      proc.on('message', (msg: FromWorker) => {
        if (msg.type === 'loaded') resolve()
        else if (msg.type === 'progress') {
          this.progress = msg.ready
          onProgress()
        } else if (msg.type === 'reply') {
          const p = this.pending.get(msg.reqId)
          this.pending.delete(msg.reqId)
          if (msg.ok) p?.resolve(msg.value)
          else p?.reject(new Error(`simulator process ${proc.pid}: ${msg.message}`))
        }
      })
      proc.once('exit', (code, signal) => {
        const err = new Error(`simulator process ${proc.pid} exited (${signal ?? code})`)
        reject(err)
        for (const p of this.pending.values()) p.reject(err)
        this.pending.clear()
      })
    })
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null && this.proc.connected
  }

  request<T>(msg: DistributiveOmit<ToWorker, 'reqId'>): Promise<T> {
    if (!this.alive) return Promise.reject(new Error(`simulator process ${this.proc.pid} is gone`))
    const reqId = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.pending.set(reqId, { resolve: resolve as (v: unknown) => void, reject })
      this.proc.send({ ...msg, reqId } as ToWorker)
    })
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

export class Fleet {
  private connecting: Promise<ReadyReport> | undefined
  /** Agent ids in fleet order (index 0…count-1). */
  readonly agentIds: string[] = []

  private constructor(
    private readonly workers: WorkerHandle[],
    readonly caPem: string,
  ) {}

  static async start(opts: FleetOptions): Promise<Fleet> {
    const controllers = Array.isArray(opts.controller) ? opts.controller : [opts.controller]
    if (!opts.enroll === !opts.identities) throw new Error('Fleet.start needs either enroll (with count) or identities')
    const count = opts.identities?.length ?? opts.count ?? 0
    if (!(count > 0)) throw new Error('Fleet.start: count must be at least 1')
    let caPem = opts.caPem
    if (!caPem) {
      if (!opts.caFingerprint) throw new Error('Fleet.start needs caPem or caFingerprint')
      const { host, port } = parseControllerAddress(controllers[0]!)
      caPem = await fetchPinnedCa(host, port, opts.caFingerprint)
    }
    const processes = Math.max(1, Math.min(opts.processes ?? 1, count))
    let fleet: Fleet | undefined
    const onProgress = () => opts.onProgress?.(fleet ? fleet.workers.reduce((sum, w) => sum + w.progress, 0) : 0)
    const workers = Array.from(
      { length: processes },
      () => new WorkerHandle(fork(WORKER, [], { execArgv: ['--import', 'tsx', '--no-deprecation'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }), onProgress),
    )
    fleet = new Fleet(workers, caPem)
    try {
      await Promise.all(workers.map((w) => w.loaded))
      const behaviour: Behaviour = { ...DEFAULT_BEHAVIOUR, ...opts.behaviour }
      const namePrefix = opts.enroll?.namePrefix ?? `sim-${Math.random().toString(36).slice(2, 8)}`
      const placed = await Promise.all(
        workers.map((w, i) => {
          const mine = (_: unknown, j: number) => j % processes === i
          const start: WorkerStart = {
            controllers,
            caPem: caPem!,
            behaviour,
            concurrency: opts.concurrency ?? 16,
            ...(opts.identities
              ? { identities: opts.identities.map((id, j) => ({ ...id, index: id.index ?? j })).filter(mine) }
              : { enroll: { token: opts.enroll!.token, namePrefix, indices: Array.from({ length: count }, (_, j) => j).filter((j) => j % processes === i) } }),
            ...(opts.backoffBaseMs !== undefined ? { backoffBaseMs: opts.backoffBaseMs } : {}),
            ...(opts.backoffCapMs !== undefined ? { backoffCapMs: opts.backoffCapMs } : {}),
            ...(opts.verbose ? { verbose: true } : {}),
          }
          return w.request<{ ids: string[]; indices: number[] }>({ type: 'start', start })
        }),
      )
      const byIndex: string[] = []
      for (const p of placed) p.indices.forEach((index, k) => (byIndex[index] = p.ids[k]!))
      fleet.agentIds.push(...byIndex.filter((id) => id !== undefined))
    } catch (err) {
      await fleet.stop()
      throw err
    }
    if (!opts.deferConnect) void fleet.connect().catch(() => {}) // ready() reports the failure
    return fleet
  }

  get pids(): number[] {
    return this.workers.map((w) => w.proc.pid!)
  }

  /** Starts every agent's connection loop (Fleet.start does, unless deferConnect); resolves like ready(). */
  connect(): Promise<ReadyReport> {
    this.connecting ??= Promise.all(this.workers.map((w) => w.request<ReadyReport>({ type: 'connect' }))).then((reports) => {
      const lastProblem = reports.find((r) => r.lastProblem)?.lastProblem
      return { ready: reports.reduce((s, r) => s + r.ready, 0), retries: reports.reduce((s, r) => s + r.retries, 0), ...(lastProblem ? { lastProblem } : {}) }
    })
    return this.connecting
  }

  /** Resolves once every agent has had its first SessionReady (with how many handshakes were retried on the way). */
  ready(): Promise<ReadyReport> {
    return this.connect()
  }

  /** The fleet's counters, summed over the processes still running. */
  async stats(): Promise<SimStats> {
    const all = await Promise.all(this.workers.filter((w) => w.alive).map((w) => w.request<SimStats>({ type: 'stats' })))
    return all.reduce(addStats, emptyStats())
  }

  /**
   * Abruptly ends `n` agents (spread over the processes): their TCP connections are destroyed with no
   * gRPC goodbye and they never reconnect. Resolves with their ids.
   */
  async kill(n: number): Promise<string[]> {
    const live = this.workers.filter((w) => w.alive)
    const shares = live.map((_, i) => Math.floor(n / live.length) + (i < n % live.length ? 1 : 0))
    const ids = await Promise.all(live.map((w, i) => (shares[i] ? w.request<string[]>({ type: 'kill', count: shares[i]! }) : [])))
    return ids.flat()
  }

  /** SIGKILLs one simulator process: every agent in it drops at once, as a host crash would. Resolves with its pid. */
  async killProcess(i = 0): Promise<number> {
    const w = this.workers[i]!
    const exited = new Promise((resolve) => w.proc.once('exit', resolve))
    w.proc.kill('SIGKILL')
    await exited
    return w.proc.pid!
  }

  /** Ends every agent politely (streams cancelled, files removed), then the processes; SIGKILL after 10 s. */
  async stop(): Promise<void> {
    await Promise.all(
      this.workers.map(async (w) => {
        if (w.proc.exitCode !== null || w.proc.signalCode !== null) return
        const exited = new Promise((resolve) => w.proc.once('exit', resolve))
        const timer = setTimeout(() => w.proc.kill('SIGKILL'), 10_000)
        await w.request({ type: 'stop' }).catch(() => {})
        if (w.proc.connected) w.proc.disconnect()
        await exited
        clearTimeout(timer)
      }),
    )
  }
}

export type { Behaviour, ReadyReport, SimIdentity, SimStats } from './protocol.ts'
export { enrolIdentities, seedIdentities } from './identities.ts'
export { CHUNK_BYTES, STAMPED_COMMAND, stampOf, STREAM_COMMAND } from './protocol.ts'
