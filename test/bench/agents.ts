// Agents held by one controller (RSS per agent, connect time), fan-out of one signed echo to 1,000
// agents, and output persisted per second. The agents are the simulator's (test/sim), in worker processes.
// `npm run bench -- agents [--record] [--agents N] [--workers N] [--fanout N] [--stream-mib N] [--window N] [--connect-concurrency N]`
import { readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { TestController } from '../harness/agents.ts'
import { testBackend } from '../harness/db.ts'
import { formatCpu, measureCpu } from './agents/cpu.ts'
import { CHUNK_BYTES, Fleet, seedIdentities, STREAM_COMMAND } from '../sim/fleet.ts'
import { checkpoint, dispatchAll, p99, rssKiBOf, settledMemory } from './agents/setup.ts'
import { median, record, table } from './report.ts'

const MiB = 1024 * 1024
const HEARTBEAT_MS = 15_000 // the controller's default
/** Extra agents, in a worker of their own (as real agents each have a process), for the output streams. */
const STREAMERS = 10
const f0 = (n: number) => n.toFixed(0)
const f1 = (n: number) => n.toFixed(1)

export async function agentsBench(args: string[]): Promise<void> {
  const opt = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) || fallback : fallback)
  const count = opt('--agents', 2000)
  const workers = opt('--workers', 4)
  const fanout = Math.min(count, opt('--fanout', 1000))
  const streamBytes = opt('--stream-mib', 64) * MiB
  const window = opt('--window', 64)
  const concurrency = opt('--connect-concurrency', 16)
  if ((await testBackend()) !== 'postgres') {
    console.log('# Postgres not reachable: the agents bench needs it; skipped')
    return
  }
  const load = os.loadavg()[0]!
  if (load > 1) console.log(`# warning: load average ${load.toFixed(1)} before the bench: other work on this machine will skew the figures`)
  // The per-step output cap (64 MiB by default) must not truncate the streams.
  const controller = await TestController.start({ OPSC_OUTPUT_CAP_BYTES: String(4 * streamBytes + MiB) })
  let fleet: Fleet | undefined
  let streamFleet: Fleet | undefined
  try {
    const all = await seedIdentities(controller.ctx.db, count + STREAMERS)
    const identities = all.slice(0, count)
    const caPem = readFileSync(path.join(controller.dataDir, 'tls', 'ca.crt'), 'utf8')
    let t0 = 0 // set when connecting starts
    fleet = await Fleet.start({
      controller: controller.grpcAddress,
      caPem,
      identities,
      processes: workers,
      concurrency,
      deferConnect: true,
      onProgress: (ready) => console.log(`# ${ready.toLocaleString('en')} agents connected after ${f1((performance.now() - t0) / 1000)} s`),
    })
    const agentPids = fleet.pids
    const cpuHeader = 'CPU s: controller / Postgres / agents'

    // 1. Connect every agent, let a heartbeat interval pass, compare the controller's settled memory with before.
    await checkpoint(controller.ctx.db)
    const before = await settledMemory()
    const workersBeforeKiB = agentPids.reduce((sum, pid) => sum + rssKiBOf(pid), 0)
    t0 = performance.now()
    const { result: connected, cpu: connectCpu } = await measureCpu(agentPids, () =>
      fleet!.connect(),
    )
    const connectMs = performance.now() - t0
    const held = controller.ctx.agentGateway!.registry.size
    console.log(`# ${held.toLocaleString('en')} agents connected in ${f1(connectMs / 1000)} s (${connected.retries} handshakes retried)`)
    if (connected.lastProblem) console.log(`# last problem an agent logged: ${connected.lastProblem}`)
    if (held !== count) throw new Error(`the controller holds ${held} sessions, expected ${count}`)
    // Settled: one full heartbeat interval, so every session has exchanged heartbeats both ways.
    const { cpu: idleCpu } = await measureCpu(agentPids, () => sleep(HEARTBEAT_MS))
    const after = await settledMemory()
    console.log(`# memory settled ${f0(before.waitedS)} s before connecting, ${f0(after.waitedS)} s after the heartbeat interval`)
    const workersAfterKiB = agentPids.reduce((sum, pid) => sum + rssKiBOf(pid), 0)
    const heldTable = table(
      ['agents', 'connect all, s', 'handshakes/s', cpuHeader, 'controller RSS before → after, MiB', 'RSS per agent, KiB', 'JS heap per agent, KiB', 'controller CPU idle (heartbeats), % of a core'],
      [
        [
          count.toLocaleString('en'),
          f1(connectMs / 1000),
          f0(count / (connectMs / 1000)),
          formatCpu(connectCpu),
          `${f0(before.rssKiB / 1024)} → ${f0(after.rssKiB / 1024)}`,
          f1((after.rssKiB - before.rssKiB) / count),
          f1((after.heapKiB - before.heapKiB) / count),
          f1((100 * idleCpu.controller) / (HEARTBEAT_MS / 1000)),
        ],
      ],
    )
    console.log(heldTable)
    const agentSideKiB = (workersAfterKiB - workersBeforeKiB) / count
    console.log(`# simulated-agent side: ${f1(agentSideKiB)} KiB RSS per agent in the workers`)

    // 2. Fan-out: one signed echo to `fanout` agents at once, three rounds.
    const fanoutIds = identities.slice(0, fanout).map((a) => a.id)
    const fanoutRows: (string | number)[][] = []
    for (let round = 1; round <= 3; round++) {
      const { result: r, cpu } = await measureCpu(agentPids, () => dispatchAll(controller, fanoutIds, ['echo', 'hello']))
      if (r.storedBytes !== 6 * fanout || r.ackedChunks !== fanout) throw new Error(`fan-out stored ${r.storedBytes} bytes in ${r.ackedChunks} chunks, expected ${6 * fanout} in ${fanout}`)
      fanoutRows.push([round, fanout.toLocaleString('en'), f0(r.wallMs), f0(median(r.latencies)), f0(p99(r.latencies)), formatCpu(cpu), f1((cpu.controller * 1000) / fanout)])
    }
    const fanoutTable = table(['round', 'agents', 'all results persisted, ms', 'p50 dispatch → outcome, ms', 'p99 ms', cpuHeader, 'controller CPU per assignment, ms'], fanoutRows)
    console.log(fanoutTable)

    // 3. Output: one agent, then ten at once, each streaming `streamBytes`, from a worker of their own.
    streamFleet = await Fleet.start({ controller: controller.grpcAddress, caPem, identities: all.slice(count), processes: 1, concurrency: 1 })
    await streamFleet.ready()
    const streamRows: (string | number)[][] = []
    for (const parallel of [1, STREAMERS]) {
      const ids = all.slice(count, count + parallel).map((a) => a.id)
      await checkpoint(controller.ctx.db)
      const { result: r, cpu } = await measureCpu(streamFleet.pids, () => dispatchAll(controller, ids, [STREAM_COMMAND, String(streamBytes), String(window)]))
      const chunks = Math.ceil(streamBytes / CHUNK_BYTES)
      if (r.storedBytes !== parallel * streamBytes || r.ackedChunks !== parallel * chunks) {
        throw new Error(`stored ${r.storedBytes} bytes, acked ${r.ackedChunks} chunks; expected ${parallel * streamBytes} and ${parallel * chunks}`)
      }
      const mib = (parallel * streamBytes) / MiB
      streamRows.push([parallel, f0(streamBytes / MiB), f1(r.wallMs / 1000), f1(mib / (r.wallMs / 1000)), formatCpu(cpu), f1((cpu.controller * 1000) / mib)])
    }
    const streamTable = table(['agents streaming', 'MiB each', 'until result persisted, s', 'MiB/s persisted (all agents)', cpuHeader, 'controller CPU per MiB, ms'], streamRows)
    console.log(streamTable)

    const notes = [
      `Controller: the real one, in the bench process, on Postgres 127.0.0.1, default settings (heartbeat ${HEARTBEAT_MS / 1000} s, pool of 10) but for the per-step output cap, raised to ${f0((4 * streamBytes + MiB) / MiB)} MiB. ` +
        `Agents: ${count.toLocaleString('en')} simulated agents in ${workers} worker processes, each with its own TLS connection and Ed25519 identity (agent rows inserted directly, not enrolled), ` +
        `running the real agent connection code (Hello → challenge signed over its own connection's TLS exporter → SessionReady, heartbeats), at most ${concurrency} handshakes in flight per worker. ` +
        `All three share the machine's cores (1-minute load average ${load.toFixed(1)} when the bench started); CPU seconds are read from /proc (Postgres = every postgres process).`,
      `RSS per agent = (controller VmRSS with all agents connected, after one heartbeat interval − VmRSS before any connected) / agents; each VmRSS read after a forced full GC, once three readings 5 s apart agree within 2 MiB. ` +
        `The simulated agents' own memory (${f1(agentSideKiB)} KiB RSS per agent) is in the workers, not counted.`,
      `Fan-out: one signed exec \`echo hello\` to each of ${fanout.toLocaleString('en')} agents at once (${count.toLocaleString('en')} connected). The simulated agents verify the signature with the key from SessionReady and answer accepted, ` +
        'one 6-byte output chunk (seq 1) and a result (last_seq 1) without spawning a process. Latency runs from the dispatch call to the final outcome persisted.',
      `Output: ${STREAMERS} more simulated agents in a worker of their own stream random (incompressible) bytes in ${CHUNK_BYTES / 1024} KiB OutputChunks with at most ${window} chunks unacked, then the result; time runs from dispatch until the result, ` +
        'which the controller persists after all output, is final. Stored bytes and acked seqs are checked. A checkpoint precedes each measurement.',
    ]
    console.log(`\n${notes.join('\n\n')}`)
    if (args.includes('--record')) {
      record(`Agent gateway: ${count.toLocaleString('en')} agents on one controller (Postgres)`, [heldTable, fanoutTable, streamTable].join('\n\n'), notes.join('\n\n'))
    }
  } finally {
    await Promise.all([fleet?.stop(), streamFleet?.stop()])
    await controller.stop()
  }
}
