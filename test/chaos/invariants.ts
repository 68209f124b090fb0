import { existsSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { sql } from 'drizzle-orm'
import type { Db } from '../../controller/src/db/client.ts'
import { rowsOf } from '../../controller/src/db/migrate.ts'
import { FINAL_RUN_STATUSES } from '../../controller/src/runs/runs.sql.ts'
import { FINAL_STATUSES as FINAL_ASSIGNMENT_STATUSES } from '../../controller/src/agents/assignments/assignments.sql.ts'
import { nextFireTimes } from '../../controller/src/scheduler/cron.ts'
import type { ReceivedRequest } from '../harness/receivers.ts'
import { expectedOutput, expectedTick, sha256, type Workload } from './workload.ts'

/*
 * The end-of-run checks of a chaos run, read from the database, the marker files the steps wrote on
 * the agents' side and what the webhook receiver got. Each broken invariant is a Violation with the
 * evidence to chase it; an empty list is a pass.
 *
 *  1. runs-final        every run of the chaos jobs, every step run and every assignment is final
 *  2. single-execution  no step run executed twice (marker lines), none executed that never started
 *  3. output-exact      succeeded step runs: stdout and stderr byte-equal (sha256) to what the command
 *                       prints, seqs 1…last_seq contiguous and acked, nothing dropped; other step runs:
 *                       what was stored is a gap-free prefix of it (nothing doubled, nothing out of order)
 *  4. fires-once        one row per (schedule, occurrence), every occurrence in the window fired once,
 *                       one run per fire, no scheduled run without its fire
 *  5. notify-once       every finished run: one notification for the rule, delivered, its delivery id
 *                       received; no delivery the outbox does not know
 */

export interface Violation {
  invariant: 'runs-final' | 'single-execution' | 'output-exact' | 'fires-once' | 'notify-once'
  detail: string
}

export interface Figures {
  runs: number
  runsByStatus: Record<string, number>
  manualRuns: number
  scheduledRuns: number
  stepRuns: number
  stepRunsByStatus: Record<string, number>
  /** Why the step runs that did not succeed ended as they did (status: error → count). */
  stepErrors: Record<string, number>
  outputBytes: number
  outputChunks: number
  expectedBytesOfSucceeded: number
  markers: number
  occurrences: number
  fired: number
  notifications: number
  deliveries: number
  redeliveries: number
}

interface StepRow {
  id: string
  run_id: string
  job_id: string
  trigger: string
  parameters: Record<string, string>
  step_id: string
  target_id: string | null
  attempt: number
  status: string
  error: string | null
  a_status: string | null
  acked_seq: number | null
  last_seq: number | null
  dropped_bytes: number | null
  truncated: boolean | null
  claimed_by: string | null
  session_controller: string | null
  session_since: string | null
  agent_id: string | null
  sent_at: string | null
}

const countBy = <T>(items: T[], key: (t: T) => string) => {
  const out: Record<string, number> = {}
  for (const i of items) out[key(i)] = (out[key(i)] ?? 0) + 1
  return out
}

/** Statuses of a step run that never reached an agent's process. */
const NEVER_STARTED = new Set(['skipped', 'cancelled', 'queued'])
const NEVER_STARTED_ASSIGNMENT = new Set(['pending', 'undelivered', 'cancelled', 'rejected'])

export async function checkInvariants(db: Db, w: Workload, received: ReceivedRequest[]): Promise<{ violations: Violation[]; figures: Figures }> {
  const violations: Violation[] = []
  const add = (invariant: Violation['invariant'], detail: string) => violations.push({ invariant, detail })
  const q = async <T>(query: ReturnType<typeof sql>) => rowsOf<T>(await db.execute(query))
  const jobIds = [w.outputJobId, w.tickJobId]

  // ---- 1. everything final
  const runs = await q<{ id: string; job_id: string; status: string; trigger: string; requested_by: string | null; parameters: Record<string, string> }>(
    sql`select id, job_id, status, trigger, requested_by, parameters from run where job_id in (${jobIds[0]}, ${jobIds[1]})`,
  )
  for (const r of runs.filter((r) => !FINAL_RUN_STATUSES.includes(r.status as never))) add('runs-final', `run ${r.id} (${r.trigger}) is still ${r.status}`)
  const steps = await q<StepRow>(sql`
    select s.id, s.run_id, r.job_id, r.trigger, r.parameters, s.step_id, s.target_id, s.attempt, s.status,
      s.error, a.status as a_status, a.acked_seq, a.last_seq, a.dropped_bytes, a.truncated, s.claimed_by,
      (select controller_id from agent_session x where x.agent_id = s.agent_id) as session_controller,
      (select connected_at::text from agent_session x where x.agent_id = s.agent_id) as session_since,
      s.agent_id, a.sent_at::text as sent_at
    from step_run s join run r on r.id = s.run_id left join agent_assignment a on a.id = s.id
    where r.job_id in (${jobIds[0]}, ${jobIds[1]})`)
  for (const s of steps) {
    if (!FINAL_RUN_STATUSES.includes(s.status as never)) add('runs-final', `step run ${s.id} (${s.step_id} of run ${s.run_id}) is still ${s.status} (assignment ${s.a_status}; held by controller ${s.claimed_by}; agent ${s.agent_id}, sent at ${s.sent_at}, its session on ${s.session_controller} since ${s.session_since})`)
    else if (s.a_status && !FINAL_ASSIGNMENT_STATUSES.includes(s.a_status as never)) add('runs-final', `step run ${s.id} is ${s.status} but its assignment is still ${s.a_status}`)
    if (s.attempt !== 1) add('single-execution', `step run ${s.id} (${s.step_id} of run ${s.run_id}) is attempt ${s.attempt}: the jobs have no retries`)
  }
  const perKey = countBy(steps, (s) => `${s.run_id}/${s.step_id}/${s.target_id}`)
  for (const [key, n] of Object.entries(perKey)) if (n > 1) add('single-execution', `${n} step runs for (run/step/target) ${key}`)

  // ---- 2. single execution, from the markers the commands appended on the agents' side
  const markers = new Map<string, number>()
  let markerCount = 0
  if (existsSync(w.marksDir)) {
    for (const file of readdirSync(w.marksDir)) {
      for (const line of readFileSync(path.join(w.marksDir, file), 'utf8').split('\n')) {
        if (!line) continue
        markerCount++
        const parts = line.split(' ')
        if (parts.at(-1) !== file) add('single-execution', `marker "${line}" in the file of target ${file}`)
        const key = parts[0] === 'M' ? `M ${parts[1]} ${parts[2]} ${parts[3]}` : `S ${parts.at(-1)}`
        markers.set(key, (markers.get(key) ?? 0) + 1)
      }
    }
  }
  const known = new Set<string>()
  const tickSteps = new Map<string, { started: number; succeeded: number }>()
  for (const s of steps) {
    if (s.job_id === w.outputJobId) {
      const key = `M ${s.parameters.token} ${s.step_id} ${s.target_id}`
      known.add(key)
      const n = markers.get(key) ?? 0
      if (n > 1) add('single-execution', `step ${s.step_id} of run ${s.run_id} on target ${s.target_id} executed ${n} times (step run ${s.id}, ${s.status}, assignment ${s.a_status})`)
      if (s.status === 'succeeded' && n !== 1) add('single-execution', `step run ${s.id} succeeded but its command left ${n} markers`)
      if (n > 0 && (NEVER_STARTED.has(s.status) || !s.a_status || NEVER_STARTED_ASSIGNMENT.has(s.a_status)))
        add('single-execution', `step run ${s.id} (${s.status}, assignment ${s.a_status}) never started, yet its command ran ${n} time(s)`)
    } else {
      const t = tickSteps.get(s.target_id ?? '') ?? { started: 0, succeeded: 0 }
      if (s.a_status && !NEVER_STARTED_ASSIGNMENT.has(s.a_status)) t.started++
      if (s.status === 'succeeded') t.succeeded++
      tickSteps.set(s.target_id ?? '', t)
    }
  }
  for (const key of markers.keys()) if (key.startsWith('M ') && !known.has(key)) add('single-execution', `marker ${key} belongs to no step run`)
  for (const [target, t] of tickSteps) {
    const n = markers.get(`S ${target}`) ?? 0
    if (n > t.started) add('single-execution', `chaos-tick on target ${target}: ${n} executions for ${t.started} step runs that reached the agent`)
    if (n < t.succeeded) add('single-execution', `chaos-tick on target ${target}: ${t.succeeded} succeeded step runs but only ${n} executions`)
  }

  // ---- 3. output: stored bytes against what the command prints
  const chunks = await q<{ assignment_id: string; seq: number; stream: number; byte_offset: number; data: Buffer | string; dropped_bytes: number }>(sql`
    select o.assignment_id, o.seq::int as seq, o.stream, o.byte_offset::bigint as byte_offset, o.data, o.dropped_bytes::bigint as dropped_bytes
    from agent_output o join step_run s on s.id = o.assignment_id join run r on r.id = s.run_id
    where r.job_id in (${jobIds[0]}, ${jobIds[1]}) order by o.assignment_id, o.seq`)
  const byAssignment = new Map<string, typeof chunks>()
  for (const c of chunks) {
    const list = byAssignment.get(c.assignment_id) ?? []
    list.push(c)
    byAssignment.set(c.assignment_id, list)
  }
  let outputBytes = 0
  let expectedBytes = 0
  for (const s of steps) {
    const mine = byAssignment.get(s.id) ?? []
    const expected = s.job_id === w.outputJobId ? expectedOutput(s.step_id, s.parameters.token!, Number(s.parameters.lines), s.target_id!) : expectedTick(s.target_id!)
    const where = `step run ${s.id} (${s.step_id} of run ${s.run_id}, target ${s.target_id}, ${s.status}, assignment ${s.a_status})`
    // Seqs: 1, 2, 3… with no hole; each stream's byte offsets follow on from the bytes before them.
    const offsets: Record<number, number> = {}
    const streams: Record<number, Buffer[]> = { 1: [], 2: [] }
    mine.forEach((c, i) => {
      const data = Buffer.isBuffer(c.data) ? c.data : Buffer.from(c.data)
      outputBytes += data.length
      if (Number(c.seq) !== i + 1) add('output-exact', `${where}: chunk #${i + 1} has seq ${c.seq} (a hole or a doubled seq)`)
      if (Number(c.dropped_bytes) !== 0) add('output-exact', `${where}: seq ${c.seq} is a gap marker, ${c.dropped_bytes} bytes dropped`)
      const at = offsets[c.stream] ?? 0
      if (Number(c.byte_offset) !== at) add('output-exact', `${where}: seq ${c.seq} of stream ${c.stream} starts at byte ${c.byte_offset}, expected ${at}`)
      offsets[c.stream] = at + data.length
      ;(streams[c.stream] ??= []).push(data)
    })
    const stdout = Buffer.concat(streams[1] ?? [])
    const stderr = Buffer.concat(streams[2] ?? [])
    for (const stream of Object.keys(streams).map(Number)) if (stream !== 1 && stream !== 2 && streams[stream]!.length) add('output-exact', `${where}: output on stream ${stream}`)
    if (s.status === 'succeeded') {
      expectedBytes += expected.stdout.length + expected.stderr.length
      if (!stdout.equals(expected.stdout))
        add('output-exact', `${where}: stdout ${stdout.length} bytes sha256 ${sha256(stdout).slice(0, 16)}, the command printed ${expected.stdout.length} bytes sha256 ${sha256(expected.stdout).slice(0, 16)}${describeDiff(stdout, expected.stdout)}`)
      if (!stderr.equals(expected.stderr))
        add('output-exact', `${where}: stderr ${stderr.length} bytes sha256 ${sha256(stderr).slice(0, 16)}, the command printed ${expected.stderr.length} bytes sha256 ${sha256(expected.stderr).slice(0, 16)}${describeDiff(stderr, expected.stderr)}`)
      if (s.last_seq === null || Number(s.acked_seq) !== Number(s.last_seq) || mine.length !== Number(s.last_seq))
        add('output-exact', `${where}: acked_seq ${s.acked_seq}, last_seq ${s.last_seq}, ${mine.length} chunks stored`)
      if (Number(s.dropped_bytes ?? 0) !== 0 || s.truncated) add('output-exact', `${where}: dropped ${s.dropped_bytes} bytes, truncated ${s.truncated}`)
    } else {
      if (!expected.stdout.subarray(0, stdout.length).equals(stdout)) add('output-exact', `${where}: the stored stdout (${stdout.length} bytes) is not a prefix of what the command prints${describeDiff(stdout, expected.stdout)}`)
      if (!expected.stderr.subarray(0, stderr.length).equals(stderr)) add('output-exact', `${where}: the stored stderr (${stderr.length} bytes) is not a prefix of what the command prints${describeDiff(stderr, expected.stderr)}`)
    }
  }
  for (const id of byAssignment.keys()) if (!steps.some((s) => s.id === id)) add('output-exact', `output stored for assignment ${id}, which is no step run of the chaos jobs`)

  // ---- 4. schedule fires
  const fires = await q<{ fire_at: Date | string; status: string; reason: string | null; run_id: string | null }>(
    sql`select fire_at, status, reason, run_id from schedule_fire where schedule_id = ${w.scheduleId} order by fire_at`,
  )
  const fireTimes = fires.map((f) => new Date(f.fire_at).getTime())
  if (new Set(fireTimes).size !== fireTimes.length) add('fires-once', `${fireTimes.length - new Set(fireTimes).size} occurrences recorded twice`)
  const scheduledRuns = runs.filter((r) => r.trigger === 'schedule')
  const fired = fires.filter((f) => f.status === 'fired')
  for (const f of fires) if (f.status !== 'fired') add('fires-once', `occurrence ${new Date(f.fire_at).toISOString()} is ${f.status} (${f.reason}); misfire_policy run_all owes every occurrence`)
  for (const f of fired) if (!f.run_id || !scheduledRuns.some((r) => r.id === f.run_id)) add('fires-once', `occurrence ${new Date(f.fire_at).toISOString()} fired without its run (${f.run_id})`)
  if (new Set(fired.map((f) => f.run_id)).size !== fired.length) add('fires-once', 'two occurrences share one run')
  const firedRunIds = new Set(fired.map((f) => f.run_id))
  for (const r of scheduledRuns) if (!firedRunIds.has(r.id)) add('fires-once', `scheduled run ${r.id} has no fired occurrence (a double fire)`)
  // Every occurrence from the first one the schedule owed to the last one before it was disabled.
  // (An occurrence due in the last moments before the disabling may not have been reached: not owed.)
  const end = w.disabledAt ? w.disabledAt.getTime() - w.periodMs - 5_000 : Math.max(...fireTimes, 0)
  const expected = [w.firstFireAt.getTime()]
  for (;;) {
    const [next] = nextFireTimes({ cron: w.cron, timezone: 'UTC' }, new Date(expected.at(-1)!), 1)
    if (!next || next.getTime() > Math.max(end, ...fireTimes)) break
    expected.push(next.getTime())
  }
  const recorded = new Set(fireTimes)
  const missing = expected.filter((t) => t <= end && !recorded.has(t))
  if (missing.length) add('fires-once', `${missing.length} occurrences never recorded: ${missing.slice(0, 10).map((t) => new Date(t).toISOString()).join(', ')}`)
  const strange = fireTimes.filter((t) => !expected.includes(t))
  if (strange.length) add('fires-once', `occurrences the cron does not name: ${strange.slice(0, 10).map((t) => new Date(t).toISOString()).join(', ')}`)

  // ---- 5. notifications
  const notes = await q<{ id: string; run_id: string | null; status: string; attempts: number; dedupe_key: string | null }>(
    sql`select id, run_id, status, attempts, dedupe_key from notification where rule_id = ${w.ruleId}`,
  )
  const notesByRun = new Map<string, typeof notes>()
  for (const n of notes) notesByRun.set(n.run_id ?? '', [...(notesByRun.get(n.run_id ?? '') ?? []), n])
  const receivedIds = countBy(received, (r) => String(r.headers['x-opsconductor-delivery'] ?? ''))
  for (const r of runs.filter((r) => FINAL_RUN_STATUSES.includes(r.status as never))) {
    const mine = notesByRun.get(r.id) ?? []
    if (mine.length !== 1) add('notify-once', `run ${r.id} (${r.status}) has ${mine.length} notifications for the rule`)
    for (const n of mine) {
      if (n.status !== 'delivered') add('notify-once', `notification ${n.id} of run ${r.id} is ${n.status} after ${n.attempts} attempts`)
      if (!receivedIds[n.id]) add('notify-once', `notification ${n.id} of run ${r.id} (${n.status}) never reached the receiver`)
    }
  }
  for (const [runId, list] of notesByRun) if (!runs.some((r) => r.id === runId)) add('notify-once', `notifications ${list.map((n) => n.id).join(', ')} for unknown run ${runId}`)
  const noteIds = new Set(notes.map((n) => n.id))
  for (const id of Object.keys(receivedIds)) if (!noteIds.has(id)) add('notify-once', `the receiver got delivery ${id}, which is no notification of the rule`)
  const redeliveries = Object.values(receivedIds).reduce((s, n) => s + (n - 1), 0)

  return {
    violations,
    figures: {
      runs: runs.length,
      runsByStatus: countBy(runs, (r) => r.status),
      manualRuns: runs.filter((r) => r.trigger === 'manual').length,
      scheduledRuns: scheduledRuns.length,
      stepRuns: steps.length,
      stepRunsByStatus: countBy(steps, (s) => s.status),
      stepErrors: countBy(
        steps.filter((s) => s.status !== 'succeeded'),
        (s) => `${s.status}: ${(s.error ?? '').slice(0, 120)}`,
      ),
      outputBytes,
      outputChunks: chunks.length,
      expectedBytesOfSucceeded: expectedBytes,
      markers: markerCount,
      occurrences: fires.length,
      fired: fired.length,
      notifications: notes.length,
      deliveries: received.length,
      redeliveries,
    },
  }
}

/** Where two byte strings first differ, for the evidence. */
function describeDiff(got: Buffer, want: Buffer): string {
  let i = 0
  while (i < got.length && i < want.length && got[i] === want[i]) i++
  if (i === got.length && i === want.length) return ''
  const show = (b: Buffer) => JSON.stringify(b.subarray(Math.max(0, i - 40), i + 80).toString('utf8'))
  return `; first difference at byte ${i}: stored …${show(got)}… expected …${show(want)}…`
}
