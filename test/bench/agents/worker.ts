// A child process holding many simulated agents (test/bench/agents.ts forks a few of these), so the
// controller's process holds only the controller's side of each connection.
import { pino } from 'pino'
import { SimulatedAgent } from './sim-agent.ts'
import type { FromWorker, ToWorker } from './protocol.ts'

const send = (msg: FromWorker) => process.send!(msg)
const PROGRESS_EVERY = 250

// While connecting, any session that ends (refused, timed out, failed) is a retry.
let retries = 0
let lastProblem: string | undefined
const log = pino(
  { level: 'info' },
  {
    write(line: string) {
      const record = JSON.parse(line) as { msg?: string; level: number; details?: string; err?: string }
      const ended = record.msg === 'agent.disconnected' || record.msg === 'agent.session_failed'
      if (ended) retries++
      if (ended || record.level >= 40) lastProblem = line.trim()
    },
  },
)

async function connectAll(msg: ToWorker): Promise<void> {
  const agents = msg.agents.map((identity) => new SimulatedAgent(identity, msg.address, msg.caPem, log))
  let next = 0
  let ready = 0
  // A few handshakes at a time per worker, as a fleet coming up after an outage would be spread by backoff.
  const lane = async () => {
    while (next < agents.length) {
      await agents[next++]!.start()
      if (++ready % PROGRESS_EVERY === 0) send({ type: 'progress', ready })
    }
  }
  await Promise.all(Array.from({ length: msg.concurrency }, lane))
  send({ type: 'connected', ready, retries, ...(lastProblem ? { lastProblem } : {}) })
}

process.on('message', (msg: ToWorker) => {
  if (msg.type === 'connect') connectAll(msg).catch((err: Error) => send({ type: 'failed', message: err.stack ?? err.message }))
})
// The parent went away (finished or crashed): so do we, taking every connection with us.
process.on('disconnect', () => process.exit(0))
send({ type: 'loaded' })
