// The controller-side helpers of the agents bench: dispatching to many agents at once,
// memory and a Postgres checkpoint between measurements.
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import v8 from 'node:v8'
import vm from 'node:vm'
import { sql } from 'drizzle-orm'
import { uuidArray, type Db } from '../../../controller/src/db/client.ts'
import { rowsOf } from '../../../controller/src/db/migrate.ts'
import { target } from '../../../controller/src/targets/targets.sql.ts'
import type { TestController } from '../../harness/agents.ts'
import { seedIdentities } from '../../sim/identities.ts'
import type { SimIdentity } from '../../sim/protocol.ts'

let gc: (() => void) | undefined

/** Resident set and JS heap of this process (the controller's) after a full GC. */
export function memory(): { rssKiB: number; heapKiB: number } {
  if (!gc) {
    v8.setFlagsFromString('--expose-gc')
    gc = vm.runInNewContext('gc') as () => void
  }
  gc()
  gc()
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0)
  return { rssKiB, heapKiB: process.memoryUsage().heapUsed / 1024 }
}

/**
 * memory() once it has stopped moving: V8 and malloc hand freed pages back to the system in the
 * background, tens of seconds after the garbage is gone. Three readings 5 s apart within 2 MiB.
 */
export async function settledMemory(): Promise<{ rssKiB: number; heapKiB: number; waitedS: number }> {
  const t0 = performance.now()
  const readings: ReturnType<typeof memory>[] = []
  for (;;) {
    await sleep(5000)
    readings.push(memory())
    const last = readings.slice(-3).map((r) => r.rssKiB)
    const waitedS = (performance.now() - t0) / 1000
    if ((last.length === 3 && Math.max(...last) - Math.min(...last) <= 2048) || waitedS > 180) return { ...readings.at(-1)!, waitedS }
  }
}

export function rssKiBOf(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0)
}

export function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil(0.99 * sorted.length) - 1)]!
}

/**
 * `count` agents (rows inserted directly, as the simulator's seedIdentities does), each bound to an agent
 * target `${prefix}-i` whose tags are `tags(i)`: what job runs select and fan out over.
 */
export async function seedAgentTargets(db: Db, count: number, prefix: string, tags: (index: number) => Record<string, string>): Promise<SimIdentity[]> {
  const identities = await seedIdentities(db, count)
  for (let start = 0; start < identities.length; start += 1000) {
    const slice = identities.slice(start, start + 1000)
    const rows = await db
      .insert(target)
      .values(slice.map((a, i) => ({ name: `${prefix}-${start + i}`, address: '127.0.0.1', osType: 'linux' as const, tags: tags(start + i), connection: { type: 'agent' as const, agent_id: a.id } })))
      .returning({ id: target.id })
    // One statement per thousand: each agent row points back at its target, as enrolment with a target leaves it.
    await db.execute(sql`update agent a set target_id = v.target_id
      from unnest(${uuidArray(slice.map((a) => a.id))}, ${uuidArray(rows.map((r) => r.id))}) as v(agent_id, target_id) where a.id = v.agent_id`)
  }
  return identities
}

/** Flushes what earlier runs left in Postgres's buffers, so their checkpoint does not land inside a measurement. */
export async function checkpoint(db: Db): Promise<void> {
  await db.execute(sql`checkpoint`).catch(() => {}) // needs superuser or pg_checkpoint; skipped otherwise
}

const exec = (argv: string[]) => ({ case: 'exec', value: { command: { case: 'argv', value: { argv } } } }) as const

/** Dispatches one action to each agent at once; per assignment: dispatch call → final outcome persisted. */
export async function dispatchAll(controller: TestController, agentIds: string[], argv: string[]) {
  const t0 = performance.now()
  const runs = await Promise.all(
    agentIds.map(async (agentId) => {
      const start = performance.now()
      const { assignmentId, done } = await controller.dispatcher.dispatch(agentId, exec(argv))
      const outcome = await done
      return { assignmentId, status: outcome.status, ms: performance.now() - start }
    }),
  )
  const wallMs = performance.now() - t0
  const failed = runs.filter((r) => r.status !== 'succeeded')
  if (failed.length) throw new Error(`${failed.length} of ${runs.length} assignments did not succeed, e.g. ${JSON.stringify(failed[0])}`)
  const ids = `{${runs.map((r) => r.assignmentId).join(',')}}`
  const [stored] = rowsOf<{ bytes: string; chunks: string }>(
    await controller.ctx.db.execute(sql`select coalesce(sum(output_bytes), 0) as bytes, coalesce(sum(acked_seq), 0) as chunks from agent_assignment where id = any(${ids}::uuid[])`),
  )
  return { wallMs, latencies: runs.map((r) => r.ms), storedBytes: Number(stored!.bytes), ackedChunks: Number(stored!.chunks) }
}

/** `--name N` from a bench's arguments. */
export function numberOption(args: string[], name: string, fallback: number): number {
  return args.includes(name) ? Number(args[args.indexOf(name) + 1]) || fallback : fallback
}

/** `--name 1000,5000,10000` from a bench's arguments. */
export function listOption(args: string[], name: string, fallback: number[]): number[] {
  if (!args.includes(name)) return fallback
  const list = (args[args.indexOf(name) + 1] ?? '').split(',').map(Number).filter((n) => n > 0)
  return list.length ? list : fallback
}
