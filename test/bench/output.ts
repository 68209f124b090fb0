// Step output at scale, through the job engine: one exec step on N simulated agent targets (default 100).
//  1. throughput: every agent streams K bytes as fast as acks allow; aggregate MB/s persisted, and the
//     stored bytes checked against what the agents sent;
//  2. live view: every agent sends a small chunk every I ms, each starting with its send time; an SSE
//     viewer on the agents' controller (A) and one on another controller (B, same Postgres) read the
//     run's events; latency = received by the viewer − sent by the agent (one machine, one clock).
// `npm run bench -- output [--record] [--agents N] [--bytes K] [--runs N] [--live-seconds S]
//                          [--interval-ms I] [--chunk-bytes C] [--workers N]`
import { sql } from 'drizzle-orm'
import { Agent, fetch } from 'undici'
import { rowsOf } from '../../controller/src/db/migrate.ts'
import type { Db } from '../../controller/src/db/client.ts'
import type { ControllerProcess } from '../harness/controller-process.ts'
import { testBackend } from '../harness/db.ts'
import { SseReader } from '../harness/runs.ts'
import { Fleet, seedIdentities, STAMPED_COMMAND, stampOf } from '../sim/fleet.ts'
import { apiToken, HttpsApi, load, startCluster } from './api-client.ts'
import { checkpoint, p99 } from './agents/setup.ts'
import { median, record, table } from './report.ts'

const SELECTOR = 'bench=output'
const FINAL_POLL_MS = 100

/** Targets bound to the seeded agents (set-based: one insert, one update). */
async function seedAgentTargets(db: Db, agentIds: string[]): Promise<void> {
  const ids = `{${agentIds.join(',')}}`
  await db.execute(sql`
    insert into target (name, address, os_type, tags, connection)
    select 'bench-output-' || a.n, '127.0.0.1', 'linux', '{"bench":"output"}'::jsonb, jsonb_build_object('type', 'agent', 'agent_id', a.id)
    from unnest(${ids}::uuid[]) with ordinality as a(id, n)`)
  await db.execute(sql`update agent set target_id = t.id from target t where t.tags @> '{"bench":"output"}' and (t.connection->>'agent_id')::uuid = agent.id`)
}

async function runJob(api: HttpsApi, jobId: string): Promise<{ runId: string; postedAt: number }> {
  const postedAt = Date.now()
  const { run_id: runId } = await api.expect<{ run_id: string }>(202, 'POST', `/api/v1/jobs/${jobId}/run`, {})
  return { runId, postedAt }
}

async function waitForRun(api: HttpsApi, runId: string, timeoutMs: number): Promise<{ status: string; finished_at: string; step_counts: unknown }> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const run = await api.expect(200, 'GET', `/api/v1/runs/${runId}`)
    if (!['queued', 'running'].includes(run.status)) return run
    if (Date.now() > deadline) throw new Error(`run ${runId} still ${run.status} after ${timeoutMs} ms: ${JSON.stringify(run.step_counts)}`)
    await new Promise((resolve) => setTimeout(resolve, FINAL_POLL_MS))
  }
}

/** What Postgres holds of a run's agent output, and when its first and last chunk events were written. */
async function storedOutput(db: Db, runId: string) {
  const [stored] = rowsOf<{ chunks: number; bytes: string }>(
    await db.execute(sql`select count(*)::int as chunks, coalesce(sum(octet_length(ao.data)), 0)::bigint as bytes from agent_output ao join step_run sr on sr.id = ao.assignment_id where sr.run_id = ${runId}`),
  )
  const [span] = rowsOf<{ first: Date | string; last: Date | string }>(await db.execute(sql`select min(at) as first, max(at) as last from run_event where run_id = ${runId} and kind = 'output'`))
  return { chunks: stored!.chunks, bytes: Number(stored!.bytes), firstAt: new Date(span!.first).getTime(), lastAt: new Date(span!.last).getTime() }
}

/** A viewer of a run's live events on one controller, over its HTTPS API as a browser's EventSource would be. */
async function openViewer(controller: ControllerProcess, token: string, runId: string): Promise<{ reader: SseReader; openedAt: number; close(): Promise<void> }> {
  const dispatcher = new Agent({ connect: { ca: controller.ca } })
  const res = await fetch(`${controller.baseUrl}/api/v1/runs/${runId}/events`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, dispatcher })
  if (res.status !== 200 || !res.body) throw new Error(`SSE on ${controller.baseUrl}: ${res.status} ${await res.text()}`)
  const reader = new SseReader(res.body as ReadableStream<Uint8Array>)
  return { reader, openedAt: Date.now(), close: async () => (await reader.close(), await dispatcher.close()) }
}

