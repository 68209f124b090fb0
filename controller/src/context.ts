import type { ControllerConfig } from './config.ts'
import type { Database, Db } from './db/client.ts'
import type { Logger } from './log.ts'
import type { Metrics } from './system/metrics.ts'
import type { Readiness } from './system/readiness.ts'

/** What every feature needs, passed explicitly (no globals, no AsyncLocalStorage). */
export interface AppContext {
  db: Db
  database: Database
  log: Logger
  config: ControllerConfig
  metrics: Metrics
  readiness: Readiness
  version: string
  installationId: string
  nodeId: string
  startedAt: Date
  clock: () => Date
}

export interface AppEnv {
  Variables: {
    ctx: AppContext
    requestId: string
    log: Logger
  }
}
