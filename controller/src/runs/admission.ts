import { sql } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'
import type { RunRow } from './runs.sql.ts'
import { LOCK_CLASS } from '../db/locks.ts'

/*
 * `max_concurrent_runs`: a job's runs start only while fewer than the cap are admitted and
 * unfinished; the others wait, oldest first. Admission decisions of one job are serialised by a
 * transaction advisory lock on the job, so two controllers never admit past the cap together.
 */

/** pg_advisory_xact_lock(int, int): 'opjb' and a hash of the job id (the scheduler uses 'opsc'). */

/** Whether the run may start now; marks it admitted (in the caller's transaction) when it may. */
export async function admit(db: Db, r: Pick<RunRow, 'id' | 'jobId' | 'createdAt'>, cap: number): Promise<boolean> {
  await db.execute(sql`select pg_advisory_xact_lock(${LOCK_CLASS.job}, hashtext(${r.jobId}))`)
  const [row] = rowsOf<{ active: number; ahead: number }>(
    await db.execute(sql`
      select count(*) filter (where admitted)::int as active,
             count(*) filter (where not admitted and (created_at, id) < (${r.createdAt.toISOString()}::timestamptz, ${r.id}::uuid))::int as ahead
      from run where job_id = ${r.jobId} and status in ('queued', 'running')`),
  )
  const ok = Number(row?.active ?? 0) + Number(row?.ahead ?? 0) < cap
  await db.execute(
    ok
      ? sql`update run set admitted = true, waiting_for = null where id = ${r.id}`
      : sql`update run set waiting_for = 'job_concurrency' where id = ${r.id} and waiting_for is distinct from 'job_concurrency'`,
  )
  return ok
}

/** The oldest runs of the job waiting for admission, up to `cap` (to advance after a run of it ends). */
export async function nextWaiting(db: Db, jobId: string, cap: number): Promise<string[]> {
  const rows = rowsOf<{ id: string }>(
    await db.execute(sql`
      select id from run where job_id = ${jobId} and status = 'queued' and not admitted
      order by created_at, id limit ${cap}`),
  )
  return rows.map((r) => r.id)
}
