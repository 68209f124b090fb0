// Selector resolution over 100,000 targets on Postgres: p50/p99 per selector and operation,
// plus the plan of the headline query. `npm run bench -- selectors [--record] [--runs N] [--targets N]`
import { sql, type SQL } from 'drizzle-orm'
import { openDatabase } from '../../controller/src/db/client.ts'
import { rowsOf } from '../../controller/src/db/migrate.ts'
import type { Db } from '../../controller/src/db/client.ts'
import { countSelector, pageQuery, previewSelector, resolveSelector, selectorCondition } from '../../controller/src/selectors/compile.ts'
import { target } from '../../controller/src/targets/targets.sql.ts'
import { createPostgresDatabase, dropPostgresDatabase, testBackend } from '../harness/db.ts'
import { median, record, table } from './report.ts'

const WARMUP = 5
const HEADLINE = 'os=linux,env=prod'
const SELECTIVE = 'env=prod,role=db,dc=fra'
const ROLES = ['web', 'db', 'cache', 'api', 'queue', 'worker', 'batch']

/** Targets: os 60% linux / 30% windows / 10% other; env, role, dc independent of each other and of os; 2% disabled. */
async function seed(db: Db, count: number): Promise<void> {
  const roles = sql.raw(`(array[${ROLES.map((r) => `'${r}'`).join(',')}])`)
  await db.execute(sql`
    insert into target (name, address, os_type, enabled, tags, connection)
    select
      ${roles}[1 + g % 7] || '-' || g,
      '10.' || (g / 65536) % 256 || '.' || (g / 256) % 256 || '.' || g % 256,
      case when g % 10 < 6 then 'linux' when g % 10 < 9 then 'windows' else 'other' end,
      g % 50 <> 0,
      jsonb_build_object('env', (array['prod','stage','dev'])[1 + g % 3], 'role', ${roles}[1 + g % 7], 'dc', (array['fra','iad','sin','syd'])[1 + g % 4])
        || case when g % 5 = 0 then '{"backup":"nightly"}'::jsonb else '{}'::jsonb end,
      case
        when g % 10 < 6 and g % 2 = 0 then '{"type":"agent","agent_id":null}'
        when g % 10 < 9 and g % 4 = 1 then '{"type":"agent","agent_id":null}'
        when g % 10 < 9 and g % 10 >= 6 then '{"type":"winrm","port":5986,"https":true,"credential_id":null,"verify_tls":true}'
        else '{"type":"ssh","port":22,"credential_id":null,"host_key_policy":"tofu","jump":[]}'
      end::jsonb
    from generate_series(1, ${count}) g`)
  await db.execute(sql`insert into target_group (name, selector) values ('canary', null), ('prod-web', 'env=prod,role=web'), ('frontends', 'group:prod-web | env=prod,role=cache')`)
  // Static members: every 100th target in canary, every 500th in frontends.
  await db.execute(sql`insert into target_group_member (group_id, target_id)
    select g.id, t.id from target_group g cross join target t
    where (g.name = 'canary' and split_part(t.name, '-', 2)::int % 100 = 1)
       or (g.name = 'frontends' and split_part(t.name, '-', 2)::int % 500 = 7)`)
  await db.execute(sql`analyze target`)
  await db.execute(sql`analyze target_group_member`)
}

async function timeIt(runs: number, fn: () => Promise<number>): Promise<{ p50: number; p99: number; n: number }> {
  let n = 0
  for (let i = 0; i < WARMUP; i++) n = await fn()
  const samples: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    n = await fn()
    samples.push(performance.now() - t0)
  }
  const sorted = [...samples].sort((a, b) => a - b)
  return { p50: median(samples), p99: sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)]!, n }
}

interface PlanNode {
  'Node Type': string
  'Index Name'?: string
  'Relation Name'?: string
  Plans?: PlanNode[]
}

/** `Aggregate ← Bitmap Heap Scan on target ← BitmapAnd(Bitmap Index Scan target_tags_idx, …)`. */
function describePlan(node: PlanNode): string {
  const self = `${node['Node Type']}${node['Index Name'] ? ` ${node['Index Name']}` : node['Relation Name'] ? ` on ${node['Relation Name']}` : ''}`
  const children = node.Plans ?? []
  if (children.length === 0) return self
  if (children.length === 1) return `${self} ← ${describePlan(children[0]!)}`
  return `${self}(${children.map(describePlan).join(', ')})`
}

async function explain(db: Db, query: SQL): Promise<string> {
  const [row] = rowsOf<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(await db.execute(sql`explain (format json) ${query}`))
  return describePlan(row!['QUERY PLAN'][0].Plan)
}

export async function selectorsBench(args: string[]): Promise<void> {
  const runs = Number(args[args.indexOf('--runs') + 1]) || 50
  const count = Number(args[args.indexOf('--targets') + 1]) || 100_000
  if ((await testBackend()) !== 'postgres') {
    console.log('# Postgres not reachable: the selectors bench needs it; skipped')
    return
  }
  const url = await createPostgresDatabase({ migrated: true })
  const database = await openDatabase({ kind: 'postgres', url })
  try {
    const db = database.db
    const t0 = performance.now()
    await seed(db, count)
    console.log(`# seeded ${count.toLocaleString('en')} targets and 3 groups in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
    const f = (ms: number) => ms.toFixed(1)
    const rows: (string | number)[][] = []
    const measure = async (selector: string, operation: string, fn: () => Promise<number>) => {
      const r = await timeIt(runs, fn)
      rows.push([`\`${selector}\``, operation, r.n.toLocaleString('en'), f(r.p50), f(r.p99)])
    }
    for (const selector of [HEADLINE, SELECTIVE, 'env=prod,role!=db', 'name:web-1*', 'group:frontends']) {
      await measure(selector, 'count', () => countSelector(db, selector))
      await measure(selector, 'preview (count + first 50)', async () => (await previewSelector(db, selector, { limit: 50 })).count)
      await measure(selector, 'all ids', async () => (await resolveSelector(db, selector)).count)
    }
    const where = await selectorCondition(db, HEADLINE)
    const plans = [
      `Plans — \`${HEADLINE}\` count: ${await explain(db, sql`select count(*) from ${target} where ${where}`)}`,
      `first page: ${await explain(db, pageQuery(where, 50))}`,
      `\`${SELECTIVE}\` count: ${await explain(db, sql`select count(*) from ${target} where ${await selectorCondition(db, SELECTIVE)}`)}`,
    ].join('; ')
    const out = table(['selector', 'operation', 'targets', `p50 ms (${runs} runs)`, 'p99 ms'], rows)
    console.log(out)
    console.log(`\n${plans}`)
    if (args.includes('--record')) {
      record(
        `Selector resolution over ${count.toLocaleString('en')} targets (Postgres)`,
        out,
        `${plans}\n\nTimes are per call of the selectors module (parse, group lookup, query) against a local Postgres, after ${WARMUP} warm-up calls. ` +
          'Targets: os 60% linux / 30% windows / 10% other, env prod/stage/dev, 7 roles, 4 dcs, 2% disabled.',
      )
    }
  } finally {
    await database.close()
    await dropPostgresDatabase(url)
  }
}
