import { and, eq, inArray, sql } from 'drizzle-orm'
import type { AppContext } from '../context.ts'
import { uuidArray } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'
import { advanceRun, definitionOf, WORK_CHANNEL } from './coordinator.ts'
import { describe, executeStepRun, type Outcome } from './execute.ts'
import { RunEventHub } from './events.ts'
import { OutputRows } from './output-sink.ts'
import { pruneRuns } from './retention.ts'
import { run, runTarget, stepRun, type RunRow, type RunStatus, type StepRunRow, type TargetSnapshot } from './runs.sql.ts'
import { Batcher } from '../db/batcher.ts'
import type { Db } from '../db/client.ts'
import { notifyStepsEnded } from '../notify/run-events.ts'
import { FAILURE_STATUSES } from './planner.ts'
import { cleanUpRemote } from '../executors/remote-cleanup.ts'
import { CoalescedLoop, settledWithin } from '../wait.ts'
import { controllerAlive } from '../system/service.ts'

/*
 * The work loop every controller runs. Step runs that the coordinator made ready are claimed
 * with FOR UPDATE SKIP LOCKED under a lease the claimer keeps renewing; a controller that dies
 * stops renewing and another one takes its step runs over. Agent step runs go to the controller
 * that holds the agent's stream (or to anyone when no live controller holds it).
 */

export const CANCEL_CHANNEL = 'opsc_run_cancel'
const POLL_MS = 1_000
const STOP_WAIT_MS = 5_000
const ADVANCE_SWEEP_MS = 2_000
const PRUNE_EVERY_MS = 3_600_000
const FIRST_PRUNE_MS = 60_000
const RUN_ROW_TTL_MS = 500

export interface EngineOptions {
  leaseMs: number
  /** Concurrent steps the controller runs itself (SSH, HTTP, SQL…). */
  localCapacity: number
  /** Concurrent agent steps it dispatches and waits for (cheap: a wait on a stream). */
  agentCapacity: number
}

interface Claimed {
  row: StepRunRow
  snapshot: TargetSnapshot | null
}

interface InFlight {
  runId: string
  abort: AbortController
  agent: boolean
}

export class RunEngine {
  readonly events: RunEventHub
  private readonly inFlight = new Map<string, InFlight>()
  private readonly rows: OutputRows
  private readonly timers: NodeJS.Timeout[] = []
  private unlisten: (() => Promise<void>)[] = []
  private readonly claims = new CoalescedLoop(
    () => this.claim(),
    (err) => this.ctx.log.warn({ err }, 'runs.claim_failed'),
    () => this.stopped,
  )
  private stopped = false
  private readonly advancing = new Map<string, Promise<void>>()
  private readonly advanceAgain = new Set<string>()

  constructor(
    private readonly ctx: AppContext,
    private readonly opts: EngineOptions,
  ) {
    this.rows = new OutputRows(ctx)
    this.events = new RunEventHub(ctx)
  }

  async start(): Promise<void> {
    this.unlisten.push(await this.ctx.database.listen(WORK_CHANNEL, () => this.wake()))
    this.unlisten.push(await this.ctx.database.listen(CANCEL_CHANNEL, (payload) => this.onCancel(payload)))
    const every = (ms: number, fn: () => Promise<unknown>) => {
      const t = setInterval(() => void fn().catch((err) => this.ctx.log.warn({ err }, 'runs.loop_failed')), ms)
      t.unref()
      this.timers.push(t)
    }
    every(POLL_MS, async () => this.wake())
    every(Math.max(200, Math.floor(this.opts.leaseMs / 3)), () => this.renewLeases())
    every(Math.max(500, Math.floor(this.opts.leaseMs / 2)), () => this.reclaim())
    every(ADVANCE_SWEEP_MS, () => this.sweepActiveRuns())
    every(PRUNE_EVERY_MS, () => pruneRuns(this.ctx))
    const firstPrune = setTimeout(() => void pruneRuns(this.ctx).catch((err) => this.ctx.log.warn({ err }, 'runs.prune_failed')), FIRST_PRUNE_MS)
    firstPrune.unref()
    this.timers.push(firstPrune)
    await this.reclaim()
    this.wake()
  }

