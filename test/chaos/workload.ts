import { createHash } from 'node:crypto'
import path from 'node:path'
import type { AppContext } from '../../controller/src/context.ts'
import type { CallResult } from '../harness/auth.ts'
import { RunsApi } from '../harness/runs.ts'

/*
 * What runs during the chaos, built so the checker can recompute everything from the database:
 *
 * * job `chaos-output`, on every agent: step `emit` appends a marker line (`M <token> emit <target>`)
 *   to the target's marker file, then prints `lines` lines to stdout (every 7th also a line to
 *   stderr), pausing every 10 lines; step `tail` appends its marker and prints one line. `token`
 *   (unique per run) and `lines` are the run's parameters, so the exact bytes of every step run are
 *   known: expectedOutput().
 * * job `chaos-tick`, on every agent, fired by a schedule every few seconds: marker `S tick <target>`
 *   and one line. Scheduled runs share their parameters, so their markers are counted per target.
 * * a webhook channel and a rule sending `run.finished` of both jobs to a receiver.
 */

export const PAD = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_'

export interface Workload {
  outputJobId: string
  tickJobId: string
  scheduleId: string
  /** The schedule's first occurrence (next_fire_at when it was made). */
  firstFireAt: Date
  cron: string
  periodMs: number
  ruleId: string
  channelId: string
  marksDir: string
  /** Set when the schedule was disabled (the end of the window every occurrence must be in). */
  disabledAt?: Date
}

/** The bytes a step run of `chaos-output` prints on stdout and stderr. */
export function expectedOutput(stepId: string, token: string, lines: number, targetId: string): { stdout: Buffer; stderr: Buffer } {
  if (stepId === 'tail') return { stdout: Buffer.from(`tail ${token} ${targetId}\n`), stderr: Buffer.alloc(0) }
  let out = ''
  let err = ''
  for (let i = 1; i <= lines; i++) {
    out += `${token}:${targetId}:emit:${i}:${PAD}\n`
    if (i % 7 === 0) err += `${token}:${targetId}:emit-err:${i}\n`
  }
  return { stdout: Buffer.from(out), stderr: Buffer.from(err) }
}

export const expectedTick = (targetId: string) => ({ stdout: Buffer.from(`tick ${targetId}\n`), stderr: Buffer.alloc(0) })

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

function ok<T>(res: CallResult<T>, status: number, what: string): T {
  if (res.status !== status) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.body)}`)
  return res.body
}

export async function createWorkload(ctx: AppContext, opts: { targetIds: string[]; marksDir: string; receiverUrl: string; cron: string; periodMs: number }): Promise<{ workload: Workload; api: RunsApi }> {
  const admin = await RunsApi.as(ctx, 'admin')
  const create = async <T = { id: string }>(url: string, body: unknown, what: string) => ok(await admin.call('POST', url, body), 201, `create ${what}`) as T
  const selector = opts.targetIds.map((id) => `id:${id}`).join(' | ')
  const mark = (what: string) => `echo "${what}" >> '${opts.marksDir}/{{ target.id }}'`
  const emit = [
    mark('M {{ params.token }} emit {{ target.id }}'),
    'i=1',
    'while [ $i -le {{ params.lines }} ]; do',
    `  echo "{{ params.token }}:{{ target.id }}:emit:$i:${PAD}"`,
    '  if [ $((i % 7)) -eq 0 ]; then echo "{{ params.token }}:{{ target.id }}:emit-err:$i" >&2; fi',
    '  if [ $((i % 10)) -eq 0 ]; then sleep 0.1; fi',
    '  i=$((i+1))',
    'done',
  ].join('\n')
  const outputJob = await create('/api/v1/jobs', {
    name: 'chaos-output',
    targets: selector,
    parameters: [
      { name: 'token', type: 'string', required: true, pattern: '^[0-9a-f]{16}$' },
      { name: 'lines', type: 'string', required: true, pattern: '^[0-9]{1,4}$' },
    ],
    steps: [
      { id: 'emit', type: 'exec', shell: 'bash', command: emit, timeout_sec: 300 },
      { id: 'tail', type: 'exec', shell: 'bash', command: `${mark('M {{ params.token }} tail {{ target.id }}')}\necho "tail {{ params.token }} {{ target.id }}"`, timeout_sec: 300 },
    ],
  }, 'job chaos-output')
  const tickJob = await create('/api/v1/jobs', {
    name: 'chaos-tick',
    targets: selector,
    steps: [{ id: 'tick', type: 'exec', shell: 'bash', command: `${mark('S tick {{ target.id }}')}\necho "tick {{ target.id }}"`, timeout_sec: 300 }],
  }, 'job chaos-tick')
  const channel = await create('/api/v1/notification-channels', { name: 'chaos-hook', type: 'webhook', secret: { url: `${opts.receiverUrl}/hook` } }, 'channel')
  const rule = await create('/api/v1/notification-rules', {
    name: 'chaos runs finished',
    events: ['run.finished'],
    conditions: { job_ids: [outputJob.id, tickJob.id] },
    channel_ids: [channel.id],
  }, 'rule')
  const schedule = await create<{ id: string; next_fire_at: string }>('/api/v1/schedules', {
    name: 'chaos-tick every few seconds',
    job_id: tickJob.id,
    cron: opts.cron,
    timezone: 'UTC',
    // Every occurrence is owed, even one the leader could only reach late (after a database restart).
    misfire_policy: 'run_all',
    misfire_max_lateness_sec: 3600,
    concurrency_policy: 'allow',
    max_concurrent_runs: 1000,
  }, 'schedule')
  return {
    api: admin,
    workload: {
      outputJobId: outputJob.id,
      tickJobId: tickJob.id,
      scheduleId: schedule.id,
      firstFireAt: new Date(schedule.next_fire_at),
      cron: opts.cron,
      periodMs: opts.periodMs,
      ruleId: rule.id,
      channelId: channel.id,
      marksDir: path.resolve(opts.marksDir),
    },
  }
}

export async function disableSchedule(api: RunsApi, workload: Workload): Promise<void> {
  const res = await api.call('PUT', `/api/v1/schedules/${workload.scheduleId}`, { enabled: false })
  if (res.status !== 200) throw new Error(`disable schedule: HTTP ${res.status} ${JSON.stringify(res.body)}`)
  workload.disabledAt = new Date()
}
