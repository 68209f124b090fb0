import { sql } from 'drizzle-orm'
import { Gauge } from 'prom-client'
import type { AppContext } from '../context.ts'
import { rowsOf } from '../db/migrate.ts'
import { CONTROLLER_ALIVE_SECONDS, controllerAlive } from './service.ts'

/** Scrapes closer together than this share one set of database readings. */
const SNAPSHOT_TTL_MS = 5_000
/** A controller whose heartbeat is older than this is not counted as alive. */

interface Snapshot {
  runs: { queued: number; running: number }
  claimable: number
  oldestClaimableSeconds: number
  assignments: { pending: number; sent: number; running: number }
  notificationsPending: number
  oldestNotificationSeconds: number
  controllersAlive: number
  leader: boolean
}

/**
 * What an operator watches beyond HTTP: this controller's agent sessions, and cluster-wide backlog
 * read from Postgres (every controller reports the same cluster figures; alert on one of them).
 * Every query reads a partial index, so a scrape stays cheap with millions of finished rows.
 */
export function registerFleetMetrics(ctx: AppContext): void {
  const registers = [ctx.metrics.registry]
  let snapshot: { at: number; value: Promise<Snapshot | null> } | undefined
  const read = () => {
    if (!snapshot || Date.now() - snapshot.at > SNAPSHOT_TTL_MS) {
      snapshot = {
        at: Date.now(),
        value: readSnapshot(ctx).catch((err) => {
          ctx.log.warn({ err }, 'metrics.snapshot_failed')
          return null
        }),
      }
    }
    return snapshot.value
  }
  /** A gauge set from the snapshot at scrape time; absent (no sample) while the database does not answer. */
  const fromSnapshot = (name: string, help: string, set: (g: Gauge<string>, s: Snapshot) => void, labelNames: string[] = []) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        this.reset()
        const s = await read()
        if (s) set(this, s)
      },
    })

  new Gauge({
    name: 'opsc_agent_sessions',
    help: 'Agent streams this controller holds',
    registers,
    collect() {
      this.set(ctx.agentGateway?.registry.size ?? 0)
    },
  })
  fromSnapshot('opsc_runs_active', 'Runs not finished, by status (cluster)', (g, s) => {
    g.set({ status: 'queued' }, s.runs.queued)
    g.set({ status: 'running' }, s.runs.running)
  }, ['status'])
  fromSnapshot('opsc_step_runs_claimable', 'Step runs ready and waiting for a controller to claim them (cluster)', (g, s) => g.set(s.claimable))
  fromSnapshot('opsc_step_runs_claimable_oldest_seconds', 'Age of the oldest claimable step run: grows when controllers cannot keep up (cluster)', (g, s) => g.set(s.oldestClaimableSeconds))
  fromSnapshot('opsc_agent_assignments_open', 'Agent assignments not finished, by status (cluster)', (g, s) => {
    for (const [status, n] of Object.entries(s.assignments)) g.set({ status }, n)
  }, ['status'])
  fromSnapshot('opsc_notifications_pending', 'Notifications waiting to be sent (cluster)', (g, s) => g.set(s.notificationsPending))
  fromSnapshot('opsc_notifications_pending_oldest_seconds', 'Age of the oldest notification due and not sent (cluster)', (g, s) => g.set(s.oldestNotificationSeconds))
  fromSnapshot('opsc_controllers_alive', `Controllers that heartbeat within ${CONTROLLER_ALIVE_SECONDS} s (cluster)`, (g, s) => g.set(s.controllersAlive))
  fromSnapshot('opsc_scheduler_leader', '1 on the controller that fires schedules, else 0', (g, s) => g.set(s.leader ? 1 : 0))
}

async function readSnapshot(ctx: AppContext): Promise<Snapshot> {
  const num = (v: unknown) => Number(v ?? 0)
  const [row] = rowsOf<Record<string, unknown>>(
    await ctx.db.execute(sql`
      select
        (select count(*) from run where status = 'queued') as runs_queued,
        (select count(*) from run where status = 'running') as runs_running,
        (select count(*) from step_run where status = 'queued' and ready and available_at <= now()) as claimable,
        (select coalesce(extract(epoch from now() - min(available_at)), 0) from step_run where status = 'queued' and ready and available_at <= now()) as oldest_claimable,
        (select count(*) from agent_assignment where status = 'pending') as a_pending,
        (select count(*) from agent_assignment where status = 'sent') as a_sent,
        (select count(*) from agent_assignment where status = 'running') as a_running,
        (select count(*) from notification where status = 'pending') as n_pending,
        (select coalesce(extract(epoch from now() - min(next_attempt_at)), 0) from notification where status = 'pending' and next_attempt_at <= now()) as n_oldest,
        (select count(*) from controller_node n where ${controllerAlive('n')}) as controllers,
        (select leader_node from scheduler_state limit 1) as leader
    `),
  )
  const r = row ?? {}
  return {
    runs: { queued: num(r.runs_queued), running: num(r.runs_running) },
    claimable: num(r.claimable),
    oldestClaimableSeconds: Math.max(0, num(r.oldest_claimable)),
    assignments: { pending: num(r.a_pending), sent: num(r.a_sent), running: num(r.a_running) },
    notificationsPending: num(r.n_pending),
    oldestNotificationSeconds: Math.max(0, num(r.n_oldest)),
    controllersAlive: num(r.controllers),
    leader: r.leader === ctx.nodeId,
  }
}
