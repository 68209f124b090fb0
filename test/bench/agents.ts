// Agents held by one controller, for each fleet size: time to connect them all, controller RSS and CPU
// at idle and during a heartbeat wave, and the time until all are back after a controller restart.
// The agents are the simulator's (test/sim), in worker processes, running the real agent connection code.
// Optional, at the largest size: `--dispatch N` signed echoes through the raw Dispatcher, `--stream` output MB/s.
// `npm run bench -- agents [--record] [--sizes 1000,5000,10000] [--workers N] [--connect-concurrency N] [--wave-heartbeat-ms N]
//                          [--dispatch N] [--stream [--stream-mib N] [--window N]]`
import { readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { TestController, waitUntil } from '../harness/agents.ts'
import { testBackend } from '../harness/db.ts'
import { Fleet, seedIdentities } from '../sim/fleet.ts'
import { measureCpu, type CpuSpent } from './agents/cpu.ts'
import { dispatchRounds, MiB, STREAMERS, streamRounds } from './agents/raw-dispatch.ts'
import { checkpoint, listOption, memory, numberOption, rssKiBOf, settledMemory } from './agents/setup.ts'
import { record, table } from './report.ts'

const HEARTBEAT_MS = 15_000 // the controller's default
const DRAIN_WINDOW_MS = 30_000 // the controller's default: agents told to drain reconnect within it
/** How long the heartbeat wave is watched. */
const WAVE_WINDOW_MS = 15_000
/** How long the wave waits for every agent to be back (under a short heartbeat a busy controller may keep dropping some). */
const WAVE_RECONNECT_LIMIT_MS = 90_000
const f0 = (n: number) => n.toFixed(0)
const f1 = (n: number) => n.toFixed(1)
const pct = (cpuS: number, ms: number) => f0((100 * cpuS) / (ms / 1000))

interface Options {
  workers: number
  concurrency: number
  waveHeartbeatMs: number
  dispatch: number
  stream: { bytes: number; window: number } | undefined
}

export async function agentsBench(args: string[]): Promise<void> {
  const sizes = listOption(args, '--sizes', [numberOption(args, '--agents', 2000)])
  const opts: Options = {
    workers: numberOption(args, '--workers', 4),
    concurrency: numberOption(args, '--connect-concurrency', 16),
    waveHeartbeatMs: numberOption(args, '--wave-heartbeat-ms', 3000),
    dispatch: numberOption(args, '--dispatch', 0),
    stream: args.includes('--stream') ? { bytes: numberOption(args, '--stream-mib', 64) * MiB, window: numberOption(args, '--window', 64) } : undefined,
  }
  if ((await testBackend()) !== 'postgres') {
    console.log('# Postgres not reachable: the agents bench needs it; skipped')
    return
  }
  const load = os.loadavg()
  const rows: (string | number)[][] = []
  const extras: { table: string; note: string }[] = []
  let agentSideKiB = 0
  for (const [i, count] of sizes.entries()) {
    const m = await measureSize(count, opts, i === sizes.length - 1 ? extras : undefined)
    agentSideKiB = Math.max(agentSideKiB, m.agentSideKiB)
    rows.push([
      count.toLocaleString('en'),
      f1(m.connectS),
      f0(count / m.connectS),
      `${f0(m.before.rssKiB / 1024)} → ${f0(m.idle.rssKiB / 1024)}`,
      f1((m.idle.rssKiB - m.before.rssKiB) / count),
      f1((m.idle.heapKiB - m.before.heapKiB) / count),
      `${pct(m.idleCpu.controller, HEARTBEAT_MS)} / ${pct(m.idleCpu.postgres, HEARTBEAT_MS)}`,
      `${pct(m.waveCpu.controller, WAVE_WINDOW_MS)} / ${pct(m.waveCpu.postgres, WAVE_WINDOW_MS)}`,
      f0(m.wavePeakRssKiB / 1024),
      `${m.waveDropped} (${m.waveHeld.min}–${m.waveHeld.max} held)`,
      m.reconnects.map((r) => `${r.allS === undefined ? `not all in ${WAVE_RECONNECT_LIMIT_MS / 1000}` : f1(r.allS)} (${f1(r.downS)})`).join(', '),
      m.reconnects.map((r) => r.failedAttempts).join(', '),
    ])
  }
  const heldTable = table(
    [
      'agents',
      'connect all, s',
      'handshakes/s',
      'controller RSS before → idle, MiB',
      'RSS per agent, KiB',
      'JS heap per agent, KiB',
      'CPU idle, % of a core: controller / Postgres',
      `CPU in the heartbeat wave, %: controller / Postgres`,
      'RSS peak in the wave, MiB',
      'sessions dropped in the wave (held, min–max)',
      'restart → all reconnected, s (controller down, s)',
      'failed reconnect attempts',
    ],
    rows,
  )
  console.log(heldTable)
  for (const e of extras) console.log(`\n${e.table}`)
  const notes = [
    `\`npm run bench -- agents --sizes ${sizes.join(',')}\`. Controller: the real one, in the bench process, on Postgres 127.0.0.1, a fresh controller and database per size, default settings (heartbeat ${HEARTBEAT_MS / 1000} s, drain window ${DRAIN_WINDOW_MS / 1000} s, pool of 10). ` +
      `Agents: simulated (test/sim) in ${opts.workers} worker processes, each with its own TLS connection and Ed25519 identity (agent rows inserted directly, not enrolled), running the real agent connection code ` +
      `(Hello → challenge signed over its own connection's TLS exporter → SessionReady, heartbeats, drain and full-jitter backoff reconnects), at most ${opts.concurrency} first handshakes in flight per worker. ` +
      `Controller, Postgres and agents share the machine's 2 cores (1-minute load average ${f1(load[0]!)}, 5-minute ${f1(load[1]!)} when the bench started); CPU seconds are read from /proc (Postgres = every postgres process) and given as % of one core.`,
    `Idle: RSS per agent = (controller VmRSS with all agents connected, after one full heartbeat interval − VmRSS before any connected) / agents; each VmRSS read after a forced full GC, once three readings 5 s apart agree within 2 MiB. ` +
      `CPU idle is measured over that one ${HEARTBEAT_MS / 1000} s interval, in which every session exchanges one heartbeat each way. The simulated agents' own memory (up to ${f1(agentSideKiB)} KiB RSS per agent) is in the workers, not counted.`,
    `Heartbeat wave: the controller restarted with a ${opts.waveHeartbeatMs} ms heartbeat (OPSC_AGENT_HEARTBEAT_MS), so once all agents are back every one of them heartbeats within each ${opts.waveHeartbeatMs} ms — ${f0(HEARTBEAT_MS / opts.waveHeartbeatMs)} × the default rate — ` +
      `and the controller answers each with its own; CPU over ${WAVE_WINDOW_MS / 1000} s of it, RSS sampled every second without forcing a GC (the peak). Sessions dropped = agent sessions that ended in that window (a missed heartbeat ends one after 3 intervals); held = sessions the controller holds, sampled every second. The wave waits at most ${WAVE_RECONNECT_LIMIT_MS / 1000} s for every agent to be back.`,
    `Restart: TestController.restart() — the controller stops as in production (a drain frame with its ${DRAIN_WINDOW_MS / 1000} s reconnect window to every agent, sessions closed, listeners closed) and boots again on the same ports and database; ` +
      'time runs from the start of the restart until the new controller holds every agent again (polled every 100 ms); "controller down" is the stop + boot part. An agent reconnects at a random moment of the drain window when the drain frame reached it, else by its own full-jitter exponential backoff (1 s base, doubling per failed attempt, 30 s cap); ' +
      'failed attempts (no controller listening yet, or a handshake that failed) are counted by the simulator. ' +
      'Two samples per size: the plain restart, then the one into the heartbeat wave.',
    ...extras.map((e) => e.note),
  ]
  console.log(`\n${notes.join('\n\n')}`)
  if (args.includes('--record')) record(`Agent gateway: ${sizes.map((n) => n.toLocaleString('en')).join(' / ')} agents on one controller (Postgres)`, [heldTable, ...extras.map((e) => e.table)].join('\n\n'), notes.join('\n\n'))
}

async function measureSize(count: number, opts: Options, extras: { table: string; note: string }[] | undefined) {
  // The per-step output cap (64 MiB by default) must not truncate the streams.
  const controller = await TestController.start(opts.stream && extras ? { OPSC_OUTPUT_CAP_BYTES: String(4 * opts.stream.bytes + MiB) } : {})
  let fleet: Fleet | undefined
  try {
    const db = controller.ctx.db
    const all = await seedIdentities(db, count + (extras && opts.stream ? STREAMERS : 0))
    const identities = all.slice(0, count)
    const caPem = readFileSync(path.join(controller.dataDir, 'tls', 'ca.crt'), 'utf8')
    let t0 = 0
    fleet = await Fleet.start({
      controller: controller.grpcAddress,
      caPem,
      identities,
      processes: opts.workers,
      concurrency: opts.concurrency,
      deferConnect: true,
      onProgress: (ready) => console.log(`# ${ready.toLocaleString('en')} agents connected after ${f1((performance.now() - t0) / 1000)} s`),
    })
    const held = () => controller.ctx.agentGateway!.registry.size

    // 1. Connect every agent; idle for one heartbeat interval; settled memory before and after.
    await checkpoint(db)
    const before = await settledMemory()
    const workersBeforeKiB = fleet.pids.reduce((sum, pid) => sum + rssKiBOf(pid), 0)
    t0 = performance.now()
    const connected = await fleet.connect()
    const connectS = (performance.now() - t0) / 1000
    console.log(`# ${held().toLocaleString('en')} agents connected in ${f1(connectS)} s (${connected.retries} handshakes retried)`)
    if (held() !== count) throw new Error(`the controller holds ${held()} sessions, expected ${count}`)
    const { cpu: idleCpu } = await measureCpu(fleet.pids, () => sleep(HEARTBEAT_MS))
    const idle = await settledMemory()
    const agentSideKiB = (fleet.pids.reduce((sum, pid) => sum + rssKiBOf(pid), 0) - workersBeforeKiB) / count

    // 2. Optional parts, at the largest size only.
    if (extras && opts.dispatch) extras.push(await dispatchRounds(controller, fleet.pids, identities.slice(0, opts.dispatch).map((a) => a.id), count))
    if (extras && opts.stream) extras.push(await streamRounds(controller, caPem, all.slice(count), opts.stream.bytes, opts.stream.window))
    await waitUntil(() => held() === count, 30_000, 'only the fleet connected')

    // 3. Restart, then restart into the heartbeat wave: each time until every agent is back (the wave: or its limit).
    const reconnects = [await restartAndReconnect(controller, fleet, count)]
    reconnects.push(await restartAndReconnect(controller, fleet, count, { OPSC_AGENT_HEARTBEAT_MS: String(opts.waveHeartbeatMs) }, WAVE_RECONNECT_LIMIT_MS))
    await sleep(2 * opts.waveHeartbeatMs) // past the reconnect's own work (session rows, last-seen flush)
    const endedBefore = (await fleet.stats()).retries
    let wavePeakRssKiB = 0
    const waveHeld = { min: count, max: 0 }
    const { cpu: waveCpu } = await measureCpu(fleet.pids, async () => {
      for (const until = Date.now() + WAVE_WINDOW_MS; Date.now() < until; await sleep(1000)) {
        wavePeakRssKiB = Math.max(wavePeakRssKiB, rssKiBOf(process.pid))
        waveHeld.min = Math.min(waveHeld.min, held())
        waveHeld.max = Math.max(waveHeld.max, held())
      }
    })
    const waveDropped = (await fleet.stats()).retries - endedBefore
    console.log(`# ${count} agents: heartbeat wave controller CPU ${pct(waveCpu.controller, WAVE_WINDOW_MS)} %, RSS peak ${f0(wavePeakRssKiB / 1024)} MiB (${f0(memory().rssKiB / 1024)} MiB after a GC), ${waveDropped} sessions dropped, ${waveHeld.min}–${waveHeld.max} held`)
    return { connectS, before, idle, idleCpu, agentSideKiB, waveCpu: waveCpu as CpuSpent, wavePeakRssKiB, waveDropped, waveHeld, reconnects }
  } finally {
    await fleet?.stop()
    await controller.stop()
  }
}

/** Restarts the controller (drain, stop, boot) and waits until it holds every agent again (at most `limitMs`: then allS is undefined). */
async function restartAndReconnect(controller: TestController, fleet: Fleet, count: number, env: Record<string, string> = {}, limitMs = 600_000) {
  const failedBefore = (await fleet.stats()).retries
  const t0 = performance.now()
  await controller.restart(env)
  const downS = (performance.now() - t0) / 1000
  const back = await waitUntil(() => controller.ctx.agentGateway!.registry.size === count, limitMs, `all ${count} agents back after the restart`).then(
    () => true,
    () => false,
  )
  const allS = back ? (performance.now() - t0) / 1000 : undefined
  // Every agent's session ended once with the drain; the rest ended before SessionReady (or soon after) and were retried.
  const failedAttempts = (await fleet.stats()).retries - failedBefore - count
  console.log(`# restart: controller down ${f1(downS)} s, ${back ? `all ${count.toLocaleString('en')} agents back after ${f1(allS!)} s` : `${controller.ctx.agentGateway!.registry.size} of ${count} back after ${limitMs / 1000} s`}, ${failedAttempts} failed attempts`)
  return { downS, allS, failedAttempts }
}
