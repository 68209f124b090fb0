import { sql } from 'drizzle-orm'
import type { SSEStreamingApi } from 'hono/streaming'
import type { AppContext } from '../context.ts'
import { rowsOf } from '../db/migrate.ts'
import { isFinal } from './planner.ts'
import { STREAM_NAMES, type OutputStreamName } from '../agents/assignments/events.ts'
import { byteaValue } from '../db/bytea.ts'
import type { RunStatus } from './runs.sql.ts'

/*
 * Live run events for Server-Sent Events. The triggers record every status change and output
 * chunk as a run event with a per-run seq and NOTIFY; each controller listens once and wakes the
 * viewers of that run, who read what is new from the database — so a viewer on any controller
 * sees everything, in order, and resumes after a reconnect from its Last-Event-ID.
 */

export const EVENT_CHANNEL = 'opsc_run_event'
const HEARTBEAT_MS = 15_000
const FALLBACK_POLL_MS = 1_000
const BATCH = 500

export class RunEventHub {
  private readonly subscribers = new Map<string, Set<() => void>>()
  private unlisten: (() => Promise<void>) | undefined
  private starting: Promise<void> | undefined

  constructor(private readonly ctx: AppContext) {}

  private ensureListening(): Promise<void> {
    this.starting ??= this.ctx.database
      .listen(EVENT_CHANNEL, (runId) => {
        for (const wake of this.subscribers.get(runId) ?? []) wake()
      })
      .then((unlisten) => void (this.unlisten = unlisten))
    return this.starting
  }

  async subscribe(runId: string, wake: () => void): Promise<() => void> {
    await this.ensureListening()
    let set = this.subscribers.get(runId)
    if (!set) this.subscribers.set(runId, (set = new Set()))
    set.add(wake)
    return () => {
      set.delete(wake)
      if (set.size === 0) this.subscribers.delete(runId)
    }
  }

  async stop(): Promise<void> {
    await this.unlisten?.().catch(() => {})
  }
}

interface EventRow {
  seq: string | number
  kind: 'run' | 'step' | 'output'
  step_run_id: string | null
  status: RunStatus | null
  output_seq: string | number | null
  at: Date | string
  stream: number | null
  data: unknown
  dropped_bytes: string | number | null
  exit_code: number | null
  error: string | null
  target_name: string | null
  step_id: string | null
  attempt: number | null
}

async function readEvents(ctx: AppContext, runId: string, after: number): Promise<EventRow[]> {
  return rowsOf<EventRow>(
    await ctx.db.execute(sql`
      select e.seq, e.kind, e.step_run_id, e.status, e.output_seq, e.at,
        coalesce(ao.stream, so.stream) as stream, coalesce(ao.data, so.data) as data, ao.dropped_bytes,
        sr.exit_code, sr.error, sr.target_name, sr.step_id, sr.attempt
      from run_event e
      left join agent_output ao on e.kind = 'output' and ao.assignment_id = e.step_run_id and ao.seq = e.output_seq
      left join step_output so on e.kind = 'output' and so.step_run_id = e.step_run_id and so.seq = e.output_seq
      left join step_run sr on e.kind = 'step' and sr.id = e.step_run_id
      where e.run_id = ${runId} and e.seq > ${after}
      order by e.seq limit ${BATCH}`),
  )
}

/** The SSE payloads (`event:` name → JSON `data:`), exported as types for the web console. */
export interface RunStatusEvent {
  status: RunStatus | null
  at: string
}
export interface StepStatusEvent {
  step_run_id: string | null
  step_id: string | null
  target_name: string | null
  attempt: number | null
  status: RunStatus | null
  exit_code: number | null
  error: string | null
  at: string
}
export interface OutputEvent {
  step_run_id: string | null
  /** The chunk's seq within its step run. */
  seq: number
  /** `pty` is a terminal's merged output; `file` a fetched file's bytes. */
  stream: OutputStreamName
  /** The chunk's bytes, base64 (chunks may split lines and UTF-8 sequences). */
  data: string
  dropped_bytes: number
}
/** The last message: the run is over and everything was sent. */
export interface EndEvent {
  status: RunStatus | null
}

function message(e: EventRow): { event: string; data: string } {
  const at = new Date(e.at).toISOString()
  if (e.kind === 'run') return { event: 'run', data: JSON.stringify({ status: e.status, at } satisfies RunStatusEvent) }
  if (e.kind === 'step') {
    const final = e.status !== null && isFinal(e.status)
    const payload: StepStatusEvent = { step_run_id: e.step_run_id, step_id: e.step_id, target_name: e.target_name, attempt: e.attempt, status: e.status, exit_code: final ? e.exit_code : null, error: final ? e.error : null, at }
    return { event: 'step', data: JSON.stringify(payload) }
  }
  const data = byteaValue(e.data)
  const payload: OutputEvent = { step_run_id: e.step_run_id, seq: Number(e.output_seq), stream: STREAM_NAMES[e.stream ?? 1] ?? 'stdout', data: data.toString('base64'), dropped_bytes: Number(e.dropped_bytes ?? 0) }
  return { event: 'output', data: JSON.stringify(payload) }
}

/** Streams a run's events after `after` until the run is over and everything is sent (or the client leaves). */
export async function streamRunEvents(ctx: AppContext, hub: RunEventHub | undefined, runId: string, after: number, stream: SSEStreamingApi): Promise<void> {
  let cursor = after
  let wake: (() => void) | undefined
  let pending = true
  const signal = () => {
    pending = true
    wake?.()
  }
  const unsubscribe = hub ? await hub.subscribe(runId, signal) : undefined
  let closed = false
  stream.onAbort(() => {
    closed = true
    wake?.()
  })
  /** Sends everything committed after the cursor. */
  const drain = async () => {
    for (;;) {
      const events = await readEvents(ctx, runId, cursor)
      for (const e of events) {
        await stream.writeSSE({ id: String(e.seq), ...message(e) })
        cursor = Number(e.seq)
      }
      if (events.length < BATCH) return
    }
  }
  try {
    while (!closed) {
      pending = false
      await drain()
      const [r] = rowsOf<{ status: RunStatus }>(await ctx.db.execute(sql`select status from run where id = ${runId}`))
      if (!r || isFinal(r.status)) {
        // The final status may have committed after the read above: one more drain catches what came with it.
        await drain()
        await stream.writeSSE({ event: 'end', id: String(cursor), data: JSON.stringify({ status: r?.status ?? null } satisfies EndEvent) })
        return
      }
      if (pending) continue
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, hub ? HEARTBEAT_MS : FALLBACK_POLL_MS)
        wake = () => {
          clearTimeout(t)
          resolve()
        }
      })
      wake = undefined
      if (!pending && !closed) await stream.write(': keep-alive\n\n')
    }
  } finally {
    unsubscribe?.()
  }
}
