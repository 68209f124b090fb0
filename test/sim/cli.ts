// The agent simulator from a shell, against any controller:
//   node --import tsx test/sim/cli.ts --controller 127.0.0.1:7443 --ca-fingerprint SHA256 --token opsc_et_… \
//     --agents 500 --processes 4 [--mode cheap|real] [--latency-ms 5-50] [--output-bytes N] [--failure-rate 0.1] [--seed 7]
// Enrols the agents with the token (it needs max_uses ≥ --agents), connects them, prints statistics
// every --interval-s, and stops (politely) on SIGINT/SIGTERM or after --duration-s.
import { readFileSync } from 'node:fs'
import { Command, InvalidArgumentError } from 'commander'
import { Fleet, type SimStats } from './fleet.ts'

const int = (v: string) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number')
  return n
}
const num = (v: string) => {
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number')
  return n
}
const range = (v: string): [number, number] => {
  const [a, b = a] = v.split('-').map(num)
  return [a!, b!]
}

const program = new Command('opsc-sim')
  .description('N virtual agents, each enrolled with its own key and its own Connect stream')
  .requiredOption('--controller <host:port...>', "the controller's gRPC address (several: agents rotate on reconnect)")
  .requiredOption('--token <token>', 'an enrollment token with max_uses ≥ --agents')
  .option('--ca-fingerprint <sha256>', "the controller CA's fingerprint (pinned as `opsconductor-agent enroll` does)")
  .option('--ca-file <path>', "the controller's CA certificate (PEM), instead of --ca-fingerprint")
  .option('--agents <n>', 'virtual agents', int, 100)
  .option('--processes <n>', 'simulator processes', int, 1)
  .option('--concurrency <n>', 'enrolments and handshakes in flight per process', int, 16)
  .option('--mode <mode>', "cheap (nothing spawned) or real (the agent's runner, real processes)", 'cheap')
  .option('--latency-ms <min-max>', 'cheap mode: time each action takes, uniform in [min, max]', range, [0, 0] as [number, number])
  .option('--output-bytes <n>', 'cheap mode: bytes a command emits (default: it echoes its own text)', int)
  .option('--failure-rate <p>', 'cheap mode: probability an action exits 1', num, 0)
  .option('--seed <n>', 'seed of the latency and failure draws', int, 1)
  .option('--name-prefix <prefix>', 'host names are PREFIX-0 … PREFIX-(N-1)')
  .option('--interval-s <s>', 'print statistics this often', num, 5)
  .option('--duration-s <s>', 'stop after this long (default: until interrupted)', num)
  .option('--verbose', "print the agents' own warnings")
  .parse()

const o = program.opts<{
  controller: string[]
  token: string
  caFingerprint?: string
  caFile?: string
  agents: number
  processes: number
  concurrency: number
  mode: 'cheap' | 'real'
  latencyMs: [number, number]
  outputBytes?: number
  failureRate: number
  seed: number
  namePrefix?: string
  intervalS: number
  durationS?: number
  verbose?: boolean
}>()
if (!o.caFingerprint === !o.caFile) program.error('give exactly one of --ca-fingerprint and --ca-file')
if (o.mode !== 'cheap' && o.mode !== 'real') program.error('--mode is cheap or real')
if (o.failureRate > 1) program.error('--failure-rate is a probability, 0…1')

const line = (s: SimStats, t0: number) =>
  `${((performance.now() - t0) / 1000).toFixed(1)} s  connected ${s.connected}/${s.agents}  sessions ${s.sessions}  retries ${s.retries}  ` +
  `received ${s.received}  verified ${s.verified}  rejected ${s.rejected}  executed ${s.executed} (ok ${s.succeeded}, failed ${s.failed})  ` +
  `output ${(s.bytesSent / 1024 / 1024).toFixed(1)} MiB in ${s.chunksSent} chunks${s.killed ? `  killed ${s.killed}` : ''}`

const t0 = performance.now()
const fleet = await Fleet.start({
  controller: o.controller,
  ...(o.caFile ? { caPem: readFileSync(o.caFile, 'utf8') } : { caFingerprint: o.caFingerprint! }),
  count: o.agents,
  processes: o.processes,
  concurrency: o.concurrency,
  enroll: { token: o.token, ...(o.namePrefix ? { namePrefix: o.namePrefix } : {}) },
  behaviour: { mode: o.mode, latencyMs: o.latencyMs, failureRate: o.failureRate, seed: o.seed, ...(o.outputBytes !== undefined ? { outputBytes: o.outputBytes } : {}) },
  onProgress: (ready) => console.log(`# ${ready} agents connected after ${((performance.now() - t0) / 1000).toFixed(1)} s`),
  ...(o.verbose ? { verbose: true } : {}),
})
console.log(`# ${fleet.agentIds.length} agents enrolled in ${((performance.now() - t0) / 1000).toFixed(1)} s (processes ${fleet.pids.join(', ')})`)
let stopping = false
const stop = async (why: string) => {
  if (stopping) return
  stopping = true
  clearInterval(timer)
  console.log(`# stopping (${why})`)
  console.log(line(await fleet.stats(), t0))
  await fleet.stop()
  process.exit(0)
}
const timer = setInterval(() => {
  fleet.stats().then(
    (s) => console.log(line(s, t0)),
    (err: Error) => console.error(`# ${err.message}`),
  )
}, o.intervalS * 1000)
process.on('SIGINT', () => void stop('SIGINT'))
process.on('SIGTERM', () => void stop('SIGTERM'))
if (o.durationS !== undefined) setTimeout(() => void stop(`--duration-s ${o.durationS}`), o.durationS * 1000)
const ready = await fleet.ready()
console.log(`# all ${ready.ready} agents connected after ${((performance.now() - t0) / 1000).toFixed(1)} s (${ready.retries} handshakes retried)`)