  /** Stops claiming; what runs here is left to its lease (another controller, or this one restarted, takes it over). */
  async stop(): Promise<void> {
    this.stopped = true
    for (const t of this.timers) clearInterval(t)
    for (const u of this.unlisten) await u().catch(() => {})
    this.unlisten = []
    await this.events.stop()
    // A claim stuck on a vanished database is abandoned: what it claimed is left to its lease.
    if (!(await settledWithin(STOP_WAIT_MS, this.claims.current))) this.ctx.log.warn({ waitedMs: STOP_WAIT_MS }, 'runs.stop_abandoned_claim')
  }

  /** Cancels a run everywhere: queued work ends now, running work is signalled on every controller. */
  async cancelRun(runId: string, by: string | null): Promise<void> {
    await this.ctx.db
      .update(run)
      .set({ cancelRequestedAt: this.ctx.clock(), cancelRequestedBy: by })
      .where(and(eq(run.id, runId), sql`${run.cancelRequestedAt} is null`))
    // Every controller listens, this one included: the NOTIFY reaches whoever runs the run's steps.
    await this.ctx.db.execute(sql`select pg_notify(${CANCEL_CHANNEL}, ${JSON.stringify({ runId, reason: 'cancelled' })})`)
    await this.advance(runId)
  }

  private onCancel(payload: string): void {
    let message: { runId?: string; reason?: string }
    try {
      message = JSON.parse(payload) as typeof message
    } catch {
      return
    }
    for (const item of this.inFlight.values()) if (item.runId === message.runId && !item.abort.signal.aborted) item.abort.abort(message.reason === 'timed_out' ? 'timed_out' : 'cancelled')
    // Agent steps dispatched by another controller to an agent this one holds.
    const dispatcher = this.ctx.agentGateway?.dispatcher
    if (dispatcher && message.runId) void this.cancelHeldAssignments(message.runId, message.reason ?? 'cancelled').catch(() => {})
  }

  private async cancelHeldAssignments(runId: string, reason: string): Promise<void> {
    const gateway = this.ctx.agentGateway
    if (!gateway) return
    const open = rowsOf<{ id: string; agent_id: string }>(
      await this.ctx.db.execute(sql`select id, agent_id from agent_assignment where run_id = ${runId} and status in ('pending', 'sent', 'running')`),
    )
    for (const a of open) if (gateway.registry.get(a.agent_id) && !this.inFlight.has(a.id)) await gateway.dispatcher.cancel(a.id, reason === 'timed_out' ? 'the run timed out' : 'the run was cancelled')
  }

  /** Coalesces advance requests per run: one at a time, and once more if asked meanwhile. */
  advance(runId: string): Promise<void> {
    const current = this.advancing.get(runId)
    if (current) {
      this.advanceAgain.add(runId)
      return current
    }
    const p = (async () => {
      do {
        this.advanceAgain.delete(runId)
        await advanceRun(this.ctx, runId).catch((err) => this.ctx.log.warn({ err, runId }, 'runs.advance_failed'))
      } while (this.advanceAgain.has(runId))
    })().finally(() => this.advancing.delete(runId))
    this.advancing.set(runId, p)
    return p
  }

  private wake(): void {
    if (this.stopped) return
    this.claims.request()
  }

  private count(agent: boolean): number {
    let n = 0
    for (const i of this.inFlight.values()) if (i.agent === agent) n++
    return n
  }

  private async claim(): Promise<void> {
    for (const agent of [true, false]) {
      for (;;) {
        const room = (agent ? this.opts.agentCapacity : this.opts.localCapacity) - this.count(agent)
        if (room <= 0 || this.stopped) break
        const limit = Math.min(room, 500)
        const claimed = await this.claimBatch(agent, limit)
        for (const c of claimed) this.begin(c)
        if (claimed.length < limit) break
      }
    }
  }

  private async claimBatch(agent: boolean, limit: number): Promise<Claimed[]> {
    const me = this.ctx.nodeId
    const lease = `${this.opts.leaseMs} milliseconds`
    const where = agent
      ? sql`transport = 'agent' and (agent_id is null
          or exists (select 1 from agent_session s where s.agent_id = sr.agent_id and s.controller_id = ${me})
          or not exists (select 1 from agent_session s join controller_node n on n.id = s.controller_id
                         where s.agent_id = sr.agent_id and ${controllerAlive('n')}))`
      : sql`transport <> 'agent'`
    const rows = rowsOf<{ id: string }>(
      await this.ctx.db.execute(sql`
        update step_run set status = 'running', claimed_by = ${me}, lease_until = now() + ${lease}::interval, started_at = coalesce(started_at, now())
        where id in (
          select id from step_run sr
          where status = 'queued' and ready and available_at <= now() and ${where}
          order by available_at
          for update skip locked
          limit ${limit})
        returning id`),
    )
    if (rows.length === 0) return []
    return this.claimedRows(rows.map((r) => r.id))
  }

