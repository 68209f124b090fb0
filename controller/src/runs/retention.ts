import { and, isNotNull, isNull, lt, sql } from 'drizzle-orm'
import type { AppContext } from '../context.ts'
import { rowsOf } from '../db/migrate.ts'
import { uuidArray } from '../db/client.ts'
import { run } from './runs.sql.ts'

/*
 * Keeps history bounded: finished runs older than OPSC_RUN_RETENTION_DAYS go entirely; their
 * output goes earlier (OPSC_OUTPUT_RETENTION_DAYS), and sooner when stored output exceeds
 * OPSC_OUTPUT_RETENTION_BYTES (oldest first). Active runs are never touched. Every controller
 * may run it; each batch is idempotent.
 */

const BATCH = 200
const DAY_MS = 86_400_000

export interface PruneReport {
  runsDeleted: number
  outputsPruned: number
}

async function deleteOutput(ctx: AppContext, runIds: string[]): Promise<void> {
  if (runIds.length === 0) return
  const ids = uuidArray(runIds)
  await ctx.db.execute(sql`delete from agent_output where assignment_id in (select id from step_run where run_id = any(${ids}))`)
  await ctx.db.execute(sql`delete from step_output where step_run_id in (select id from step_run where run_id = any(${ids}))`)
  await ctx.db.execute(sql`delete from run_event where run_id = any(${ids}) and kind = 'output'`)
  await ctx.db.update(run).set({ outputPrunedAt: ctx.clock() }).where(sql`${run.id} = any(${ids})`)
}

export async function pruneRuns(ctx: AppContext): Promise<PruneReport> {
  const cfg = ctx.config
  const now = ctx.clock().getTime()
  const report: PruneReport = { runsDeleted: 0, outputsPruned: 0 }
  const finished = (before: number) => and(isNotNull(run.finishedAt), lt(run.finishedAt, new Date(before)))

  if (cfg.OPSC_RUN_RETENTION_DAYS > 0) {
    for (;;) {
      const batch = await ctx.db.select({ id: run.id }).from(run).where(finished(now - cfg.OPSC_RUN_RETENTION_DAYS * DAY_MS)).limit(BATCH)
      if (batch.length === 0) break
      const ids = uuidArray(batch.map((b) => b.id))
      await ctx.db.execute(sql`delete from agent_assignment where run_id = any(${ids})`)
      await ctx.db.execute(sql`delete from run where id = any(${ids})`)
      report.runsDeleted += batch.length
    }
  }
  if (cfg.OPSC_OUTPUT_RETENTION_DAYS > 0) {
    for (;;) {
      const batch = await ctx.db
        .select({ id: run.id })
        .from(run)
        .where(and(finished(now - cfg.OPSC_OUTPUT_RETENTION_DAYS * DAY_MS), isNull(run.outputPrunedAt)))
        .limit(BATCH)
      if (batch.length === 0) break
      await deleteOutput(ctx, batch.map((b) => b.id))
      report.outputsPruned += batch.length
    }
  }
  if (cfg.OPSC_OUTPUT_RETENTION_BYTES > 0) {
    const [total] = rowsOf<{ bytes: string | number }>(
      await ctx.db.execute(sql`select coalesce(sum(s.output_bytes), 0) as bytes from step_run s join run r on r.id = s.run_id where r.output_pruned_at is null`),
    )
    let excess = Number(total?.bytes ?? 0) - cfg.OPSC_OUTPUT_RETENTION_BYTES
    while (excess > 0) {
      const oldest = rowsOf<{ id: string; bytes: string | number }>(
        await ctx.db.execute(sql`
          select r.id, coalesce((select sum(output_bytes) from step_run s where s.run_id = r.id), 0) as bytes
          from run r where r.finished_at is not null and r.output_pruned_at is null
          order by r.finished_at asc limit ${BATCH}`),
      )
      if (oldest.length === 0) break
      const take: string[] = []
      for (const r of oldest) {
        if (excess <= 0) break
        take.push(r.id)
        excess -= Number(r.bytes)
      }
      await deleteOutput(ctx, take)
      report.outputsPruned += take.length
    }
  }
  if (report.runsDeleted || report.outputsPruned) ctx.log.info(report, 'runs.pruned')
  return report
}

