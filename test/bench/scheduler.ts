// Scheduler: (1) the leader's tick cost with 10,000 enabled schedules — idle, all due at once, and
// each firing once a minute (≈167 fires a second) — with the fire lag; (2) the HA run: 3 controller
// processes on one Postgres, N schedules every 5 s while the leader is killed twice, checked for
// exactly once and printed with fire lag p50/p99 and take-over times.
// `npm run bench -- scheduler [--record] [--only tick|ha] [--tick-schedules N] [--schedules N] [--seconds N]`
import { randomBytes } from 'node:crypto'
import { inArray, sql } from 'drizzle-orm'
import type { AppContext } from '../../controller/src/context.ts'
import { rowsOf } from '../../controller/src/db/migrate.ts'
import { nextFireTimes } from '../../controller/src/scheduler/cron.ts'
import { schedule, scheduleFire, schedulerState } from '../../controller/src/scheduler/scheduler.sql.ts'
import { tickScheduler, type TickOptions } from '../../controller/src/scheduler/tick.ts'
import { waitUntil } from '../harness/agents.ts'
import { createTestContext, type TestContext } from '../harness/context.ts'
import { startControllerProcess, tempDataDir, type ControllerProcess } from '../harness/controller-process.ts'
import { testBackend } from '../harness/db.ts'
import { RunsApi } from '../harness/runs.ts'
import { p99 } from './agents/setup.ts'
import { median, record, table } from './report.ts'

const TICK: TickOptions = { node: 'bench', graceMs: 5_000, batchSize: 500, parallel: 4 }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const ms = (v: number) => `${Math.round(v)} ms`

async function noopJob(ctx: AppContext, name: string): Promise<string> {
  const api = await RunsApi.as(ctx)
  return api.createJob({ name, steps: [{ id: 'w', type: 'wait', seconds: 0.001 }] })
}

async function insertSchedules(ctx: AppContext, count: number, row: (i: number) => Partial<typeof schedule.$inferInsert> & { cron: string; nextFireAt: Date }, jobId: string): Promise<string[]> {
  const ids: string[] = []
  for (let start = 0; start < count; start += 1000) {
    const values = Array.from({ length: Math.min(1000, count - start) }, (_, k) => ({ name: `bench-${start + k}`, jobId, maxConcurrentRuns: 100, ...row(start + k) }))
    ids.push(...(await ctx.db.insert(schedule).values(values).returning({ id: schedule.id })).map((r) => r.id))
  }
  return ids
}

async function lags(ctx: AppContext, ids: string[]): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < ids.length; i += 1000) {
    const rows = await ctx.db.select({ lag: scheduleFire.lagMs }).from(scheduleFire).where(inArray(scheduleFire.scheduleId, ids.slice(i, i + 1000)))
    for (const r of rows) if (r.lag !== null) out.push(r.lag)
  }
  return out
}