  /** Claimed step runs with their frozen targets, in one read (not one per step run). */
  private async claimedRows(ids: string[]): Promise<Claimed[]> {
    return this.ctx.db
      .select({ row: stepRun, snapshot: runTarget.snapshot })
      .from(stepRun)
      .leftJoin(runTarget, and(eq(runTarget.runId, stepRun.runId), eq(runTarget.targetId, stepRun.targetId)))
      .where(inArray(stepRun.id, ids))
  }

  private begin({ row, snapshot }: Claimed, takenOver = false): void {
    const abort = new AbortController()
    this.inFlight.set(row.id, { runId: row.runId, abort, agent: row.transport === 'agent' })
    void this.execute(row, snapshot, abort, takenOver)
      .catch((err) => this.ctx.log.error({ err, stepRunId: row.id }, 'runs.execute_failed'))
      .finally(() => {
        this.inFlight.delete(row.id)
        this.wake()
      })
  }

  /** Run rows are read by every step run of a fan-out: shared for a moment (cancel also arrives by NOTIFY). */
  private readonly runRows = new Map<string, { row: Promise<RunRow | undefined>; at: number }>()
  private runRow(runId: string): Promise<RunRow | undefined> {
    const now = Date.now()
    const cached = this.runRows.get(runId)
    if (cached && now - cached.at < RUN_ROW_TTL_MS) return cached.row
    if (this.runRows.size > 1000) this.runRows.clear()
    const row = this.ctx.db.select().from(run).where(eq(run.id, runId)).then((rows) => rows[0])
    this.runRows.set(runId, { row, at: now })
    return row
  }

  private async execute(row: StepRunRow, snapshot: TargetSnapshot | null, abort: AbortController, takenOver: boolean): Promise<void> {
    const r = await this.runRow(row.runId)
    if (!r) return
    const definition = await definitionOf(this.ctx.db, r.jobId, r.jobVersion)
    const step = definition.steps[row.stepIndex]
    const now = Date.now()
    // The step's own timeout and the run's deadline both end it; the earlier one wins.
    const stepDeadline = (row.startedAt?.getTime() ?? now) + (step?.timeout_sec ?? 3600) * 1000
    const runDeadline = r.deadline?.getTime() ?? Number.POSITIVE_INFINITY
    const until = Math.min(stepDeadline, runDeadline)
    const timer = setTimeout(() => abort.abort('timed_out'), Math.max(0, until - now))
    if (r.cancelRequestedAt) abort.abort('cancelled')
    let outcome: Outcome
    try {
      outcome = await executeStepRun({ ctx: this.ctx, rows: this.rows }, row, snapshot, definition, r, abort.signal, takenOver)
    } catch (err) {
      outcome = { status: 'system_error', error: describe(err) }
    } finally {
      clearTimeout(timer)
    }
    if (abort.signal.aborted && outcome.status === 'failed' && row.transport !== 'agent') outcome.status = abort.signal.reason === 'timed_out' ? 'timed_out' : 'cancelled'
    await this.finish(row, outcome)
    await this.advance(row.runId)
  }

  private finish(row: StepRunRow, o: Outcome): Promise<void> {
    return this.finishes.add({ id: row.id, o, at: this.ctx.clock() })
  }

  /** Many step runs' verdicts in one UPDATE … FROM (VALUES …); only a step run this controller still holds takes it. */
  private readonly finishes = new Batcher<{ id: string; o: Outcome; at: Date }>(async (items) => {
    const json = (v: unknown) => (v === undefined || v === null ? null : JSON.stringify(v))
    const values = sql.join(
      items.map(
        ({ id, o, at }) =>
          sql`(${id}::uuid, ${o.status}::text, ${o.exitCode ?? null}::int, ${o.signal ?? null}::text, ${o.error ?? null}::text, ${json(o.result)}::jsonb,
            ${json(o.rendered)}::jsonb, ${at.toISOString()}::timestamptz, ${o.outputBytes ?? null}::bigint, ${o.truncated ?? null}::boolean)`,
      ),
      sql`, `,
    )
    const update = sql`
      update step_run s set status = v.status, exit_code = v.exit_code, signal = v.signal, error = v.error, result = v.result,
        rendered = coalesce(v.rendered, s.rendered), finished_at = v.finished_at, claimed_by = null, lease_until = null,
        output_bytes = coalesce(v.output_bytes, s.output_bytes), truncated = coalesce(v.truncated, s.truncated)
      from (values ${values}) as v(id, status, exit_code, signal, error, result, rendered, finished_at, output_bytes, truncated)
      where s.id = v.id and s.status = 'running' and s.claimed_by = ${this.ctx.nodeId}
      returning s.id, s.run_id, s.status`
    if (!items.some(({ o }) => FAILURE_STATUSES.includes(o.status))) {
      await this.ctx.db.execute(update)
      return
    }
    // Failed steps raise `step.failed`: its notifications are queued with the verdict, in one transaction.
    await this.ctx.db.transaction(async (tx) => {
      const db = tx as unknown as Db
      const ended = rowsOf<{ id: string; run_id: string; status: RunStatus }>(await db.execute(update))
      await notifyStepsEnded(this.ctx, db, ended)
    })
  })

