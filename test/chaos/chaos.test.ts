import assert from 'node:assert/strict'
import { test } from 'node:test'
import { testBackend } from '../harness/db.ts'
import { runChaos, SHORT_OPTIONS, summaryRows } from './chaos.ts'
import { privatePostgresUnavailable } from './postgres-cluster.ts'

/*
 * The chaos suite's short variant (the long one: `npm run chaos -- --minutes 10`): two controller
 * processes, three agents and a private Postgres cluster, 40 s of seeded faults — kill -9 of
 * controllers and agents, dropped agent connections, crash restarts of Postgres, webhook receiver
 * outages — while runs with output are launched and a schedule fires; then, once everything has
 * recovered and drained, the invariants of invariants.ts. OPSC_CHAOS_SEED=N replays a seed.
 *
 * It needs real Postgres server binaries to make (and crash) a cluster of its own; it runs in the
 * Postgres pass only, since the controllers are separate processes sharing one database, which
 * the embedded PGlite (one process's in-memory database) cannot be.
 */

const backend = await testBackend()
const skip = backend !== 'postgres' ? 'needs Postgres: separate controller processes share one database (PGlite lives inside one process)' : privatePostgresUnavailable()
const seed = process.env.OPSC_CHAOS_SEED ? Number(process.env.OPSC_CHAOS_SEED) : Math.floor(Math.random() * 2 ** 31)

test(`chaos (seed ${seed}): no step run twice, no byte lost or doubled, every fire and notification once`, { skip, timeout: 600_000 }, async () => {
  console.log(`chaos seed ${seed} (replay: OPSC_CHAOS_SEED=${seed})`)
  // (The test runner shows stdout as comments already.)
  const report = await runChaos({ ...SHORT_OPTIONS, seed, log: (line) => console.log(line.replace(/^# /, '')) })
  for (const [k, v] of summaryRows(report)) console.log(`${k}: ${v}`)
  for (const [why, n] of Object.entries(report.figures.stepErrors)) console.log(`step runs ${why} × ${n}`)
  for (const u of report.unexpected) console.log(`not caused by the chaos: ${u.who}: ${u.detail.split('\n')[0]}`)
  for (const [id, lines] of Object.entries(report.evidence)) console.log(`evidence for step run ${id}:\n${lines.map((l) => l.slice(0, 800)).join('\n')}`)
  const shown = report.violations.slice(0, 40).map((v) => `${v.invariant}: ${v.detail}`)
  assert.deepEqual(shown, [], `seed ${seed}: ${report.violations.length} invariant violations`)
  // The chaos did happen: faults of several kinds while work ran.
  assert.ok(report.events.length >= 8, `only ${report.events.length} faults injected`)
  assert.ok(report.figures.stepRuns > 0 && report.figures.fired > 0 && report.figures.notifications > 0, JSON.stringify(report.figures))
})