async function tickCost(count: number): Promise<string[][]> {
  const t: TestContext = await createTestContext()
  try {
    const { ctx } = t
    const jobId = await noopJob(ctx, 'bench tick')
    const later = new Date(Date.now() + 3_600_000)
    const ids = await insertSchedules(ctx, count, () => ({ cron: '0 0 0 1 1 *', nextFireAt: later }), jobId)
    await ctx.db.execute(sql`analyze`)
    const rows: string[][] = []

    const idle: number[] = []
    for (let i = 0; i < 10; i++) idle.push((await tickScheduler(ctx, TICK)).durationMs)
    rows.push([`idle: ${count} enabled, none due`, ms(median(idle)), ms(p99(idle)), '–', '–'])

    await ctx.db.update(schedule).set({ nextFireAt: new Date() })
    const burst = await tickScheduler(ctx, TICK)
    const burstLags = await lags(ctx, ids)
    rows.push([`burst: all ${count} due at once (${burst.fired} fired, ${Math.round(burst.fired / (burst.durationMs / 1000))} fires/s)`, ms(burst.durationMs), '–', ms(median(burstLags)), ms(p99(burstLags))])

    // Every schedule once a minute at its own second: ≈count/60 fires each tick, for 40 s.
    // No engine here: runs end between ticks as if it ran them (active runs stay few, as in production).
    const endRuns = () => ctx.db.execute(sql`update run set status = 'succeeded', finished_at = now() where status in ('queued', 'running')`)
    await endRuns()
    await ctx.db.delete(scheduleFire)
    await ctx.db.execute(sql`update schedule s set cron = ((n.i % 60)::text || ' * * * * *'), next_fire_at = null
      from (select id, row_number() over (order by id) as i from schedule) n where n.id = s.id`)
    const all = rowsOf<{ id: string; cron: string }>(await ctx.db.execute(sql`select id, cron from schedule`))
    // The first occurrences after the set-up, so the steady state starts without a backlog.
    const from = new Date(Date.now() + 10_000)
    for (let i = 0; i < all.length; i += 500) {
      const slice = all.slice(i, i + 500)
      const values = slice.map((s) => sql`(${s.id}::uuid, ${nextFireTimes({ cron: s.cron, timezone: 'UTC' }, from, 1)[0]!.toISOString()}::timestamptz)`)
      await ctx.db.execute(sql`update schedule s set next_fire_at = v.at from (values ${sql.join(values, sql`, `)}) as v(id, at) where s.id = v.id`)
    }
    await ctx.db.execute(sql`analyze`)
    await sleep(Math.max(0, from.getTime() - Date.now()))
    const steady: number[] = []
    let fired = 0
    const began = Date.now()
    const end = began + 40_000
    while (Date.now() < end) {
      const t0 = Date.now()
      const tick = await tickScheduler(ctx, TICK)
      steady.push(tick.durationMs)
      fired += tick.fired
      await endRuns()
      await sleep(Math.max(0, 1000 - (Date.now() - t0)))
    }
    const seconds = (Date.now() - began) / 1000
    const steadyLags = await lags(ctx, ids)
    // Demand is count/60 fires a second; capacity is what the ticks fired per second of ticking.
    const capacity = Math.round(fired / (steady.reduce((a, b) => a + b, 0) / 1000))
    rows.push([
      `steady: ${count} firing once a minute, ${Math.round(count / 60)}/s due (${steadyLags.length} fires in ${Math.round(seconds)} s; capacity ≈ ${capacity} fires/s)`,
      ms(median(steady)),
      ms(p99(steady)),
      ms(median(steadyLags)),
      ms(p99(steadyLags)),
    ])
    return rows
  } finally {
    await t.close()
  }
}

