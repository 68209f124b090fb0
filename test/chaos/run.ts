// The chaos suite's long variant: `npm run chaos -- --minutes 10 [--seed N] [--controllers 3] [--agents 4] [--record]`.
// Prints a summary table (faults per kind, runs, steps, bytes, fires, notifications, violations) and,
// with --record, appends it to BENCHMARKS.md. Exits 1 when an invariant is broken. See chaos.ts.
import { Command, InvalidArgumentError } from 'commander'
import { record, table } from '../bench/report.ts'
import { runChaos, SHORT_OPTIONS, summaryRows } from './chaos.ts'
import { privatePostgresUnavailable } from './postgres-cluster.ts'

const num = (v: string) => {
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number')
  return n
}
const o = new Command('chaos')
  .option('--minutes <m>', 'how long the faults go on', num, 10)
  .option('--seed <n>', 'seed of the faults and the workload draws (default: random, printed)', num)
  .option('--controllers <n>', 'controller processes', num, 3)
  .option('--agents <n>', 'agent processes', num, 4)
  .option('--record', 'append the summary to BENCHMARKS.md')
  .parse()
  .opts<{ minutes: number; seed?: number; controllers: number; agents: number; record?: boolean }>()

const unavailable = privatePostgresUnavailable()
if (unavailable) {
  console.error(`chaos: ${unavailable}`)
  process.exit(2)
}
const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31)
console.log(`# chaos for ${o.minutes} min, seed ${seed} (replay: npm run chaos -- --minutes ${o.minutes} --seed ${seed})`)
const report = await runChaos({
  ...SHORT_OPTIONS,
  chaosMs: o.minutes * 60_000,
  controllers: Math.round(o.controllers),
  agents: Math.round(o.agents),
  // Longer: Postgres may crash every 45 s, and the pauses between faults are as in CI.
  pgRestartGapMs: 45_000,
  quiesceTimeoutMs: 600_000,
  seed,
  log: (line) => console.log(line),
})
const rows = summaryRows(report)
const body = table(['measure', 'value'], rows)
console.log(`\n${body}\n`)
for (const [why, n] of Object.entries(report.figures.stepErrors)) console.log(`step runs ${why} × ${n}`)
for (const u of report.unexpected) console.log(`not caused by the chaos: ${u.who}: ${u.detail}`)
for (const v of report.violations.slice(0, 100)) console.log(`VIOLATION ${v.invariant}: ${v.detail}`)
for (const [id, lines] of Object.entries(report.evidence)) console.log(`evidence for step run ${id}:\n${lines.map((l) => l.slice(0, 2000)).join('\n')}`)
if (o.record) {
  record(
    `Chaos suite, ${o.minutes} min`,
    body,
    `\`npm run chaos -- --minutes ${o.minutes} --seed ${seed}${o.controllers !== 3 ? ` --controllers ${o.controllers}` : ''}${o.agents !== 4 ? ` --agents ${o.agents}` : ''}\`: ` +
      'kill -9 of controllers and agents, dropped agent connections, `pg_ctl restart -m immediate` of a private Postgres cluster and webhook receiver outages, ' +
      'while runs printing known output are launched and a schedule fires every 4 s; invariants checked after recovery (test/chaos/invariants.ts).',
  )
  console.log('recorded in BENCHMARKS.md')
}
process.exit(report.violations.length ? 1 : 0)
