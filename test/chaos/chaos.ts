import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { sql } from 'drizzle-orm'
import { rowsOf } from '../../controller/src/db/migrate.ts'
import { HttpReceiver } from '../harness/receivers.ts'
import { startAgents, startControllers, driverContext, type ChaosAgent, type ChaosController, type Unexpected } from './cluster.ts'
import { checkInvariants, type Figures, type Violation } from './invariants.ts'
import { PostgresCluster } from './postgres-cluster.ts'
import { createWorkload, disableSchedule } from './workload.ts'
import { mulberry32 } from '../harness/prng.ts'

/*
 * One chaos run: a private Postgres cluster, `controllers` controller processes and `agents` agent
 * processes (each behind a proxy that balances over the live controllers), the workload of
 * workload.ts, and for `chaosMs` a seeded stream of faults:
 *
 *   controller-kill   kill -9 of a controller (never the last one alive), started again on the same
 *                     gRPC port and data dir after 0.3–3 s
 *   agent-kill        kill -9 of an agent, started again on the same state dir after 0.2–3 s
 *   connection-cut    the TCP connections of one agent (sometimes of all) dropped mid-stream
 *   postgres-restart  `pg_ctl restart -m immediate` of the database (at most every pgRestartGapMs)
 *   receiver-outage   the webhook receiver refuses connections for 1–6 s
 *
 * while runs of `chaos-output` are launched every launchEveryMs and the schedule fires. Then the
 * faults stop, everything is brought back, the schedule is disabled once it has caught up, and
 * when every run and notification is final the invariants are checked (invariants.ts).
 *
 * The seed fixes the sequence of faults and workload draws (which, when, how long); the exact
 * interleaving with the processes still depends on timing, so a replay is close, not identical.
 */

export const EVENT_KINDS = ['controller-kill', 'agent-kill', 'connection-cut', 'postgres-restart', 'receiver-outage'] as const
export type EventKind = (typeof EVENT_KINDS)[number]

export interface ChaosOptions {
  seed: number
  chaosMs: number
  controllers: number
  agents: number
  /** Pause between two faults, uniform in [min, max]. */
  eventEveryMs: [number, number]
  launchEveryMs: [number, number]
  /** Lines the `emit` step prints (≈ 90 bytes each, a pause every 10). */
  lines: [number, number]
  pgRestartGapMs: number
  /** Six-field cron of the schedule, and its period. */
  cron: string
  periodMs: number
  weights: Record<EventKind, number>
  quiesceTimeoutMs: number
  log(line: string): void
}

export const SHORT_OPTIONS: Omit<ChaosOptions, 'seed' | 'log'> = {
  chaosMs: 40_000,
  controllers: 2,
  agents: 3,
  eventEveryMs: [1_200, 3_000],
  launchEveryMs: [1_500, 3_000],
  lines: [20, 250],
  pgRestartGapMs: 15_000,
  cron: '*/4 * * * * *',
  periodMs: 4_000,
  weights: { 'controller-kill': 2, 'agent-kill': 3, 'connection-cut': 3, 'postgres-restart': 1, 'receiver-outage': 1 },
  quiesceTimeoutMs: 300_000,
}

export interface ChaosEvent {
  atMs: number
  kind: EventKind
  detail: string
}

