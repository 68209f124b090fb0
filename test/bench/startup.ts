// Cold start (empty data dir / empty database) to /readyz 200, warm restart, and idle RSS,
// for the embedded PGlite and for Postgres. `npm run bench -- startup [--record] [--runs N]`
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { createPostgresDatabase, dropPostgresDatabase, testBackend } from '../harness/db.ts'
import { CONTROLLER_BIN, REPO_ROOT, tempDataDir } from '../harness/controller-process.ts'
import { httpsRequest } from '../harness/https.ts'
import { median, record, table } from './report.ts'

const IDLE_SETTLE_MS = 5000

interface Sample {
  readyMs: number
  rssMiB: number
}

function freePortPair(): [number, number] {
  const base = 20000 + Math.floor(Math.random() * 20000)
  return [base, base + 1]
}

/** Starts the controller, polls /readyz until 200, waits for it to settle, reads its RSS, stops it. */
async function startOnce(dataDir: string, env: Record<string, string>): Promise<Sample> {
  const [http, grpc] = freePortPair()
  const t0 = performance.now()
  const proc = spawn(process.execPath, [CONTROLLER_BIN, 'controller'], {
    cwd: REPO_ROOT,
    env: { ...process.env, OPSC_DATA_DIR: dataDir, OPSC_HTTP_PORT: String(http), OPSC_GRPC_PORT: String(grpc), OPSC_BIND: '127.0.0.1', OPSC_LOG_LEVEL: 'warn', ...env },
    stdio: 'ignore',
  })
  try {
    let readyMs = 0
    while (!readyMs) {
      if (proc.exitCode !== null) throw new Error(`controller exited with ${proc.exitCode}`)
      if (performance.now() - t0 > 120_000) throw new Error('controller not ready within 120 s')
      try {
        const ca = readFileSync(path.join(dataDir, 'tls', 'ca.crt'), 'utf8')
        const res = await httpsRequest(`https://127.0.0.1:${http}/readyz`, { ca, timeoutMs: 2000 })
        if (res.status === 200) readyMs = performance.now() - t0
      } catch {
        /* not listening yet */
      }
      if (!readyMs) await new Promise((r) => setTimeout(r, 25))
    }
    await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS))
    const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8')
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
    return { readyMs, rssMiB: rssKiB / 1024 }
  } finally {
    proc.kill('SIGTERM')
    await new Promise((r) => proc.once('exit', r))
  }
}

async function measure(backend: 'pglite' | 'postgres', runs: number) {
  const cold: Sample[] = []
  const warm: Sample[] = []
  for (let i = 0; i < runs; i++) {
    const dataDir = tempDataDir()
    const url = backend === 'postgres' ? await createPostgresDatabase({ migrated: false }) : undefined
    const env: Record<string, string> = url ? { DATABASE_URL: url } : {}
    try {
      cold.push(await startOnce(dataDir, env))
      warm.push(await startOnce(dataDir, env))
    } finally {
      if (url) await dropPostgresDatabase(url)
    }
  }
  const f = (n: number) => n.toFixed(0)
  return [
    [backend, 'cold (empty data dir / database)', f(median(cold.map((s) => s.readyMs))), f(Math.max(...cold.map((s) => s.readyMs))), f(median(cold.map((s) => s.rssMiB)))],
    [backend, 'warm (restart on existing data)', f(median(warm.map((s) => s.readyMs))), f(Math.max(...warm.map((s) => s.readyMs))), f(median(warm.map((s) => s.rssMiB)))],
  ]
}

export async function startupBench(args: string[]): Promise<void> {
  const runs = Number(args[args.indexOf('--runs') + 1]) || 3
  const rows = [...(await measure('pglite', runs))]
  if ((await testBackend()) === 'postgres') rows.push(...(await measure('postgres', runs)))
  else console.log('# Postgres not reachable: measuring PGlite only')
  const out = table(['backend', 'start', `to /readyz 200, median ms (${runs} runs)`, 'max ms', `idle RSS MiB (${IDLE_SETTLE_MS / 1000} s after ready)`], rows)
  console.log(out)
  if (args.includes('--record')) {
    record('Controller start-up', out, 'Started from the TypeScript sources (`npm start`, tsx); time runs from spawning the process to the first 200 from `/readyz`.')
  }
}