  private async renewLeases(): Promise<void> {
    const ids = [...this.inFlight.keys()]
    if (ids.length === 0) return
    await this.ctx.db.execute(sql`
      update step_run set lease_until = now() + ${`${this.opts.leaseMs} milliseconds`}::interval
      where id = any(${uuidArray(ids)}) and claimed_by = ${this.ctx.nodeId} and status = 'running'`)
  }

  /**
   * Step runs whose controller stopped renewing: agent steps are taken over (the agent still runs
   * them; its result arrives through whichever controller it reconnects to); steps that ran inside
   * the dead controller are over — interrupted (their retry policy may run them again).
   */
  private async reclaim(): Promise<void> {
    if (this.stopped) return
    const me = this.ctx.nodeId
    const lease = `${this.opts.leaseMs} milliseconds`
    const taken = rowsOf<{ id: string }>(
      await this.ctx.db.execute(sql`
        update step_run set claimed_by = ${me}, lease_until = now() + ${lease}::interval
        where id in (select id from step_run where status = 'running' and lease_until < now() and transport = 'agent' for update skip locked limit 500)
        returning id`),
    )
    if (taken.length) {
      this.ctx.log.info({ count: taken.length }, 'runs.agent_steps_taken_over')
      for (const c of await this.claimedRows(taken.map((t) => t.id))) this.begin(c, true)
    }
    const interrupted = rowsOf<{ id: string; run_id: string; remote: unknown }>(
      await this.ctx.db.execute(sql`
        update step_run set status = 'interrupted', finished_at = now(), claimed_by = null, lease_until = null,
          error = 'the controller running this step stopped before it finished'
        where id in (select id from step_run where status = 'running' and lease_until < now() and transport <> 'agent' for update skip locked limit 500)
        returning id, run_id, remote`),
    )
    if (interrupted.length) this.ctx.log.warn({ count: interrupted.length }, 'runs.steps_interrupted')
    for (const row of interrupted) if (row.remote) void this.cleanUpRemote(row.id, row.remote)
    for (const runId of new Set(interrupted.map((i) => i.run_id))) await this.advance(runId)
  }

  /** What a dead controller's agentless step left running on its host (a process group, a WinRM shell) is ended. */
  private async cleanUpRemote(stepRunId: string, handle: unknown): Promise<void> {
    try {
      const done = await cleanUpRemote(this.ctx, handle)
      this.ctx.log.info({ stepRunId, done }, 'runs.remote_cleaned_up')
    } catch (err) {
      this.ctx.log.warn({ stepRunId, err: { message: (err as Error).message } }, 'runs.remote_cleanup_failed')
    }
  }

  /**
   * Active runs that events alone will not move: past their deadline, or stalled — nothing running
   * and nothing ready, because the advance after a step's verdict was lost (the controller died in
   * between, or the advance failed). Every other run advances when its steps end.
   */
  private async sweepActiveRuns(): Promise<void> {
    if (this.stopped) return
    const due = rowsOf<{ id: string; overdue: boolean }>(
      await this.ctx.db.execute(sql`
        select r.id, coalesce(r.deadline <= now(), false) as overdue from run r
        where r.status in ('queued', 'running')
          and (r.deadline <= now() or not exists (
            select 1 from step_run s where s.run_id = r.id and (s.status = 'running' or (s.status = 'queued' and s.ready))))
        limit 1000`),
    )
    for (const r of due) {
      if (r.overdue) this.onCancel(JSON.stringify({ runId: r.id, reason: 'timed_out' }))
      await this.advance(r.id)
    }
  }
}