async function haRun(count: number, seconds: number): Promise<{ rows: string[][]; notes: string }> {
  const masterKey = randomBytes(32)
  const t = await createTestContext({ masterKey })
  const controllers: ControllerProcess[] = []
  try {
    const env = { DATABASE_URL: t.testDb.url!, OPSC_MASTER_KEY: masterKey.toString('base64'), OPSC_WORK_LEASE_MS: '5000' }
    for (let i = 0; i < 3; i++) controllers.push(await startControllerProcess({ dataDir: tempDataDir(), env }))
    const jobId = await noopJob(t.ctx, 'bench ha')
    const cron = '*/5 * * * * *'
    const first = nextFireTimes({ cron, timezone: 'UTC' }, new Date(Date.now() + 2000), 1)[0]!
    const ids = await insertSchedules(t.ctx, count, (i) => ({ cron, nextFireAt: first, misfirePolicy: i % 2 ? 'run_all' : 'run_once' }), jobId)
    const leaderNode = async () => (await t.ctx.db.select().from(schedulerState))[0]!.leaderNode
    const live = (node: string | null) => controllers.find((c) => c.proc.exitCode === null && c.proc.signalCode === null && c.logs.some((l) => l.msg === 'scheduler.leading' && l.node === node))
    const takeovers: number[] = []
    const started = Date.now()
    for (const at of [seconds / 3, (2 * seconds) / 3]) {
      await sleep(Math.max(0, started + at * 1000 - Date.now()))
      const dead = await leaderNode()
      await live(dead)!.stop('SIGKILL')
      const t0 = Date.now()
      await waitUntil(async () => {
        const node = await leaderNode()
        return node !== dead && live(node) !== undefined
      }, 60_000, 'a new leader')
      takeovers.push(Date.now() - t0)
    }
    await sleep(Math.max(0, started + seconds * 1000 - Date.now()))
    await t.ctx.db.update(schedule).set({ enabled: false }).where(sql`true`)
    await sleep(3000)
    const fires = await t.ctx.db.select().from(scheduleFire)
    const fired = fires.filter((f) => f.status === 'fired')
    const [{ n: runCount }] = rowsOf<{ n: number }>(await t.ctx.db.execute(sql`select count(*)::int as n from run where trigger = 'schedule'`)) as [{ n: number }]
    const keys = new Set(fires.map((f) => `${f.scheduleId}@${f.fireAt.getTime()}`))
    // Gaps: per schedule, every occurrence from the first to its last recorded one (disabling at the end cuts some a step short).
    const all = [first.getTime(), ...nextFireTimes({ cron, timezone: 'UTC' }, first, 10_000).map((d) => d.getTime())]
    let gaps = 0
    let expected = 0
    for (const id of ids) {
      const mine = new Set(fires.filter((f) => f.scheduleId === id).map((f) => f.fireAt.getTime()))
      const lastOfMine = Math.max(...mine)
      const wanted = all.filter((at) => at <= lastOfMine)
      expected += wanted.length
      gaps += wanted.filter((at) => !mine.has(at)).length
    }
    const missed = fires.filter((f) => f.status === 'missed').length
    const lagValues = fired.map((f) => f.lagMs).filter((v): v is number => v !== null)
    const rows = [
      ['occurrences expected (first → last per schedule)', String(expected)],
      ['recorded (distinct keys) / gaps', `${fires.length} (${keys.size}) / ${gaps}`],
      ['fired / missed / other', `${fired.length} / ${missed} / ${fires.length - fired.length - missed}`],
      ['scheduled runs created', String(runCount)],
      ['fire lag p50 / p99 / max', `${ms(median(lagValues))} / ${ms(p99(lagValues))} / ${ms(Math.max(...lagValues))}`],
      ['leader take-over after SIGKILL', takeovers.map(ms).join(', ')],
    ]
    const ok = gaps === 0 && keys.size === fires.length && runCount === fired.length
    return { rows, notes: `${count} schedules every 5 s for ${seconds} s on 3 controllers, leader killed twice: ${ok ? 'every occurrence recorded once, one run per fired occurrence' : 'CHECK FAILED'}.` }
  } finally {
    for (const c of controllers) await c.stop('SIGKILL')
    await t.close()
  }
}

export async function schedulerBench(args: string[]): Promise<void> {
  const opt = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) || fallback : fallback)
  if ((await testBackend()) !== 'postgres') {
    console.log('# Postgres not reachable: the scheduler bench needs it; skipped')
    return
  }
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined
  const tick = only === 'ha' ? '' : table(['leader tick', 'tick p50', 'tick p99', 'fire lag p50', 'fire lag p99'], await tickCost(opt('--tick-schedules', 10_000)))
  console.log(tick)
  const ha = only === 'tick' ? undefined : await haRun(opt('--schedules', 200), opt('--seconds', 120))
  const haTable = ha ? table(['HA run', ''], ha.rows) : ''
  if (ha) console.log(`${haTable}\n${ha.notes}`)
  if (args.includes('--record')) record('Scheduler: tick cost and exactly-once fail-over (Postgres)', [tick, haTable].filter(Boolean).join('\n\n'), ha?.notes ?? '')
}
