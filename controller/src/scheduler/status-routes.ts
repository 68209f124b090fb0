import { eq } from 'drizzle-orm'
import { Hono } from 'hono'
import { allow } from '../auth/access.ts'
import type { AppContext, AppEnv } from '../context.ts'
import { schedulerState } from './scheduler.sql.ts'

export interface SchedulerStatus {
  leader_node: string | null
  leader_since: string | null
  paused: boolean
  paused_by: string | null
  paused_at: string | null
  last_tick_at: string | null
  /** Schedules due at the last tick. */
  due_count: number
  /** Lateness of the latest-fired occurrence in the last tick. */
  lag_ms: number | null
}

const iso = (d: Date | null) => d?.toISOString() ?? null

export async function getSchedulerStatus(ctx: AppContext): Promise<SchedulerStatus> {
  const [s] = await ctx.db.select().from(schedulerState).where(eq(schedulerState.id, 1))
  return {
    leader_node: s?.leaderNode ?? null,
    leader_since: iso(s?.leaderSince ?? null),
    paused: s?.paused ?? false,
    paused_by: s?.pausedBy ?? null,
    paused_at: iso(s?.pausedAt ?? null),
    last_tick_at: iso(s?.lastTickAt ?? null),
    due_count: s?.dueCount ?? 0,
    lag_ms: s?.lagMs ?? null,
  }
}

/** Pauses or resumes firing on every controller; occurrences due meanwhile meet the misfire policy on resume. */
export async function setSchedulerPaused(ctx: AppContext, paused: boolean, by: string | null): Promise<SchedulerStatus> {
  await ctx.db
    .update(schedulerState)
    .set(paused ? { paused, pausedBy: by, pausedAt: ctx.clock() } : { paused, pausedBy: null, pausedAt: null })
    .where(eq(schedulerState.id, 1))
  return getSchedulerStatus(ctx)
}

/** `/api/v1/scheduler`: the cluster's scheduler status, and the cluster-wide stop/start. */
export const schedulerRoutes = new Hono<AppEnv>()
  .get('/status', allow('viewer'), async (c) => c.json(await getSchedulerStatus(c.var.ctx)))
  .post('/stop', allow('admin'), async (c) => {
    const status = await setSchedulerPaused(c.var.ctx, true, c.get('principal')?.username ?? null)
    c.set('audit', { action: 'scheduler.stop', resourceType: 'scheduler', resourceId: null })
    return c.json(status)
  })
  .post('/start', allow('admin'), async (c) => {
    const status = await setSchedulerPaused(c.var.ctx, false, c.get('principal')?.username ?? null)
    c.set('audit', { action: 'scheduler.start', resourceType: 'scheduler', resourceId: null })
    return c.json(status)
  })
