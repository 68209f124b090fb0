// The agents bench's optional parts (`--dispatch N`, `--stream`): signed echoes sent through the raw
// Dispatcher (no job engine; test/bench/fanout.ts measures the engine path) and output persisted per second.
import type { TestController } from '../../harness/agents.ts'
import { CHUNK_BYTES, Fleet, STREAM_COMMAND, type SimIdentity } from '../../sim/fleet.ts'
import { formatCpu, measureCpu } from './cpu.ts'
import { checkpoint, dispatchAll, p99 } from './setup.ts'
import { median, table } from '../report.ts'

export const MiB = 1024 * 1024
/** Extra agents, in a worker of their own (as real agents each have a process), for the output streams. */
export const STREAMERS = 10
const CPU_HEADER = 'CPU s: controller / Postgres / agents'
const f0 = (n: number) => n.toFixed(0)
const f1 = (n: number) => n.toFixed(1)

/** One signed echo to each of `agentIds` at once, three rounds: a table and its note. */
export async function dispatchRounds(controller: TestController, agentPids: number[], agentIds: string[], connected: number): Promise<{ table: string; note: string }> {
  const rows: (string | number)[][] = []
  for (let round = 1; round <= 3; round++) {
    const { result: r, cpu } = await measureCpu(agentPids, () => dispatchAll(controller, agentIds, ['echo', 'hello']))
    if (r.storedBytes !== 6 * agentIds.length || r.ackedChunks !== agentIds.length) throw new Error(`fan-out stored ${r.storedBytes} bytes in ${r.ackedChunks} chunks, expected ${6 * agentIds.length} in ${agentIds.length}`)
    rows.push([round, agentIds.length.toLocaleString('en'), f0(r.wallMs), f0(median(r.latencies)), f0(p99(r.latencies)), formatCpu(cpu), f1((cpu.controller * 1000) / agentIds.length)])
  }
  return {
    table: table(['round', 'agents', 'all results persisted, ms', 'p50 dispatch → outcome, ms', 'p99 ms', CPU_HEADER, 'controller CPU per assignment, ms'], rows),
    note:
      `Raw dispatch: one signed exec \`echo hello\` to each of ${agentIds.length.toLocaleString('en')} agents at once (${connected.toLocaleString('en')} connected) through the Dispatcher, without the job engine. The simulated agents verify the signature with the key from SessionReady and answer accepted, ` +
      'one 6-byte output chunk (seq 1) and a result (last_seq 1) without spawning a process. Latency runs from the dispatch call to the final outcome persisted.',
  }
}

/** One agent, then STREAMERS at once, each streaming `streamBytes` from a worker of their own: a table and its note. */
export async function streamRounds(controller: TestController, caPem: string, identities: SimIdentity[], streamBytes: number, window: number): Promise<{ table: string; note: string }> {
  const fleet = await Fleet.start({ controller: controller.grpcAddress, caPem, identities, processes: 1, concurrency: 1 })
  try {
    await fleet.ready()
    const rows: (string | number)[][] = []
    for (const parallel of [1, STREAMERS]) {
      const ids = identities.slice(0, parallel).map((a) => a.id)
      await checkpoint(controller.ctx.db)
      const { result: r, cpu } = await measureCpu(fleet.pids, () => dispatchAll(controller, ids, [STREAM_COMMAND, String(streamBytes), String(window)]))
      const chunks = Math.ceil(streamBytes / CHUNK_BYTES)
      if (r.storedBytes !== parallel * streamBytes || r.ackedChunks !== parallel * chunks) {
        throw new Error(`stored ${r.storedBytes} bytes, acked ${r.ackedChunks} chunks; expected ${parallel * streamBytes} and ${parallel * chunks}`)
      }
      const mib = (parallel * streamBytes) / MiB
      rows.push([parallel, f0(streamBytes / MiB), f1(r.wallMs / 1000), f1(mib / (r.wallMs / 1000)), formatCpu(cpu), f1((cpu.controller * 1000) / mib)])
    }
    return {
      table: table(['agents streaming', 'MiB each', 'until result persisted, s', 'MiB/s persisted (all agents)', CPU_HEADER, 'controller CPU per MiB, ms'], rows),
      note:
        `Output: ${STREAMERS} more simulated agents in a worker of their own stream random (incompressible) bytes in ${CHUNK_BYTES / 1024} KiB OutputChunks with at most ${window} chunks unacked, then the result; time runs from dispatch until the result, ` +
        'which the controller persists after all output, is final. Stored bytes and acked seqs are checked. A checkpoint precedes each measurement.',
    }
  } finally {
    await fleet.stop()
  }
}