export interface ChaosReport {
  seed: number
  options: Omit<ChaosOptions, 'log'>
  events: ChaosEvent[]
  eventCounts: Record<EventKind, number>
  unexpected: Unexpected[]
  launches: { ok: number; failed: number }
  pgRestartMs: number[]
  controllerStarts: number
  /** Step verdicts a controller learnt from the database because the agent reported them through another one. */
  verdictsFromElsewhere: number
  /** Assignments recorded sent that the agent had not received, written again on its current session. */
  redelivered: number
  agentStarts: number
  figures: Figures
  violations: Violation[]
  /** Log lines of every controller and agent process naming the step runs of the first violations. */
  evidence: Record<string, string[]>
  quiesce: { ok: boolean; detail: string }
  timings: { setupMs: number; chaosMs: number; quiesceMs: number; checkMs: number; totalMs: number }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await check()) return true
    } catch {
      /* the database restarting: ask again */
    }
    if (Date.now() > deadline) return false
    await sleep(250)
  }
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const t0 = Date.now()
  // Two streams: the faults' sequence does not depend on how many runs the launcher got in meanwhile.
  const random = mulberry32(opts.seed)
  const workRandom = mulberry32(opts.seed ^ 0x5eed5eed)
  const between = ([min, max]: [number, number], r = random) => Math.round(min + r() * (max - min))
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!
  const log = opts.log
  const unexpected: Unexpected[] = []
  const events: ChaosEvent[] = []
  const pgRestartMs: number[] = []
  const launches = { ok: 0, failed: 0 }
  const pending = new Set<Promise<unknown>>()
  const later = (ms: number, fn: () => Promise<unknown>) => {
    const p = sleep(ms)
      .then(fn)
      .catch((err: Error) => unexpected.push({ at: Date.now(), who: 'harness', detail: `a delayed restart failed: ${err.message}` }))
      .finally(() => pending.delete(p))
    pending.add(p)
  }

  const pg = await PostgresCluster.start()
  let controllers: ChaosController[] = []
  let agents: ChaosAgent[] = []
  let rx: HttpReceiver | undefined
  let closeDb: (() => Promise<void>) | undefined
  const marksDir = mkdtempSync(path.join(tmpdir(), 'opsc-chaos-marks-'))
  // Killed from outside (a test runner's timeout): leave no controller, agent or postmaster behind.
  const onExit = () => {
    for (const p of [...controllers.map((c) => c.current?.proc), ...agents.map((a) => a.current?.proc)]) if (p && p.exitCode === null) p.kill('SIGKILL')
    pg.destroySync()
  }
  process.once('exit', onExit)
  try {
    const url = await pg.createDatabase('opsc_chaos')
    const masterKey = randomBytes(32)
    const env = {
      DATABASE_URL: url,
      OPSC_MASTER_KEY: masterKey.toString('base64'),
      OPSC_WORK_LEASE_MS: '2000',
      OPSC_AGENT_HEARTBEAT_MS: '500',
      OPSC_AGENT_LOST_GRACE_MS: '60000',
      OPSC_SCHEDULER_TICK_MS: '500',
      OPSC_SCHEDULER_LEADER_RETRY_MS: '1000',
      OPSC_NOTIFY_BACKOFF_BASE_MS: '500',
      OPSC_NOTIFY_BACKOFF_CAP_MS: '3000',
      OPSC_NOTIFY_MAX_ATTEMPTS: '100',
      OPSC_NOTIFY_LEASE_MS: '4000',
    }
    log(`# private Postgres on :${pg.port}; starting ${opts.controllers} controllers`)
    controllers = await startControllers(opts.controllers, env, unexpected)
    const { ctx, database } = await driverContext(url, masterKey)
    closeDb = () => database.close()
    rx = await HttpReceiver.up()
    log(`# enrolling ${opts.agents} agents`)
    agents = await startAgents(ctx, controllers, opts.agents, unexpected)
    const { workload, api } = await createWorkload(ctx, { targetIds: agents.map((a) => a.targetId), marksDir, receiverUrl: rx.url, cron: opts.cron, periodMs: opts.periodMs })
    const setupMs = Date.now() - t0
    log(`# set up in ${(setupMs / 1000).toFixed(1)} s; chaos for ${(opts.chaosMs / 1000).toFixed(0)} s (seed ${opts.seed})`)

    // ---- chaos
    const chaosStart = Date.now()
    const stopAt = chaosStart + opts.chaosMs
    let lastPgRestart = chaosStart - opts.pgRestartGapMs / 2
    const record = (kind: EventKind, detail: string) => {
      events.push({ atMs: Date.now() - chaosStart, kind, detail })
      log(`  ${((Date.now() - chaosStart) / 1000).toFixed(1).padStart(6)} s  ${kind}  ${detail}`)
    }
    const receiver = rx
    const watchdog = async () => {
      while (Date.now() < stopAt) {
        for (const c of controllers) if (c.reapIfDead()) later(0, () => c.start())
        for (const a of agents) if (a.reapIfDead()) a.start()
        await sleep(500)
      }
    }
    const launcher = async () => {
      while (Date.now() < stopAt) {
        const token = randomBytes(8).toString('hex')
        const lines = between(opts.lines, workRandom)
        try {
          const res = await api.call('POST', `/api/v1/jobs/${workload.outputJobId}/run`, { parameters: { token, lines: String(lines) } })
          if (res.status === 202) launches.ok++
          else launches.failed++
        } catch {
          launches.failed++
        }
        await sleep(between(opts.launchEveryMs, workRandom))
      }
    }
    const kinds = EVENT_KINDS.flatMap((k) => Array<EventKind>(opts.weights[k]).fill(k))
    const chaos = async () => {
      await sleep(between(opts.eventEveryMs))
      while (Date.now() < stopAt) {
        let kind = pick(kinds)
        if (kind === 'postgres-restart' && Date.now() - lastPgRestart < opts.pgRestartGapMs) kind = 'connection-cut'
        const live = controllers.filter((c) => c.alive)
        if (kind === 'controller-kill' && live.length < 2) kind = 'agent-kill'
        const liveAgents = agents.filter((a) => a.alive)
        if (kind === 'agent-kill' && liveAgents.length === 0) kind = 'connection-cut'
        if (kind === 'receiver-outage' && !receiver.listening) kind = 'connection-cut'
        switch (kind) {
          case 'controller-kill': {
            const c = pick(live)
            const down = between([300, 3_000])
            await c.kill()
            record(kind, `${c.name} (back in ${down} ms)`)
            later(down, () => c.start())
            break
          }
          case 'agent-kill': {
            const a = pick(liveAgents)
            const down = between([200, 3_000])
            await a.kill()
            record(kind, `${a.name} (back in ${down} ms)`)
            later(down, async () => a.start())
            break
          }
          case 'connection-cut': {
            const all = random() < 0.25
            const victim = pick(liveAgents.length ? liveAgents : agents)
            const cut = all ? agents.reduce((n, a) => n + a.proxy.cut(), 0) : victim.proxy.cut()
            record(kind, `${all ? 'every agent' : victim.name}: ${cut / 2} connections`)
            break
          }
          case 'postgres-restart': {
            lastPgRestart = Date.now()
            const ms = await pg.crashRestart()
            pgRestartMs.push(ms)
            lastPgRestart = Date.now()
            record(kind, `back after ${ms} ms`)
            break
          }
          case 'receiver-outage': {
            const down = between([1_000, 6_000])
            await receiver.down()
            record(kind, `${down} ms`)
            later(down, () => receiver.up())
            break
          }
        }
        await sleep(between(opts.eventEveryMs))
      }
    }
    await Promise.all([watchdog(), launcher(), chaos()])
    const chaosMs = Date.now() - chaosStart

    // ---- quiesce: faults stop, everything comes back, the work drains
    const quiesceStart = Date.now()
    log(`# chaos over (${events.length} faults, ${launches.ok} runs launched); recovering`)
    while (pending.size) await Promise.all([...pending])
    await pg.waitReady()
    for (const c of controllers) c.reapIfDead()
    for (const a of agents) a.reapIfDead()
    await Promise.all(controllers.filter((c) => !c.alive).map((c) => c.start()))
    for (const a of agents.filter((a) => !a.alive)) a.start()
    await receiver.up()
    let quiesce = { ok: true, detail: 'every run and notification final' }
    const q = async <T>(query: ReturnType<typeof sql>) => rowsOf<T>(await ctx.db.execute(query))
    // The schedule has caught up with the clock before it is disabled: the window ends at a known instant.
    const caughtUp = await until(async () => {
      const [row] = await q<{ last: string | null }>(sql`select max(fire_at)::text as last from schedule_fire where schedule_id = ${workload.scheduleId} and status = 'fired'`)
      return !!row?.last && new Date(row.last).getTime() >= Date.now() - opts.periodMs - 1_500
    }, 120_000)
    if (!caughtUp) quiesce = { ok: false, detail: 'the schedule did not catch up with the clock within 120 s' }
    await until(async () => (await disableSchedule(api, workload), true), 60_000)
    await sleep(2_000) // a tick that read the schedule before it was disabled may still be finishing
    const drained = await until(async () => {
      const [open] = await q<{ runs: number; notes: number }>(sql`
        select (select count(*)::int from run where job_id in (${workload.outputJobId}, ${workload.tickJobId}) and status in ('queued', 'running')) as runs,
               (select count(*)::int from notification where rule_id = ${workload.ruleId} and status in ('pending', 'sending')) as notes`)
      return Number(open!.runs) === 0 && Number(open!.notes) === 0
    }, opts.quiesceTimeoutMs)
    if (!drained) quiesce = { ok: false, detail: `runs or notifications still open after ${opts.quiesceTimeoutMs / 1000} s (see the runs-final and notify-once violations)` }
    await sleep(1_000)
    const quiesceMs = Date.now() - quiesceStart

    // ---- check
    const checkStart = Date.now()
    const { violations, figures } = await checkInvariants(ctx.db, workload, receiver.received)
    const checkMs = Date.now() - checkStart
    // Evidence: every log line of every process that names a step run a violation is about.
    const evidence: Record<string, string[]> = {}
    for (const v of violations.slice(0, 10)) {
      const id = /step run ([0-9a-f-]{36})/.exec(v.detail)?.[1]
      if (!id || evidence[id]) continue
      const lines: string[] = []
      for (const c of controllers) c.history.forEach((p, i) => lines.push(...p.logs.filter((l) => JSON.stringify(l).includes(id)).map((l) => `${c.name}#${i}: ${JSON.stringify(l)}`)))
      for (const a of agents) a.history.forEach((p, i) => lines.push(...p.logs.filter((l) => JSON.stringify(l).includes(id)).map((l) => `${a.name}#${i}: ${JSON.stringify(l)}`)))
      // A step run stuck on an assignment: what its agent and the controllers said about that agent around the send.
      const stuck = /agent ([0-9a-f-]{36}), sent at ([^,;]+)/.exec(v.detail)
      const sentAt = stuck ? new Date(stuck[2]!.replace(' ', 'T').replace(/\+00$/, 'Z')).getTime() : NaN
      if (stuck && Number.isFinite(sentAt)) {
        const near = (l: Record<string, unknown>) => Math.abs(new Date(l.time as string | number).getTime() - sentAt) < 6_000
        for (const a of agents.filter((a) => a.agentId === stuck[1])) a.history.forEach((p, i) => lines.push(...p.logs.filter(near).map((l) => `${a.name}#${i} (its agent): ${JSON.stringify(l)}`)))
        for (const c of controllers) c.history.forEach((p, i) => lines.push(...p.logs.filter((l) => near(l) && JSON.stringify(l).includes(stuck[1]!)).map((l) => `${c.name}#${i} (about its agent): ${JSON.stringify(l)}`)))
      }
      evidence[id] = lines
    }
    const eventCounts = Object.fromEntries(EVENT_KINDS.map((k) => [k, events.filter((e) => e.kind === k).length])) as Record<EventKind, number>
    const { log: _log, ...options } = opts
    return {
      seed: opts.seed,
      options,
      events,
      eventCounts,
      unexpected,
      launches,
      pgRestartMs,
      controllerStarts: controllers.reduce((n, c) => n + c.starts, 0),
      verdictsFromElsewhere: controllers.reduce((n, c) => n + c.history.reduce((m, p) => m + p.logs.filter((l) => l.msg === 'agents.verdicts_from_elsewhere').reduce((k, l) => k + Number(l.count ?? 0), 0), 0), 0),
      redelivered: controllers.reduce((n, c) => n + c.history.reduce((m, p) => m + p.logs.filter((l) => l.msg === 'agents.assignment_redelivered').length, 0), 0),
      agentStarts: agents.reduce((n, a) => n + a.starts, 0),
      figures,
      violations,
      evidence,
      quiesce,
      timings: { setupMs, chaosMs, quiesceMs, checkMs, totalMs: Date.now() - t0 },
    }
  } finally {
    process.off('exit', onExit)
    while (pending.size) await Promise.all([...pending]).catch(() => {})
    for (const a of agents) await a.kill().catch(() => {})
    for (const a of agents) await a.proxy.close().catch(() => {})
    for (const c of controllers) await c.kill().catch(() => {})
    await rx?.down().catch(() => {})
    await closeDb?.().catch(() => {})
    await pg.destroy()
    rmSync(marksDir, { recursive: true, force: true })
    for (const c of controllers) rmSync(c.dataDir, { recursive: true, force: true })
    for (const a of agents) rmSync(path.dirname(a.stateDir), { recursive: true, force: true })
  }
}

