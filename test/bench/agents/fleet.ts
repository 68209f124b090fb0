// Compatibility for test/bench/runs.ts (not yet moved to the simulator's API): the old
// `Fleet.start(workers)` + `connect({…})` shape over test/sim's Fleet. New code: import test/sim/fleet.ts.
import { Fleet as SimFleet, type ReadyReport, type SimIdentity } from '../../sim/fleet.ts'

export class Fleet {
  private sim: SimFleet | undefined
  private constructor(private readonly processes: number) {}

  static async start(processes: number): Promise<Fleet> {
    return new Fleet(processes)
  }

  get pids(): number[] {
    return this.sim?.pids ?? []
  }

  async connect(opts: { address: string; caPem: string; identities: Pick<SimIdentity, 'id' | 'seed'>[]; concurrency: number; onProgress(ready: number): void }): Promise<ReadyReport> {
    this.sim = await SimFleet.start({
      controller: opts.address,
      caPem: opts.caPem,
      identities: opts.identities.map((identity, index) => ({ ...identity, index })),
      processes: this.processes,
      concurrency: opts.concurrency,
      onProgress: opts.onProgress,
    })
    return this.sim.ready()
  }

  async stop(): Promise<void> {
    await this.sim?.stop()
  }
}
