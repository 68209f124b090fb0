// Fan-out through the job engine: one `exec` step to 1,000 and 10,000 agent targets (POST /jobs/:id/run,
// claim, render, sign, insert, send; the simulated agents answer `echo` from memory), with per-target
// latencies read back from the database rows, and the signing (and sealing) cost of one assignment.
// `npm run bench -- fanout [--record] [--sizes 1000,10000] [--rounds N] [--workers N]`
import { readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { create, toBinary } from '@bufbuild/protobuf'
import { sql } from 'drizzle-orm'
import { rowsOf } from '../../controller/src/db/migrate.ts'
import { AssignmentSchema, Shell } from '../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { generateBoxKeyPair, sealForAgent } from '../../proto/src/seal.ts'
import { generateEd25519KeyPair, signAssignment } from '../../proto/src/sign.ts'
import type { Db } from '../../controller/src/db/client.ts'
import { TestController } from '../harness/agents.ts'
import { testBackend } from '../harness/db.ts'
import { RunsApi } from '../harness/runs.ts'
import { Fleet } from '../sim/fleet.ts'
import { formatCpu, measureCpu } from './agents/cpu.ts'
import { checkpoint, listOption, numberOption, p99, seedAgentTargets } from './agents/setup.ts'
import { median, record, table } from './report.ts'

const f0 = (n: number) => n.toFixed(0)
const f1 = (n: number) => n.toFixed(1)
const sizeTag = (size: number) => `fanout-${size}`

export async function fanoutBench(args: string[]): Promise<void> {
  const sizes = listOption(args, '--sizes', [1000, 10_000])
  const rounds = numberOption(args, '--rounds', 3)
  const workers = numberOption(args, '--workers', 4)
  if ((await testBackend()) !== 'postgres') {
    console.log('# Postgres not reachable: the fanout bench needs it; skipped')
    return
  }
  const load = os.loadavg()[0]!
  const largest = Math.max(...sizes)
  const controller = await TestController.start()
  let fleet: Fleet | undefined
  const rows: (string | number)[][] = []
  try {
    const db = controller.ctx.db
    // Target i carries the tag of every size it belongs to: the job for size n selects the first n.
    const identities = await seedAgentTargets(db, largest, 'fanout-target', (i) => Object.fromEntries(sizes.filter((n) => i < n).map((n) => [sizeTag(n), 'yes'])))
    const caPem = readFileSync(path.join(controller.dataDir, 'tls', 'ca.crt'), 'utf8')
    fleet = await Fleet.start({ controller: controller.grpcAddress, caPem, identities, processes: workers, concurrency: 16 })
    const t0 = performance.now()
    await fleet.ready()
    console.log(`# ${largest.toLocaleString('en')} simulated agents connected in ${f1((performance.now() - t0) / 1000)} s`)
    const api = await RunsApi.as(controller.ctx)
    for (const size of sizes) {
      const job = await api.createJob({ name: `bench fan-out ${size}`, targets: `${sizeTag(size)}=yes`, fan_out: { max_parallel: 10_000 }, steps: [{ type: 'exec', command: 'echo fan-out' }] })
      for (let round = 1; round <= rounds; round++) {
        await checkpoint(db)
        const { result: r, cpu } = await measureCpu(fleet.pids, () => fanOutOnce(api, db, job, size))
        console.log(`# ${size} targets, round ${round}: all persisted after ${r.allMs} ms`)
        rows.push([
          size.toLocaleString('en'),
          round,
          `${f0(median(r.sent))} / ${f0(p99(r.sent))}`,
          `${f0(median(r.persisted))} / ${f0(p99(r.persisted))}`,
          r.allMs,
          formatCpu(cpu),
          f1((cpu.controller * 1000) / size),
        ])
      }
    }
  } finally {
    await fleet?.stop()
    await controller.stop()
  }
  const fanoutTable = table(
    ['targets', 'round', 'POST → assignment sent p50 / p99, ms', 'POST → step verdict persisted p50 / p99, ms', 'POST → run finished (all persisted), ms', 'CPU s: controller / Postgres / agents', 'controller CPU per target, ms'],
    rows,
  )
  console.log(fanoutTable)
  const signing = signingCost()
  const signingTable = table(
    ['per assignment', 'µs'],
    [
      ['build + serialise the Assignment (exec, script)', f1(signing.encodeUs)],
      ['Ed25519 signature (signAssignment, node:crypto)', f1(signing.signUs)],
      ['one sealed secret (sealForAgent: node:crypto X25519, then nacl secretbox)', f1(signing.sealUs)],
    ],
  )
  console.log(signingTable)
  const notes = [
    `\`npm run bench -- fanout --sizes ${sizes.join(',')} --rounds ${rounds}\`. The real controller (API, coordinator, job engine, agent gateway) in the bench process on Postgres 127.0.0.1, default settings; ` +
      `${largest.toLocaleString('en')} simulated agents (test/sim, cheap mode: real TLS connections and identities, every assignment's signature verified, \`echo\` answered from memory, no process spawned) in ${workers} worker processes, each bound to an agent target, all connected throughout. ` +
      `Each round: \`POST /api/v1/jobs/:id/run\` of a job with one \`exec\` step (\`echo fan-out\`, max_parallel 10,000) whose selector picks the first N targets, until the run is \`succeeded\`. ` +
      'Per target, from the POST: "assignment sent" is agent_assignment.sent_at (the dispatcher stamps it as it writes the frame to the live session), "step verdict persisted" is step_run.finished_at (the engine stamps it as it queues the verdict; it is written in the next batched UPDATE); ' +
      `"run finished" is run.finished_at, set by the coordinator once every step run's verdict is in the database. One clock (the controller's process). 1-minute load average ${load.toFixed(1)} when the bench started; controller, Postgres and agents share the 2 cores.`,
    `Signing: ${signing.iterations.toLocaleString('en')} iterations (sealing: a tenth of that) of building and serialising an exec Assignment as the dispatcher does, of signAssignment (Ed25519 via node:crypto) over those bytes, and of sealForAgent (a secret or mask value: a nacl.box from a fresh ephemeral key, its X25519 steps in node:crypto), each timed on its own on an idle event loop.`,
  ]
  console.log(`\n${notes.join('\n\n')}`)
  if (args.includes('--record')) record('Fan-out through the job engine: one exec step to N agents (Postgres)', [fanoutTable, signingTable].join('\n\n'), notes.join('\n\n'))
}

/** One run of the job; latencies per target from the database rows, relative to the POST. */
async function fanOutOnce(api: RunsApi, db: Db, jobId: string, size: number) {
  const t0 = Date.now()
  const runId = await api.run(jobId)
  const run = await api.waitForRun(runId, 600_000)
  if (run.status !== 'succeeded') throw new Error(`fan-out run ${runId} ended ${run.status}: ${JSON.stringify(run.step_counts)}`)
  // Milestones per target (ms since the epoch, one clock): claimed by the engine, assignment row written
  // and sent, accepted by the agent, result persisted (assignment final), step verdict.
  const steps = rowsOf<Record<Milestone, string | null> & { status: string }>(
    await db.execute(sql`
      select ${sql.raw(MILESTONES.map(([name, column]) => `(extract(epoch from ${column}) * 1000)::float8 as ${name}`).join(', '))}, s.status
      from step_run s left join agent_assignment a on a.id = s.id where s.run_id = ${runId}`),
  )
  const succeeded = steps.filter((s) => s.status === 'succeeded' && MILESTONES.every(([name]) => s[name] !== null))
  if (succeeded.length !== size) throw new Error(`only ${succeeded.length} of ${size} step runs succeeded with an assignment`)
  const since = (name: Milestone) => succeeded.map((s) => Number(s[name]) - t0)
  console.log(`#   p50 / p99 ms after the POST: ${MILESTONES.map(([name]) => `${name} ${f0(median(since(name)))} / ${f0(p99(since(name)))}`).join(', ')}`)
  return { sent: since('sent'), persisted: since('persisted'), allMs: new Date(run.finished_at).getTime() - t0 }
}

const MILESTONES = [
  ['claimed', 's.started_at'],
  ['sent', 'a.sent_at'],
  ['accepted', 'a.started_at'],
  ['answered', 'a.finished_at'],
  ['persisted', 's.finished_at'],
] as const
type Milestone = (typeof MILESTONES)[number][0]

/** Microseconds per assignment for encoding, signing and sealing one secret, each measured on its own. */
function signingCost() {
  const iterations = 5000
  const key = generateEd25519KeyPair().privateKey
  const box = generateBoxKeyPair().publicKey
  const now = Date.now()
  const assignment = (i: number) =>
    toBinary(
      AssignmentSchema,
      create(AssignmentSchema, {
        assignmentId: crypto.randomUUID(),
        agentId: crypto.randomUUID(),
        runId: crypto.randomUUID(),
        stepId: crypto.randomUUID(),
        issuedAtUnixMs: BigInt(now + i),
        notBeforeUnixMs: BigInt(now + i),
        expiresAtUnixMs: BigInt(now + i + 3_600_000),
        keyId: 'bench-key',
        action: { case: 'exec', value: { command: { case: 'script', value: { shell: Shell.SH, script: 'echo fan-out' } }, timeoutMs: 3_600_000n } },
      }),
    )
  const perOpUs = (fn: (i: number) => unknown, n = iterations) => {
    for (let i = 0; i < n / 20; i++) fn(i) // warm-up
    const start = process.hrtime.bigint()
    for (let i = 0; i < n; i++) fn(i)
    return Number(process.hrtime.bigint() - start) / 1000 / n
  }
  const bytes = assignment(0)
  return {
    iterations,
    encodeUs: perOpUs(assignment),
    signUs: perOpUs(() => signAssignment(key, 'bench-key', bytes)),
    sealUs: perOpUs(() => sealForAgent(box, 'a secret value', { assignmentId: 'bench', name: 'SECRET' }), iterations / 10),
  }
}