/** The summary of a report as a Markdown table (printed, and appended to BENCHMARKS.md with --record). */
export function summaryRows(r: ChaosReport): [string, string][] {
  const f = r.figures
  const fmt = (o: Record<string, number>) =>
    Object.entries(o)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')
  return [
    ['seed', String(r.seed)],
    ['processes', `${r.options.controllers} controllers, ${r.options.agents} agents, 1 private Postgres`],
    ['chaos window', `${(r.timings.chaosMs / 1000).toFixed(0)} s (set-up ${(r.timings.setupMs / 1000).toFixed(0)} s, recovery and drain ${(r.timings.quiesceMs / 1000).toFixed(0)} s)`],
    ['faults injected', `${r.events.length}: ${fmt(r.eventCounts)}`],
    ['Postgres restarts', r.pgRestartMs.length ? `${r.pgRestartMs.length}, back after ${r.pgRestartMs.map((ms) => `${ms}`).join(' / ')} ms` : '0'],
    ['process starts', `controllers ${r.controllerStarts}, agents ${r.agentStarts}`],
    ['exits nobody caused', String(r.unexpected.length)],
    ['verdicts relayed between controllers', String(r.verdictsFromElsewhere)],
    ['assignments redelivered (sent to a dead session)', String(r.redelivered)],
    ['runs', `${f.runs} (${f.manualRuns} launched, ${f.scheduledRuns} scheduled; ${r.launches.failed} launch calls failed during faults): ${fmt(f.runsByStatus)}`],
    ['step runs', `${f.stepRuns}: ${fmt(f.stepRunsByStatus)}`],
    ['output stored', `${(f.outputBytes / 1024).toFixed(1)} KiB in ${f.outputChunks} chunks; succeeded step runs: ${(f.expectedBytesOfSucceeded / 1024).toFixed(1)} KiB, ${r.violations.some((v) => v.invariant === 'output-exact') ? 'NOT all byte-equal (see violations)' : 'byte-equal to what the commands printed'}`],
    ['executions (markers)', String(f.markers)],
    ['schedule occurrences', `${f.occurrences} recorded, ${f.fired} fired`],
    ['notifications', `${f.notifications} (one per finished run); ${f.deliveries} HTTP deliveries, ${f.redeliveries} redeliveries of a delivery id`],
    ['quiesce', r.quiesce.detail],
    ['violations', r.violations.length === 0 ? '0' : `${r.violations.length}: ${fmt(r.violations.reduce<Record<string, number>>((o, v) => ((o[v.invariant] = (o[v.invariant] ?? 0) + 1), o), {}))}`],
  ]
}
