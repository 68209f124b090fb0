import { sql } from 'drizzle-orm'
import { uuidArray, type Db } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'

/*
 * `lock: target`: a run of such a job holds each of its targets from the moment it may start
 * there until its own steps there are over; runs that want a held target wait for it, first come
 * first served, whichever controller advances them. Every change to one target's lock happens
 * under that target's `target_lock` row lock, taken for all the targets involved at once and in
 * target order, so two advances never deadlock and a release hands the target straight to the
 * first waiter.
 */

/**
 * Makes sure every target has its lock row, outside the advance's transaction: a row inserted
 * inside it would stay locked until commit and could wait on another advance in a different
 * order than the sorted FOR UPDATE (a deadlock).
 */
export async function ensureLockRows(db: Db, targetIds: string[]): Promise<void> {
  if (targetIds.length === 0) return
  await db.execute(sql`insert into target_lock (target_id) select t from unnest(${uuidArray([...targetIds].sort())}) as t order by t on conflict do nothing`)
}

/** The targets a run holds now. */
export async function heldTargets(db: Db, runId: string): Promise<Set<string>> {
  const rows = rowsOf<{ target_id: string }>(await db.execute(sql`select target_id from target_lock where holder_run = ${runId}`))
  return new Set(rows.map((r) => r.target_id))
}

/**
 * Locks the lock rows of `targets`, all at once and in target order (so advances never deadlock
 * on them). Returns the targets that have no row yet: the caller creates them (ensureLockRows)
 * outside its transaction and tries again.
 */
export async function lockRows(db: Db, targets: Iterable<string>): Promise<string[]> {
  const all = [...new Set(targets)].sort()
  if (all.length === 0) return []
  const rows = rowsOf<{ target_id: string }>(await db.execute(sql`select target_id from target_lock where target_id = any(${uuidArray(all)}) order by target_id for update`))
  const found = new Set(rows.map((r) => r.target_id))
  return all.filter((t) => !found.has(t))
}

/**
 * Takes what it can of `want` (rows locked by the caller): a free target nobody queued for
 * earlier; queues for the rest. Returns the targets taken.
 */
export async function take(db: Db, runId: string, want: string[]): Promise<string[]> {
  if (want.length === 0) return []
  // Read after the row locks: every waiter that committed before we got them is seen.
  const free = rowsOf<{ target_id: string }>(
    await db.execute(sql`
      select l.target_id from target_lock l
      where l.target_id = any(${uuidArray(want)}) and l.holder_run is null
        and not exists (
          select 1 from target_lock_wait w
          where w.target_id = l.target_id and w.run_id <> ${runId}
            and w.seq < coalesce((select m.seq from target_lock_wait m where m.target_id = l.target_id and m.run_id = ${runId}), 9223372036854775807))`),
  ).map((r) => r.target_id)
  if (free.length) {
    await db.execute(sql`update target_lock set holder_run = ${runId}, held_since = now() where target_id = any(${uuidArray(free)})`)
    await db.execute(sql`delete from target_lock_wait where run_id = ${runId} and target_id = any(${uuidArray(free)})`)
  }
  const taken = new Set(free)
  const waiting = want.filter((t) => !taken.has(t)).sort()
  if (waiting.length) {
    await db.execute(sql`insert into target_lock_wait (target_id, run_id) select t, ${runId}::uuid from unnest(${uuidArray(waiting)}) as t order by t on conflict do nothing`)
  }
  return free
}

/** Gives up the run's hold on `targets` (rows locked by the caller), each to its first waiter if any. Returns the runs handed a target. */
export async function giveUp(db: Db, runId: string, targets: string[]): Promise<string[]> {
  if (targets.length === 0) return []
  const next = rowsOf<{ target_id: string; run_id: string }>(
    await db.execute(sql`
      select distinct on (target_id) target_id, run_id from target_lock_wait
      where target_id = any(${uuidArray(targets)}) order by target_id, seq`),
  )
  const heirs = new Map(next.map((n) => [n.target_id, n.run_id]))
  const values = targets.map((t) => sql`(${t}::uuid, ${heirs.get(t) ?? null}::uuid)`)
  await db.execute(sql`
    update target_lock l set holder_run = v.heir, held_since = case when v.heir is null then null else now() end
    from (values ${sql.join(values, sql`, `)}) as v(target_id, heir)
    where l.target_id = v.target_id and l.holder_run = ${runId}`)
  if (next.length) {
    const pairs = next.map((n) => sql`(${n.target_id}::uuid, ${n.run_id}::uuid)`)
    await db.execute(sql`delete from target_lock_wait w using (values ${sql.join(pairs, sql`, `)}) as v(target_id, run_id) where w.target_id = v.target_id and w.run_id = v.run_id`)
  }
  return [...new Set(next.map((n) => n.run_id))]
}

/** A run that ended: every target it holds goes to the next waiter, and it stops waiting anywhere. */
export async function releaseAll(db: Db, runId: string): Promise<string[]> {
  const waited = rowsOf<{ target_id: string }>(await db.execute(sql`select target_id from target_lock_wait where run_id = ${runId}`)).map((r) => r.target_id)
  // The waited-for rows are locked too: a release handing one of them to this run has committed, or waits for us.
  await lockRows(db, [...(await heldTargets(db, runId)), ...waited])
  const held = [...(await heldTargets(db, runId))]
  const handedTo = held.length ? await giveUp(db, runId, held) : []
  await db.execute(sql`delete from target_lock_wait where run_id = ${runId}`)
  return handedTo
}

/** The targets a waiting run waits for and who holds each (what the run view shows). */
export async function lockWaits(db: Db, runId: string): Promise<{ target_id: string; target_name: string | null; held_by_run: string | null; since: string }[]> {
  const rows = rowsOf<{ target_id: string; target_name: string | null; held_by_run: string | null; since: Date | string }>(
    await db.execute(sql`
      select w.target_id, t.name as target_name, l.holder_run as held_by_run, w.since from target_lock_wait w
      left join target_lock l on l.target_id = w.target_id
      left join target t on t.id = w.target_id
      where w.run_id = ${runId} order by w.seq limit 100`),
  )
  return rows.map((r) => ({ ...r, since: new Date(r.since).toISOString() }))
}
