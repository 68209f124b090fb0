// The simulated-agent worker processes of the agents bench: fork, hand out identities, connect, kill.
import { fork, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import type { AgentIdentity, FromWorker, ToWorker } from './protocol.ts'

const WORKER = path.join(import.meta.dirname, 'worker.ts')

/** Resolves with the worker's next message of `type`; rejects when it fails or exits first. */
function next<T extends FromWorker['type']>(worker: ChildProcess, type: T, onOther?: (msg: FromWorker) => void): Promise<Extract<FromWorker, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: FromWorker) => {
      if (msg.type === type) done(() => resolve(msg as Extract<FromWorker, { type: T }>))
      else if (msg.type === 'failed') done(() => reject(new Error(`agent worker ${worker.pid} failed: ${msg.message}`)))
      else onOther?.(msg)
    }
    const onExit = (code: number | null, signal: string | null) => done(() => reject(new Error(`agent worker ${worker.pid} exited (${signal ?? code})`)))
    const done = (settle: () => void) => {
      worker.off('message', onMessage)
      worker.off('exit', onExit)
      settle()
    }
    worker.on('message', onMessage)
    worker.on('exit', onExit)
  })
}

export interface ConnectReport {
  /** Sessions that ended before SessionReady (refused, timed out) and were retried. */
  retries: number
  lastProblem?: string
}

export class Fleet {
  private constructor(private readonly workers: ChildProcess[]) {}

  static async start(count: number): Promise<Fleet> {
    const workers = Array.from({ length: count }, () => fork(WORKER, [], { execArgv: ['--import', 'tsx', '--no-deprecation'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
    const fleet = new Fleet(workers)
    try {
      await Promise.all(workers.map((w) => next(w, 'loaded')))
    } catch (err) {
      await fleet.stop()
      throw err
    }
    return fleet
  }

  get pids(): number[] {
    return this.workers.map((w) => w.pid!)
  }

  /** Spreads the identities over the workers and resolves once every agent has a live session. */
  async connect(opts: { address: string; caPem: string; identities: AgentIdentity[]; concurrency: number; onProgress(ready: number): void }): Promise<ConnectReport> {
    const progress = new Map<ChildProcess, number>()
    const reports = await Promise.all(
      this.workers.map((worker, i) => {
        const agents = opts.identities.filter((_, j) => j % this.workers.length === i)
        worker.send({ type: 'connect', address: opts.address, caPem: opts.caPem, agents, concurrency: opts.concurrency } satisfies ToWorker)
        return next(worker, 'connected', (msg) => {
          if (msg.type !== 'progress') return
          progress.set(worker, msg.ready)
          opts.onProgress([...progress.values()].reduce((a, b) => a + b, 0))
        })
      }),
    )
    const lastProblem = reports.find((r) => r.lastProblem)?.lastProblem
    return { retries: reports.reduce((sum, r) => sum + r.retries, 0), ...(lastProblem ? { lastProblem } : {}) }
  }

  /** Ends every worker (their connections drop with them): disconnect, which they exit on, SIGKILL after 5 s. */
  async stop(): Promise<void> {
    await Promise.all(
      this.workers.map(async (w) => {
        if (w.exitCode !== null || w.signalCode !== null) return
        const exited = new Promise((resolve) => w.once('exit', resolve))
        if (w.connected) w.disconnect()
        const timer = setTimeout(() => w.kill('SIGKILL'), 5000)
        await exited
        clearTimeout(timer)
      }),
    )
  }
}
