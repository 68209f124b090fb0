// Jobs and runs: time from `POST /jobs/:id/run` to the first output byte stored (p50/p99, one agent
// target), and the wall time of a 1,000-target exec job (POST → run finished, every result stored).
// Simulated agents (real connections, real signature checks; `echo` answered from memory) in worker processes.
// `npm run bench -- runs [--record] [--targets N] [--latency-runs N] [--workers N]`
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { sql } from 'drizzle-orm'
import { rowsOf } from '../../controller/src/db/migrate.ts'
import { TestController } from '../harness/agents.ts'
import { testBackend } from '../harness/db.ts'
import { RunsApi } from '../harness/runs.ts'
import { Fleet } from '../sim/fleet.ts'
import { numberOption, p99, seedAgentTargets } from './agents/setup.ts'
import { median, record, table } from './report.ts'

export async function runsBench(args: string[]): Promise<void> {
  const count = numberOption(args, '--targets', 1000)
  const latencyRuns = numberOption(args, '--latency-runs', 50)
  const workers = numberOption(args, '--workers', 4)
  if ((await testBackend()) !== 'postgres') {
    console.log('# Postgres not reachable: the runs bench needs it; skipped')
    return
  }
  const controller = await TestController.start()
  let fleet: Fleet | undefined
  try {
    const db = controller.ctx.db
    const identities = await seedAgentTargets(db, count, 'bench-target', () => ({ bench: 'runs' }))
    const caPem = readFileSync(path.join(controller.dataDir, 'tls', 'ca.crt'), 'utf8')
    fleet = await Fleet.start({ controller: controller.grpcAddress, caPem, identities, processes: workers, concurrency: 16 })
    await fleet.ready()
    console.log(`# ${count} simulated agents connected`)
    const api = await RunsApi.as(controller.ctx)

    // 1. One target: POST → first output chunk stored (the run_event of the insert carries its commit-time clock).
    const one = await api.createJob({ name: 'bench first byte', targets: 'name:bench-target-0', steps: [{ type: 'exec', command: 'echo first byte' }] })
    const latencies: number[] = []
    for (let i = 0; i < latencyRuns; i++) {
      const t0 = Date.now()
      const runId = await api.run(one)
      const finished = await api.waitForRun(runId, 30_000)
      if (finished.status !== 'succeeded') throw new Error(`latency run ${runId} ended ${finished.status}`)
      const [first] = rowsOf<{ at: Date | string }>(await db.execute(sql`select at from run_event where run_id = ${runId} and kind = 'output' order by seq limit 1`))
      latencies.push(new Date(first!.at).getTime() - t0)
    }

    // 2. Every target: POST → run finished with every result stored.
    const all = await api.createJob({ name: 'bench fan-out', targets: 'bench=runs', fan_out: { max_parallel: 10_000 }, steps: [{ type: 'exec', command: 'echo fan-out' }] })
    const walls: number[] = []
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now()
      const runId = await api.run(all)
      const run = await api.waitForRun(runId, 300_000)
      if (run.status !== 'succeeded') throw new Error(`fan-out run ${runId} ended ${run.status}: ${JSON.stringify(run.step_counts)}`)
      const [done] = rowsOf<{ last: Date | string; n: number }>(await db.execute(sql`select max(finished_at) as last, count(*)::int as n from step_run where run_id = ${runId} and status = 'succeeded'`))
      if (Number(done!.n) !== count) throw new Error(`only ${done!.n} of ${count} step runs succeeded`)
      walls.push(new Date(run.finished_at).getTime() - t0)
      console.log(`# fan-out ${i + 1}: ${walls.at(-1)} ms`)
    }
    const body = table(
      ['measure', 'p50 / median', 'p99 / max', 'samples'],
      [
        ['POST /run → first output byte stored (1 agent target)', `${median(latencies)} ms`, `${p99(latencies)} ms`, latencies.length],
        [`${count}-target exec job: POST → run finished, all results stored`, `${median(walls)} ms`, `${Math.max(...walls)} ms`, walls.length],
      ],
    )
    console.log(body)
    if (args.includes('--record')) record('Runs: first output byte and fan-out wall time', body, `Simulated agents in ${workers} worker processes; the controller in the bench process; Postgres on the same machine.`)
  } finally {
    await fleet?.stop()
    await controller.stop()
  }
}