/** When each output event's insert began (run_event.at: the inserting transaction's clock), by event seq. */
async function insertTimes(db: Db, runId: string): Promise<Map<number, number>> {
  const rows = rowsOf<{ seq: string; at: Date | string }>(await db.execute(sql`select seq, at from run_event where run_id = ${runId} and kind = 'output'`))
  return new Map(rows.map((r) => [Number(r.seq), new Date(r.at).getTime()]))
}

/**
 * Per output event seen by a viewer: receive time − the agent's send time in the chunk (`ms`), split
 * at the moment its insert began into agent → Postgres (`toDb`) and Postgres → viewer (`fromDb`).
 */
function latencies(reader: SseReader, notBefore: number, insertedAt: Map<number, number>): { ms: number[]; toDb: number[]; fromDb: number[]; events: number; bytes: number } {
  const ms: number[] = []
  const toDb: number[] = []
  const fromDb: number[] = []
  let events = 0
  let bytes = 0
  for (const e of reader.events) {
    if (e.event !== 'output') continue
    const data = Buffer.from(e.data.data as string, 'base64')
    events++
    bytes += data.length
    const sentAt = stampOf(data)
    if (sentAt === undefined) throw new Error(`an output event without a send time: ${data.subarray(0, 40).toString()}`)
    if (sentAt < notBefore) continue // sent before the viewer was there
    ms.push(e.receivedAt - sentAt)
    const at = insertedAt.get(e.id)
    if (at !== undefined) toDb.push(at - sentAt), fromDb.push(e.receivedAt - at)
  }
  return { ms, toDb, fromDb, events, bytes }
}

