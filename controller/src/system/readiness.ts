import type { Database } from '../db/client.ts'
import { appliedMigrationCount } from '../db/migrate.ts'

export interface ReadinessReport {
  ready: boolean
  checks: { database: string; migrations: string }
}

/** /readyz and the gRPC health status both ask this: can we serve, given the database? */
export class Readiness {
  private stopping = false

  constructor(
    private readonly database: Database,
    private readonly expectedMigrations: number,
    private readonly timeoutMs = 2000,
  ) {}

  /** After shutdown begins, load balancers should stop sending work here. */
  markStopping(): void {
    this.stopping = true
  }

  async check(): Promise<ReadinessReport> {
    if (this.stopping) return { ready: false, checks: { database: 'shutting down', migrations: 'unknown' } }
    try {
      const applied = await withTimeout(appliedMigrationCount(this.database), this.timeoutMs)
      const migrations =
        applied >= this.expectedMigrations ? 'ok' : `pending: ${applied} of ${this.expectedMigrations} applied`
      return { ready: migrations === 'ok', checks: { database: 'ok', migrations } }
    } catch (err) {
      const reason = err instanceof TimeoutError ? `no answer within ${this.timeoutMs} ms` : 'unreachable'
      return { ready: false, checks: { database: reason, migrations: 'unknown' } }
    }
  }
}

class TimeoutError extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError()), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
