import postgres from 'postgres'
import type { Database } from '../db/client.ts'
import type { Logger } from '../log.ts'
import { answerWithin } from '../wait.ts'
import { LOCK_CLASS } from '../db/locks.ts'

/*
 * Scheduler leadership: a Postgres session advisory lock held on a connection of its own for as
 * long as this controller leads. When the leader dies its session ends, Postgres frees the lock
 * and a follower's next attempt takes it. Leadership only decides who *tries* to fire: exactly
 * once comes from the unique (schedule, fire time) key, so even two leaders could not double-fire.
 */

/** pg_try_advisory_lock(int, int): the leader class and the scheduler's slot. */
const LOCK_SCHEDULER = 1
const QUERY_WAIT_MS = 10_000

export interface Leadership {
  /** Takes the lock if free; true while this process holds it. */
  acquire(): Promise<boolean>
  /** Whether the lock is still ours (the session may have been lost and silently reconnected). */
  holds(): Promise<boolean>
  /** Gives the lock up (and closes its connection). */
  release(): Promise<void>
}

export function createLeadership(database: Database, log: Logger): Leadership {
  // The embedded database belongs to one process: it always leads.
  if (database.target.kind === 'pglite') return { acquire: async () => true, holds: async () => true, release: async () => {} }
  return new AdvisoryLeadership(database.target.url, log)
}

class AdvisoryLeadership implements Leadership {
  private sql: postgres.Sql | undefined
  /** The backend that holds the lock; a reconnect gives another pid, and the lock is gone with the old one. */
  private pid: number | undefined

  constructor(
    private readonly url: string,
    private readonly log: Logger,
  ) {}

  private connection(): postgres.Sql {
    return (this.sql ??= postgres(this.url, {
      max: 1,
      // 0: never closed for idleness or age (closing it would give the lock away).
      idle_timeout: 0,
      max_lifetime: 0,
      connect_timeout: 5,
      onnotice: () => {},
      connection: { application_name: 'opsconductor-scheduler' },
      onclose: () => {
        if (this.pid !== undefined) this.log.warn({ pid: this.pid }, 'scheduler.leader_session_lost')
        this.pid = undefined
      },
    }))
  }

  async acquire(): Promise<boolean> {
    if (this.pid !== undefined && (await this.holds())) return true
    const [row] = await this.bounded(this.connection()<{ ok: boolean; pid: number }[]>`select pg_try_advisory_lock(${LOCK_CLASS.leader}, ${LOCK_SCHEDULER}) as ok, pg_backend_pid() as pid`)
    this.pid = row?.ok ? row.pid : undefined
    return this.pid !== undefined
  }

  /**
   * A query on this connection that has not answered in time (the server or its database went
   * away mid-query) fails, and the connection is dropped so the next attempt starts clean —
   * a hung leadership check must never stall the tick loop or the controller's stop.
   */
  private async bounded<T>(query: Promise<T>): Promise<T> {
    try {
      return await answerWithin(QUERY_WAIT_MS, query, 'scheduler leadership query')
    } catch (err) {
      this.pid = undefined
      await this.close()
      throw err
    }
  }

  async holds(): Promise<boolean> {
    if (this.pid === undefined || !this.sql) return false
    try {
      const [row] = await this.bounded(this.sql<{ held: boolean }[]>`
        select exists (select 1 from pg_locks where locktype = 'advisory' and granted
          and classid = ${LOCK_CLASS.leader} and objid = ${LOCK_SCHEDULER} and objsubid = 2 and pid = pg_backend_pid()) as held,
          pg_backend_pid() as pid`)
      if (!row?.held) this.pid = undefined
      return Boolean(row?.held)
    } catch (err) {
      this.log.warn({ err }, 'scheduler.leader_check_failed')
      this.pid = undefined
      // A connection we cannot trust may still hold the lock: drop it, so the lock frees for others.
      await this.close()
      return false
    }
  }

  async release(): Promise<void> {
    if (this.sql && this.pid !== undefined) {
      await this.bounded(this.sql`select pg_advisory_unlock(${LOCK_CLASS.leader}, ${LOCK_SCHEDULER})`).catch(() => {})
    }
    this.pid = undefined
    await this.close()
  }

  private async close(): Promise<void> {
    const sql = this.sql
    this.sql = undefined
    await sql?.end({ timeout: 2 }).catch(() => {})
  }
}