export async function outputBench(args: string[]): Promise<void> {
  const opt = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) || fallback : fallback)
  const agents = opt('--agents', 100)
  const bytes = opt('--bytes', 1024 * 1024)
  const runs = opt('--runs', 3)
  const liveSeconds = opt('--live-seconds', 20)
  const intervalMs = opt('--interval-ms', 100)
  const chunkBytes = opt('--chunk-bytes', 256)
  const workers = opt('--workers', 2)
  if ((await testBackend()) !== 'postgres') {
    console.log('# Postgres not reachable: the output bench needs it (two controllers on one database); skipped')
    return
  }
  const cluster = await startCluster(2)
  const [a, b] = cluster.controllers as [ControllerProcess, ControllerProcess]
  let fleet: Fleet | undefined
  try {
    const db = cluster.t.ctx.db
    const identities = await seedIdentities(db, agents, 'bench-output-agent')
    await seedAgentTargets(db, identities.map((i) => i.id))
    fleet = await Fleet.start({ controller: `127.0.0.1:${a.grpcPort}`, caPem: a.ca, identities, processes: workers })
    const ready = await Promise.race([fleet.ready(), cluster.died])
    if (ready.ready !== agents) throw new Error(`only ${ready.ready} of ${agents} simulated agents connected: ${ready.lastProblem}`)
    const token = await apiToken(cluster.t.ctx, 'operator')
    const apiA = new HttpsApi(a, token)
    console.log(`# ${agents} simulated agents connected to controller A; controller B shares its Postgres`)

    // 1. Throughput: N steps streaming at once, as fast as the controller acks.
    const bulkJob = await apiA.expect(201, 'POST', '/api/v1/jobs', {
      name: 'bench output throughput',
      targets: SELECTOR,
      fan_out: { max_parallel: 10_000 },
      steps: [{ type: 'exec', command: `${STAMPED_COMMAND} ${bytes} 32768 0` }],
    })
    const throughput: { mbps: number; wallMbps: number; windowMs: number; wallMs: number; load: string }[] = []
    for (let i = 0; i < runs; i++) {
      const sentBefore = (await fleet.stats()).bytesSent
      const { runId, postedAt } = await runJob(apiA, bulkJob.id)
      const run = await Promise.race([waitForRun(apiA, runId, 600_000), cluster.died])
      if (run.status !== 'succeeded') throw new Error(`throughput run ${runId} ended ${run.status}: ${JSON.stringify(run.step_counts)}`)
      const sent = (await fleet.stats()).bytesSent - sentBefore
      const stored = await storedOutput(db, runId)
      if (stored.bytes !== agents * bytes || sent !== stored.bytes) throw new Error(`run ${runId}: ${stored.bytes} bytes stored, ${sent} sent, ${agents * bytes} produced`)
      const windowMs = Math.max(1, stored.lastAt - stored.firstAt)
      const wallMs = new Date(run.finished_at).getTime() - postedAt
      throughput.push({ mbps: stored.bytes / 1e6 / (windowMs / 1000), wallMbps: stored.bytes / 1e6 / (wallMs / 1000), windowMs, wallMs, load: load() })
      console.log(`# throughput ${i + 1}: ${(stored.bytes / 1e6).toFixed(1)} MB in ${stored.chunks} chunks stored = sent; ${throughput.at(-1)!.mbps.toFixed(1)} MB/s, load ${load()}`)
    }

    // 2. Live view: paced small chunks, viewers on A and on B (after a checkpoint, so the ~100 MB
    //    written above is not flushed in the middle of it).
    await checkpoint(db)
    const chunks = Math.max(1, Math.round((liveSeconds * 1000) / intervalMs))
    const liveJob = await apiA.expect(201, 'POST', '/api/v1/jobs', {
      name: 'bench output live view',
      targets: SELECTOR,
      fan_out: { max_parallel: 10_000 },
      steps: [{ type: 'exec', command: `${STAMPED_COMMAND} ${chunks * chunkBytes} ${chunkBytes} ${intervalMs}` }],
    })
    const loadBefore = load()
    const { runId } = await runJob(apiA, liveJob.id)
    const viewers = await Promise.all([openViewer(a, token, runId), openViewer(b, token, runId)])
    const run = await Promise.race([waitForRun(apiA, runId, liveSeconds * 1000 + 120_000), cluster.died])
    if (run.status !== 'succeeded') throw new Error(`live run ${runId} ended ${run.status}: ${JSON.stringify(run.step_counts)}`)
    await Promise.all(viewers.map((v) => Promise.race([v.reader.done, new Promise((resolve) => setTimeout(resolve, 30_000))])))
    const loadAfter = load()
    const notBefore = Math.max(...viewers.map((v) => v.openedAt))
    const insertedAt = await insertTimes(db, runId)
    const seen = viewers.map((v) => latencies(v.reader, notBefore, insertedAt))
    await Promise.all(viewers.map((v) => v.close()))
    const expected = agents * chunks
    for (const [i, s] of seen.entries()) if (s.events !== expected || s.bytes !== expected * chunkBytes) throw new Error(`viewer ${'AB'[i]} saw ${s.events} of ${expected} chunks (${s.bytes} bytes)`)

    const mbps = throughput.map((r) => r.mbps)
    const liveRow = (label: string, ms: number[]) => [label, `${median(ms)} ms`, `${p99(ms)} ms`, `${Math.max(...ms)} ms`, ms.length]
    const body = [
      table(
        ['throughput run', 'stored (= sent)', 'first → last chunk persisted', 'MB/s persisted', 'POST → run finished', 'MB/s incl. dispatch', 'load (1 min)'],
        throughput.map((r, i) => [i + 1, `${((agents * bytes) / 1e6).toFixed(1)} MB`, `${r.windowMs} ms`, r.mbps.toFixed(1), `${r.wallMs} ms`, r.wallMbps.toFixed(1), r.load]),
      ),
      '',
      `Median ${median(mbps).toFixed(1)} MB/s persisted from ${agents} concurrent steps.`,
      '',
      table(
        ['live view: chunk sent → visible on SSE', 'p50', 'p99', 'max', 'chunks'],
        [
          liveRow('viewer on the agents’ controller (A)', seen[0]!.ms),
          liveRow('viewer on another controller (B)', seen[1]!.ms),
          liveRow('… of which: agent send → output insert begins (on A)', seen[0]!.toDb),
          liveRow('… of which: insert begins → visible on A', seen[0]!.fromDb),
          liveRow('… of which: insert begins → visible on B', seen[1]!.fromDb),
        ],
      ),
      '',
      `Live phase: ${agents} steps × ${chunks} chunks of ${chunkBytes} B every ${intervalMs} ms (${Math.round((agents * 1000) / intervalMs)} chunks/s in all); every chunk reached both viewers. Load ${loadBefore} → ${loadAfter}.`,
    ].join('\n')
    console.log(body)
    if (args.includes('--record'))
      record(
        `Output: ${agents} concurrent steps persisted, and live view on two controllers`,
        body,
        `Measured with two controller processes on one Postgres (same machine) and ${agents} simulated agents (test/sim, cheap mode, ${workers} worker processes) connected to controller A. ` +
          `A job with one \`exec\` step on the ${agents} agent targets runs through the engine. Throughput: each agent sends ${bytes} printable bytes in 32 KiB chunks as fast as the controller's acks allow (at most 64 unacked); ` +
          `MB/s = bytes stored in \`agent_output\` for the run / time between the first and last output \`run_event\` (and / POST → run finished); the stored byte count is checked equal to what the agents sent. ` +
          `Live view: each chunk starts with the agent's \`Date.now()\`; an SSE client in the bench process reads \`GET /api/v1/runs/:id/events\` over HTTPS from A and another from B, and the latency is its receive time minus that stamp (chunks sent before both viewers were connected are left out); ` +
          `it is split at \`run_event.at\` (the clock of the transaction that inserted the chunk) into agent → Postgres and Postgres → viewer (insert, commit, NOTIFY, the viewer's read and the SSE write). ` +
          `The bench process, the agent workers, both controllers and Postgres share the machine's cores.`,
      )
  } finally {
    await fleet?.stop()
    await cluster.stop()
  }
}
