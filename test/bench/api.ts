// List endpoints under a steady load: `GET /api/v1/runs` and `GET /api/v1/targets` at a fixed rate
// (default 100 requests/s) against a controller process whose Postgres holds 100k runs and 100k
// targets, with the query variants the web console sends (first page, filters, later pages).
// autocannon drives the load in this process; the controller runs in its own.
// `npm run bench -- api [--record] [--rows N] [--rate R] [--seconds S] [--connections C] [--only LABEL-PART]`
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { sql } from 'drizzle-orm'
import type { Db } from '../../controller/src/db/client.ts'
import { rowsOf } from '../../controller/src/db/migrate.ts'
import { encodeCursor } from '../../controller/src/http/pagination.ts'
import type { ControllerProcess } from '../harness/controller-process.ts'
import { testBackend } from '../harness/db.ts'
import { RunsApi } from '../harness/runs.ts'
import { apiToken, HttpsApi, load, startCluster } from './api-client.ts'
import { record, table } from './report.ts'

/** The part of autocannon's JS API used here (the package ships no types). */
interface Histogram {
  p50: number
  p99: number
  max: number
  total: number
}
interface AutocannonResult {
  latency: Histogram
  requests: Histogram
  duration: number
  errors: number
  timeouts: number
  non2xx: number
  statusCodeStats: Record<string, { count: number }>
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon

/** A process's CPU time (user + system) in ms, from /proc (USER_HZ = 100). */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

const JOBS = 20
const STATUSES = ['succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded', 'failed', 'cancelled', 'timed_out'] // one run in ten failed
const SEED_BATCH = 20_000

/** `rows` runs over JOBS jobs, one every 20 s back from now (about 23 days for 100k), 10 % failed, a third scheduled. */
export async function seedRuns(db: Db, jobIds: string[], rows: number): Promise<void> {
  const jobs = `{${jobIds.join(',')}}`
  const statuses = `{${STATUSES.join(',')}}`
  for (let from = 1; from <= rows; from += SEED_BATCH) {
    const to = Math.min(rows, from + SEED_BATCH - 1)
    // created_at in whole milliseconds, as the controller's clock writes it.
    await db.execute(sql`
      insert into run (id, job_id, job_version, job_name, status, parameters, selector, trigger, requested_by_name, created_at, started_at, finished_at, target_count)
      select gen_random_uuid(), (${jobs}::uuid[])[1 + g % ${JOBS}], 1, 'bench job ' || (1 + g % ${JOBS}), (${statuses}::text[])[1 + g % 10],
        jsonb_build_object('service', 'svc-' || g % 7, 'restart', g % 2 = 0), 'env=prod', case when g % 3 = 0 then 'schedule' else 'manual' end,
        case when g % 3 = 0 then null else 'operator-' || g % 5 end, c.at, c.at + interval '1 second', c.at + interval '1 second' + (g % 120) * interval '1 second', 1 + g % 50
      from generate_series(${from}::int, ${to}::int) g, lateral (select date_trunc('milliseconds', now() - g * interval '20 seconds') as at) c`)
  }
}

/** `rows` targets: half SSH, half agent; four roles, three environments, a few OS types; 10 static and 3 selector groups. */
export async function seedTargets(db: Db, rows: number): Promise<void> {
  for (let from = 1; from <= rows; from += SEED_BATCH) {
    const to = Math.min(rows, from + SEED_BATCH - 1)
    await db.execute(sql`
      insert into target (name, address, os_type, tags, connection, facts, last_seen_at)
      select r.role || '-' || lpad(g::text, 6, '0') || '.example.net', '10.' || (g / 65536) || '.' || (g / 256 % 256) || '.' || (g % 256),
        (array['linux', 'linux', 'linux', 'windows', 'network'])[1 + g % 5],
        jsonb_build_object('env', (array['prod', 'staging', 'dev'])[1 + g % 3], 'role', r.role, 'dc', 'dc' || g % 4),
        case when g % 2 = 0 then jsonb_build_object('type', 'ssh', 'port', 22, 'credential_id', null, 'host_key_policy', 'tofu', 'jump', '[]'::jsonb)
             else jsonb_build_object('type', 'agent', 'agent_id', null) end,
        jsonb_build_object('os', 'Debian GNU/Linux 12', 'kernel', '6.1.0-' || g % 30, 'cpus', 2 << g % 4, 'memory_mb', 4096 << g % 3),
        case when g % 2 = 1 then now() - (g % 300) * interval '1 second' end
      from generate_series(${from}::int, ${to}::int) g, lateral (select (array['web', 'db', 'app', 'cache'])[1 + g % 4] as role) r`)
  }
  await db.execute(sql`insert into target_group (name, selector) select 'rack-' || i, null from generate_series(1, 10) i`)
  await db.execute(sql`insert into target_group (name, selector) values ('prod databases', 'env=prod,role=db'), ('dc1', 'dc=dc1'), ('windows', 'os=windows')`)
  await db.execute(sql`
    insert into target_group_member (group_id, target_id)
    select g.id, t.id from target_group g join lateral (select id from target order by id offset (substr(g.name, 6)::int - 1) * 1000 limit 1000) t on true
    where g.name like 'rack-%'`)
  await db.execute(sql`analyze run; analyze target; analyze target_group_member`)
}

/** Cursors as the controller issues them, for the page that starts at `offset` (a user paging deep, or following a link). */
async function cursorsAt(db: Db, offset: number): Promise<{ run: string; target: string }> {
  const [r] = rowsOf<{ created_at: Date | string; id: string }>(await db.execute(sql`select created_at, id from run order by created_at desc, id desc offset ${offset} limit 1`))
  const [t] = rowsOf<{ n: string }>(await db.execute(sql`select lower(name) as n from target order by lower(name) offset ${offset} limit 1`))
  return { run: encodeCursor([new Date(r!.created_at).toISOString(), r!.id]), target: encodeCursor({ n: t!.n }) }
}

/**
 * One connection per viewer, each with a token of its own: the load is many users' (the API's
 * per-client limit, 50 req/s by default, stays on and is not what is measured).
 */
async function measure(controller: ControllerProcess, tokens: string[], path: string, opts: { rate: number; seconds: number }): Promise<AutocannonResult> {
  let next = 0
  return autocannon({
    url: `${controller.baseUrl}${path}`,
    connections: tokens.length,
    overallRate: opts.rate, // a fixed arrival rate; latencies are corrected for coordinated omission
    duration: opts.seconds,
    setupClient: (client: { setHeaders(h: Record<string, string>): void }) => client.setHeaders({ authorization: `Bearer ${tokens[next++ % tokens.length]}`, accept: 'application/json' }),
    tlsOptions: { ca: controller.ca },
    timeout: 30,
  })
}

export async function apiBench(args: string[]): Promise<void> {
  const opt = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) || fallback : fallback)
  const rows = opt('--rows', 100_000)
  const rate = opt('--rate', 100)
  const seconds = opt('--seconds', 20)
  const connections = opt('--connections', 50)
  if ((await testBackend()) !== 'postgres') {
    console.log('# Postgres not reachable: the api bench needs it; skipped')
    return
  }
  const cluster = await startCluster(1)
  const controller = cluster.controllers[0]!
  try {
    const db = cluster.t.ctx.db
    const admin = await RunsApi.as(cluster.t.ctx, 'operator')
    const jobIds: string[] = []
    for (let i = 1; i <= JOBS; i++) jobIds.push(await admin.createJob({ name: `bench job ${i}`, targets: 'env=prod', steps: [{ type: 'exec', command: 'uptime' }] }))
    const t0 = performance.now()
    await seedRuns(db, jobIds, rows)
    const runsSeededS = (performance.now() - t0) / 1000
    await seedTargets(db, rows)
    const seededS = (performance.now() - t0) / 1000
    console.log(`# seeded ${rows} runs in ${runsSeededS.toFixed(1)} s and ${rows} targets in ${(seededS - runsSeededS).toFixed(1)} s`)
    const tokens = await Promise.all(Array.from({ length: connections }, () => apiToken(cluster.t.ctx, 'viewer')))
    const api = new HttpsApi(controller, tokens[0]!)
    const deep = await cursorsAt(db, Math.floor(rows / 2))
    // A real `next` link: the fifth page, following the controller's own cursors.
    let page = await api.expect<{ next: string }>(200, 'GET', '/api/v1/runs?limit=50')
    for (let i = 0; i < 3; i++) page = await api.expect(200, 'GET', `/api/v1/runs?limit=50&cursor=${page.next}`)
    const since = new Date(Date.now() - 7 * 86_400_000).toISOString()
    const variants: [string, string][] = [
      ['runs: first page', '/api/v1/runs?limit=50'],
      ['runs: status=failed', '/api/v1/runs?limit=50&status=failed'],
      ['runs: one job, last 7 days', `/api/v1/runs?limit=50&job_id=${jobIds[3]}&since=${encodeURIComponent(since)}`],
      ['runs: 5th page (next cursor)', `/api/v1/runs?limit=50&cursor=${page.next}`],
      [`runs: page at row ${rows / 2} (cursor)`, `/api/v1/runs?limit=50&cursor=${deep.run}`],
      ['targets: first page (UI: 500, with groups)', '/api/v1/targets?limit=500&with_groups=true'],
      ['targets: first page, 500 (no groups)', '/api/v1/targets?limit=500'],
      ['targets: first page, 50', '/api/v1/targets?limit=50'],
      ['targets: tag env=prod + role=db', '/api/v1/targets?limit=500&with_groups=true&tag=env%3Dprod&tag=role%3Ddb'],
      ['targets: search q=00421', '/api/v1/targets?limit=500&with_groups=true&q=00421'],
      [`targets: page at row ${rows / 2} (cursor)`, `/api/v1/targets?limit=500&with_groups=true&cursor=${deep.target}`],
    ]
    // `--only targets`: just the rows whose label contains it (to compare one change quickly).
    const only = args.includes('--only') ? args[args.indexOf('--only') + 1] ?? '' : ''
    const measured = variants.filter(([label]) => label.includes(only))
    for (const [, path] of measured) await api.expect(200, 'GET', path) // every variant answers before it is measured (and warms its plan)
    const results: (string | number)[][] = []
    for (const [label, path] of measured) {
      const cpuBefore = cpuMsOf(controller.proc.pid!)
      const r = await measure(controller, tokens, path, { rate, seconds })
      const cpuPerRequest = (cpuMsOf(controller.proc.pid!) - cpuBefore) / Math.max(1, r.requests.total)
      const achieved = r.requests.total / r.duration
      const bad = r.non2xx + r.errors + r.timeouts
      results.push([label, `${r.latency.p50} ms`, `${r.latency.p99} ms`, `${r.latency.max} ms`, achieved.toFixed(1), r.requests.total, bad, `${cpuPerRequest.toFixed(1)} ms`, load()])
      console.log(`# ${label}: p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, ${achieved.toFixed(1)} req/s, ${bad} errors/non-2xx ${JSON.stringify(r.statusCodeStats)}`)
      if (bad > 0) console.log(`# WARNING: ${label} had ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`)
    }
    const body = [
      table(['request', 'p50', 'p99', 'max', 'achieved req/s', 'requests', 'non-2xx + errors', 'controller CPU / request', 'load (1 min)'], results),
      '',
      `${rows} runs and ${rows} targets in Postgres (seeded in ${seededS.toFixed(0)} s); ${rate} requests/s for ${seconds} s per row over ${connections} keep-alive HTTPS connections, each a viewer with an API token of its own.`,
    ].join('\n')
    console.log(body)
    if (args.includes('--record'))
      record(
        `API: run and target lists at ${rate} req/s with ${rows / 1000}k runs and ${rows / 1000}k targets`,
        body,
        `Measured against one controller process (HTTPS; ${connections} connections, each a viewer with its own API token, so the per-client limit of 50 req/s stays on but is not hit) on Postgres on the same machine; autocannon (in the bench process) sends a fixed ${rate} requests/s per row ` +
          `(\`overallRate\`, latencies corrected for coordinated omission) for ${seconds} s, one query variant at a time; p50/p99/max are autocannon's HDR histogram of request → full response; controller CPU / request is the controller process's user + system time (/proc) over the row divided by its requests (TLS included). ` +
          `The rows are inserted with set-based \`generate_series\` SQL: runs one every 20 s back from now over ${JOBS} jobs (10 % failed, a third scheduled); targets half SSH, half agent, with env/role/dc tags, facts, ` +
          `10 static groups of 1,000 members and 3 selector groups (the UI's \`with_groups=true\` resolves them for each page). Cursors: a 5th page reached by following \`next\`, and one built at the middle row.`,
      )
  } finally {
    await cluster.stop()
  }
}
