import type { AgentGateway } from './agents/gateway/gateway.ts'
import type { AuditNote } from './audit/note.ts'
import type { Principal } from './auth/principal.ts'
import type { ControllerConfig } from './config.ts'
import type { Keyring } from './crypto/master-key.ts'
import type { Database, Db } from './db/client.ts'
import type { Logger } from './log.ts'
import type { Metrics } from './system/metrics.ts'
import type { Readiness } from './system/readiness.ts'
import type { RunEngine } from './runs/engine.ts'

/** What every feature needs, passed explicitly (no globals, no AsyncLocalStorage). */
export interface AppContext {
  db: Db
  database: Database
  log: Logger
  config: ControllerConfig
  metrics: Metrics
  readiness: Readiness
  /** Master keys: wrap stored secrets and key the access-token signatures. */
  keyring: Keyring
  version: string
  installationId: string
  nodeId: string
  startedAt: Date
  clock: () => Date
  /** The port agents dial (set once the gRPC listener is up); enrollment commands name it. */
  grpcPort?: number
  /** `sha256:<hex>` of the CA agents pin; enrollment commands carry it. */
  caFingerprint?: string
  /** Agent sessions and dispatch; absent in processes that serve no agents (CLI, some tests). */
  agentGateway?: AgentGateway
  /** The job engine (claims and runs step runs, live events); absent in the CLI. */
  runEngine?: RunEngine
}

export interface AppEnv {
  Variables: {
    ctx: AppContext
    requestId: string
    log: Logger
    /** Set by the auth middleware when the request carries valid credentials. */
    principal: Principal | undefined
    /** Why presented credentials were refused (401 by default, 403 for a CSRF failure). */
    authFailure: { code: 'UNAUTHENTICATED' | 'FORBIDDEN'; message: string } | undefined
    /** Client address as seen by the controller (socket peer). */
    clientAddress: string | null
    /** What a mutating handler changed, for the audit row the audit middleware writes. */
    audit: AuditNote | undefined
  }
}
