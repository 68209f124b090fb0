// A simulator process holding many virtual agents (Fleet forks a few of these), so whoever runs the
// controller holds only the controller's side of each connection.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pino } from 'pino'
import { enrolIdentities } from './identities.ts'
import { emptyStats, type FromWorker, type ReadyReport, type ToWorker, type WorkerStart } from './protocol.ts'
import { installSocketTracking, VirtualAgent } from './virtual-agent.ts'

const send = (msg: FromWorker) => process.send?.(msg)
const PROGRESS_EVERY = 250

const stats = emptyStats()
let lastProblem: string | undefined
let verbose = false
const log = pino(
  { level: 'info' },
  {
    write(line: string) {
      const record = JSON.parse(line) as { msg?: string; level: number }
      const ended = record.msg === 'agent.disconnected' || record.msg === 'agent.session_failed'
      if (ended) stats.retries++
      if (ended || record.level >= 40) lastProblem = line.trim()
      if (verbose && record.level >= 40) process.stderr.write(line)
    },
  },
)

let agents: VirtualAgent[] = []
let workDir: string | undefined
let start: WorkerStart | undefined
let connecting: Promise<ReadyReport> | undefined

async function setUp(s: WorkerStart): Promise<{ ids: string[]; indices: number[] }> {
  start = s
  verbose = !!s.verbose
  await installSocketTracking()
  workDir = mkdtempSync(path.join(tmpdir(), 'opsc-sim-'))
  const identities =
    s.identities ??
    (await enrolIdentities({ controller: s.controllers[0]!, caPem: s.caPem, token: s.enroll!.token, namePrefix: s.enroll!.namePrefix, indices: s.enroll!.indices, concurrency: s.concurrency }))
  agents = identities.map(
    (identity) =>
      new VirtualAgent({
        identity,
        controllers: s.controllers,
        caPem: s.caPem,
        behaviour: s.behaviour,
        stats,
        log,
        workDir: workDir!,
        ...(s.backoffBaseMs !== undefined ? { backoffBaseMs: s.backoffBaseMs } : {}),
        ...(s.backoffCapMs !== undefined ? { backoffCapMs: s.backoffCapMs } : {}),
      }),
  )
  stats.agents = agents.length
  return { ids: identities.map((i) => i.id), indices: identities.map((i) => i.index) }
}

function connectAll(): Promise<ReadyReport> {
  connecting ??= (async () => {
    let next = 0
    let ready = 0
    // A few handshakes at a time per worker, as a fleet coming up after an outage would be spread by backoff.
    const lane = async () => {
      while (next < agents.length) {
        await agents[next++]!.start()
        if (++ready % PROGRESS_EVERY === 0) send({ type: 'progress', ready })
      }
    }
    await Promise.all(Array.from({ length: Math.max(1, start!.concurrency) }, lane))
    return { ready, retries: stats.retries, ...(lastProblem ? { lastProblem } : {}) }
  })()
  return connecting
}

async function stopAll(): Promise<void> {
  await Promise.all(agents.map((a) => a.stop()))
  if (workDir) rmSync(workDir, { recursive: true, force: true })
}

async function handle(msg: ToWorker): Promise<unknown> {
  switch (msg.type) {
    case 'start':
      return setUp(msg.start)
    case 'connect':
      return connectAll()
    case 'stats':
      return { ...stats }
    case 'kill': {
      const victims = agents.filter((a) => !a.killed).slice(0, msg.count)
      for (const a of victims) a.kill()
      return victims.map((a) => a.id)
    }
    case 'stop':
      return stopAll()
  }
}

process.on('message', (msg: ToWorker) => {
  handle(msg).then(
    (value) => send({ type: 'reply', reqId: msg.reqId, ok: true, ...(value !== undefined ? { value } : {}) }),
    (err: Error) => send({ type: 'reply', reqId: msg.reqId, ok: false, message: err.stack ?? err.message }),
  )
})
// The parent went away (finished or crashed): so do we, taking every connection with us.
process.on('disconnect', () => {
  if (workDir) rmSync(workDir, { recursive: true, force: true })
  process.exit(0)
})
send({ type: 'loaded' })
