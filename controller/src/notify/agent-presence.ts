import { sql } from 'drizzle-orm'
import { AGENT_ONLINE_WINDOW_MS } from '../agents/service.ts'
import type { AppContext } from '../context.ts'
import type { Db } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'
import { formatDuration, publicUrl } from './run-events.ts'
import { EventRules, notifyEvent } from './system-events.ts'

/*
 * agent.online / agent.offline. Status is computed (a session and a recent heartbeat), so a
 * transition is found by comparing it with agent_presence, and claimed by a conditional upsert of
 * that row: of several controllers running this pass, the one whose upsert changes the row
 * announces it, in the same transaction.
 */

/** A controller that just started leaves presence alone while the agents reconnect to it. */
export const PRESENCE_STARTUP_GRACE_MS = 2 * 60_000
/** An agent first seen online is announced only if it enrolled this recently (not a fleet that predates presence tracking). */
const NEW_AGENT_MS = 10 * 60_000
/** Transitions claimed per transaction. */
const BATCH = 1000

interface Transition {
  id: string
  name: string
  hostname: string
  target_id: string | null
  target_name: string | null
  last_seen_at: Date | string | null
  enrolled_at: Date | string
  prev: 'online' | 'offline' | null
  prev_at: Date | string | null
  state: 'online' | 'offline'
}

/**
 * One pass over the fleet: one statement computes every non-revoked agent's status, keeps those
 * that differ from their presence row and claims them. Online: a session and heard from within
 * the online window; offline: not heard from within it. Between the two (the session just dropped)
 * nothing changes yet, so a reconnect within the window announces nothing. A first row for an
 * offline agent is recorded silently.
 */
export async function trackAgentPresence(ctx: AppContext, opts: { startupGraceMs?: number } = {}): Promise<number> {
  if (ctx.clock().getTime() - ctx.startedAt.getTime() < (opts.startupGraceMs ?? PRESENCE_STARTUP_GRACE_MS)) return 0
  let queued = 0
  for (;;) {
    const { claimed, sent } = await ctx.db.transaction(async (t) => claimTransitions(ctx, t as unknown as Db))
    queued += sent
    if (claimed < BATCH) return queued
  }
}

async function claimTransitions(ctx: AppContext, db: Db): Promise<{ claimed: number; sent: number }> {
  const now = ctx.clock()
  const since = new Date(now.getTime() - AGENT_ONLINE_WINDOW_MS).toISOString()
  const rows = rowsOf<Transition>(
    await db.execute(sql`
      with fleet as (
        select a.id, a.name, a.hostname, a.target_id, a.last_seen_at, a.enrolled_at, p.state as prev, p.changed_at as prev_at,
          case
            when a.last_seen_at >= ${since}::timestamptz and exists (select 1 from agent_session s where s.agent_id = a.id) then 'online'
            when a.last_seen_at is null or a.last_seen_at < ${since}::timestamptz then 'offline'
          end as state
        from agent a left join agent_presence p on p.agent_id = a.id
        where a.revoked_at is null
      ),
      changed as (select * from fleet where state is not null and state is distinct from prev limit ${BATCH}),
      claimed as (
        insert into agent_presence (agent_id, state, changed_at)
        select id, state, ${now.toISOString()}::timestamptz from changed
        on conflict (agent_id) do update set state = excluded.state, changed_at = excluded.changed_at
        where agent_presence.state <> excluded.state
        returning agent_id
      )
      select c.id, c.name, c.hostname, c.target_id, t.name as target_name, c.last_seen_at, c.enrolled_at, c.prev, c.prev_at, c.state
      from claimed k join changed c on c.id = k.agent_id left join target t on t.id = c.target_id`),
  )
  const date = (d: Date | string | null) => (d === null ? null : new Date(d))
  const announced = rows.filter((r) => (r.state === 'offline' ? r.prev === 'online' : r.prev === 'offline' || (r.prev === null && date(r.enrolled_at)!.getTime() >= now.getTime() - NEW_AGENT_MS)))
  if (!announced.length) return { claimed: rows.length, sent: 0 }
  const rules = await EventRules.load(db, ['agent.online', 'agent.offline'])
  if (!rules) return { claimed: rows.length, sent: 0 }
  let sent = 0
  for (const r of announced) {
    const lastSeen = date(r.last_seen_at)
    const who = `Agent ${r.name} (${r.hostname})`
    const detail =
      r.state === 'offline'
        ? lastSeen
          ? `${who} has not been heard from since ${lastSeen.toISOString()} (${formatDuration(now.getTime() - lastSeen.getTime())} ago).`
          : `${who} has not connected since it enrolled.`
        : r.prev === 'offline'
          ? `${who} is connected again after ${formatDuration(now.getTime() - date(r.prev_at)!.getTime())} offline.`
          : `${who} enrolled at ${date(r.enrolled_at)!.toISOString()} and connected.`
    sent += await notifyEvent(
      ctx,
      db,
      {
        event: `agent.${r.state}`,
        key: `agent:${r.id}:${r.state}:${now.getTime()}`,
        fields: {
          title: `Agent ${r.name} is ${r.state === 'online' && r.prev === 'offline' ? 'back online' : r.state}`,
          detail,
          status: r.state,
          agent_name: r.name,
          agent_id: r.id,
          hostname: r.hostname,
          target_name: r.target_name ?? '',
          last_seen_at: lastSeen?.toISOString() ?? '',
          link: `${publicUrl(ctx)}/agents/${r.id}`,
        },
        match: { targetIds: async () => (r.target_id ? [r.target_id] : []) },
      },
      rules,
    )
  }
  return { claimed: rows.length, sent }
}
