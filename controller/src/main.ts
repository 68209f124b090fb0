import { randomUUID } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { enrollAgent, enrollResponse } from './agents/enrollment.ts'
import { createAgentGateway, type AgentGateway } from './agents/gateway/gateway.ts'
import { startGrpcServer, type RunningGrpcServer } from './agents/grpc-server.ts'
import { ensureSigningKey } from './agents/signing-keys.ts'
import { createApp } from './app.ts'
import { RunEngine } from './runs/engine.ts'
import { Scheduler } from './scheduler/tick.ts'
import { driverFor } from './notify/channels/index.ts'
import { NotificationWorker } from './notify/worker.ts'
import type { ControllerConfig } from './config.ts'
import type { AppContext } from './context.ts'
import { lockDataDir } from './data-dir.ts'
import { openDatabase, type Database, type DatabaseTarget } from './db/client.ts'
import { migrateDatabase, shippedMigrationCount } from './db/migrate.ts'
import { startHttpServer, type RunningHttpServer } from './http/server.ts'
import type { Logger } from './log.ts'
import { createMetrics } from './system/metrics.ts'
import { registerFleetMetrics } from './system/fleet-metrics.ts'
import { Readiness } from './system/readiness.ts'
import {
  ensureInstallation,
  heartbeatControllerNode,
  markControllerNodeStopped,
  registerControllerNode,
} from './system/service.ts'
import { ensureTls } from './tls/pki.ts'
import { checkSharedCa } from './tls/shared-ca.ts'
import { verifyMasterKey } from './crypto/key-check.ts'
import { loadMasterKeyring } from './crypto/master-key.ts'
import { announceFirstAdmin } from './users/first-admin.ts'
import { VERSION } from '../../proto/src/product-version.ts'
import { settledWithin } from './wait.ts'
import { startNotifyHousekeeping } from './notify/housekeeping.ts'
import { closeSshPool } from './executors/ssh/index.ts'
import { closeWinrmPools } from './executors/winrm/index.ts'

const NODE_HEARTBEAT_MS = 15_000
const READINESS_POLL_MS = 5_000
/** Shutdown must finish within 10 s; in-flight work gets most of it. */
const SHUTDOWN_GRACE_MS = 8_000
/** Longer than any part's own bounded stop (the scheduler's and engine's 5 s waits, the pool's 5 s end). */
const STOP_PHASE_LIMIT_MS = 6_000

export interface RunningController {
  httpPort: number
  grpcPort: number
  ctx: AppContext
  caFingerprint: string
  stop(): Promise<void>
}

export function databaseTarget(config: ControllerConfig): DatabaseTarget {
  return config.DATABASE_URL
    ? { kind: 'postgres', url: config.DATABASE_URL, poolSize: config.OPSC_DB_POOL_SIZE }
    : { kind: 'pglite', dir: path.join(config.OPSC_DATA_DIR, 'pgdata') }
}

/** Opens the database and applies migrations; shared by `controller` and `migrate`. */
export async function openMigratedDatabase(config: ControllerConfig): Promise<Database> {
  const database = await openDatabase(databaseTarget(config))
  try {
    await migrateDatabase(database)
    return database
  } catch (err) {
    await database.close()
    throw err
  }
}

/** Brings up the controller: data dir, database, TLS, HTTP and gRPC listeners. */
export async function startController(config: ControllerConfig, log: Logger): Promise<RunningController> {
  mkdirSync(config.OPSC_DATA_DIR, { recursive: true, mode: 0o700 })
  const unlock = config.DATABASE_URL ? () => {} : lockDataDir(config.OPSC_DATA_DIR)
  const cleanups: (() => Promise<void> | void)[] = [unlock]
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch((err) => log.warn({ err }, 'controller.cleanup_failed'))
  }
  try {
    const database = await openMigratedDatabase(config)
    cleanups.push(() => database.close())
    const installationId = await ensureInstallation(database.db)
    const keyring = loadMasterKeyring({ dataDir: config.OPSC_DATA_DIR, envKey: config.OPSC_MASTER_KEY })
    // A wrong master key must stop the start, not surface later as undecryptable credentials.
    await verifyMasterKey(database.db, keyring)
    await announceFirstAdmin(database.db, config, log)
    const tls = await ensureTls({
      dataDir: config.OPSC_DATA_DIR,
      certFile: config.OPSC_TLS_CERT,
      keyFile: config.OPSC_TLS_KEY,
      sans: config.OPSC_TLS_SANS,
      log,
    })
    // Controllers sharing this database must present the CA the agents pinned (docs/ha.md).
    await checkSharedCa(database.db, tls.fingerprint, log)
    const ctx: AppContext = {
      db: database.db,
      database,
      log,
      config,
      metrics: createMetrics(VERSION),
      readiness: new Readiness(database, shippedMigrationCount()),
      keyring,
      version: VERSION,
      installationId,
      nodeId: randomUUID(),
      startedAt: new Date(),
      clock: () => new Date(),
      grpcPort: config.OPSC_GRPC_PORT,
      caFingerprint: tls.fingerprint,
    }
    await ensureSigningKey(database.db, keyring)
    const gateway = createAgentGateway(ctx)
    ctx.agentGateway = gateway
    registerFleetMetrics(ctx)
    cleanups.push(() => gateway.stop())
    const engine = new RunEngine(ctx, {
      leaseMs: config.OPSC_WORK_LEASE_MS,
      localCapacity: config.OPSC_ENGINE_LOCAL_CAPACITY,
      agentCapacity: config.OPSC_ENGINE_AGENT_CAPACITY,
    })
    ctx.runEngine = engine
    cleanups.push(() => engine.stop())
    const http = await startHttpServer({ app: createApp(ctx), tls, host: config.OPSC_BIND, port: config.OPSC_HTTP_PORT })
    cleanups.push(() => http.close(SHUTDOWN_GRACE_MS))
    const ca = { caCertPem: tls.caCertPem ?? tls.certPem }
    const grpc = await startGrpcServer({
      tls,
      host: config.OPSC_BIND,
      port: config.OPSC_GRPC_PORT,
      log,
      version: VERSION,
      installationId,
      limits: {
        tlsHandshakeTimeoutMs: config.OPSC_GRPC_HANDSHAKE_TIMEOUT_MS,
        idleConnectionMs: config.OPSC_GRPC_IDLE_CONNECTION_MS,
        maxConnections: config.OPSC_GRPC_MAX_CONNECTIONS,
      },
      services: {
        enroll: async (request, peer) => enrollResponse(await enrollAgent(ctx, ca, request, peer)),
        connect: (call, channelBinding) => gateway.serve(call, channelBinding),
      },
    })
    // With OPSC_GRPC_PORT=0 the real port is known only now; enrollment commands must name it.
    ctx.grpcPort = grpc.port
    cleanups.push(() => grpc.close(SHUTDOWN_GRACE_MS))
    await registerControllerNode(database.db, { id: ctx.nodeId, version: VERSION, httpPort: http.port, grpcPort: grpc.port })
    await engine.start()
    const scheduler = new Scheduler(ctx, {
      tickMs: config.OPSC_SCHEDULER_TICK_MS,
      leaderRetryMs: config.OPSC_SCHEDULER_LEADER_RETRY_MS,
      graceMs: config.OPSC_SCHEDULER_GRACE_MS,
      batchSize: 500,
      parallel: 4,
    })
    scheduler.start()
    cleanups.push(() => scheduler.stop())
    const notifier = new NotificationWorker(ctx, (type) => driverFor(type, ctx), {
      concurrency: config.OPSC_NOTIFY_CONCURRENCY,
      backoffBaseMs: config.OPSC_NOTIFY_BACKOFF_BASE_MS,
      backoffCapMs: config.OPSC_NOTIFY_BACKOFF_CAP_MS,
      leaseMs: config.OPSC_NOTIFY_LEASE_MS,
    })
    await notifier.start()
    cleanups.push(() => notifier.stop())
    const timers = startBackgroundLoops(ctx, grpc)
    log.info(
      {
        httpPort: http.port,
        grpcPort: grpc.port,
        bind: config.OPSC_BIND,
        database: database.description,
        dataDir: config.OPSC_DATA_DIR,
        caFingerprint: tls.fingerprint,
        version: VERSION,
      },
      'controller.started',
    )
    return {
      httpPort: http.port,
      grpcPort: grpc.port,
      ctx,
      caFingerprint: tls.fingerprint,
      stop: () => stopController(ctx, { http, grpc, gateway, engine, scheduler, notifier, timers, cleanup }),
    }
  } catch (err) {
    await cleanup()
    throw err
  }
}

function startBackgroundLoops(ctx: AppContext, grpc: RunningGrpcServer): NodeJS.Timeout[] {
  const syncHealth = async () => grpc.setServing((await ctx.readiness.check()).ready ? 'SERVING' : 'NOT_SERVING')
  void syncHealth()
  const health = setInterval(() => void syncHealth(), READINESS_POLL_MS)
  const heartbeat = setInterval(() => {
    heartbeatControllerNode(ctx.db, ctx.nodeId, ctx.clock()).catch((err) => ctx.log.warn({ err }, 'controller.heartbeat_failed'))
  }, NODE_HEARTBEAT_MS)
  for (const t of [health, heartbeat]) t.unref()
  // Escalations, digests and agent presence changes (any controller, once each).
  return [health, heartbeat, startNotifyHousekeeping(ctx)]
}

async function stopController(
  ctx: AppContext,
  parts: {
    http: RunningHttpServer
    grpc: RunningGrpcServer
    gateway: AgentGateway
    engine: RunEngine
    scheduler: Scheduler
    notifier: NotificationWorker
    timers: NodeJS.Timeout[]
    cleanup: () => Promise<void>
  },
): Promise<void> {
  const started = Date.now()
  ctx.log.info('controller.stopping')
  ctx.readiness.markStopping()
  parts.grpc.setServing('NOT_SERVING')
  for (const t of parts.timers) clearInterval(t)
  // Each phase is timed (debug), its failure logged, and its wait bounded: a database that vanished
  // can leave a query unanswered for good, and the stop must still end.
  const phase = async (name: string, fn: () => Promise<unknown> | void, limitMs = STOP_PHASE_LIMIT_MS) => {
    const t0 = Date.now()
    ctx.log.debug({ phase: name }, 'controller.stop_phase')
    const done = (async () => fn())().catch((err) => ctx.log.warn({ err, phase: name }, 'controller.stop_phase_failed'))
    if (!(await settledWithin(limitMs, done))) ctx.log.warn({ phase: name, limitMs }, 'controller.stop_phase_abandoned')
    ctx.log.debug({ phase: name, ms: Date.now() - t0 }, 'controller.stop_phase_done')
  }
  // No new fires from here; the leadership frees at once for another controller.
  await phase('scheduler', () => parts.scheduler.stop())
  // No new work is claimed; what runs here keeps its lease until it ends or another controller takes it.
  await phase('engine', () => parts.engine.stop())
  // Sends in flight get a short grace, then are aborted and recorded; a hung one is left to its lease.
  await phase('notifier', () => parts.notifier.stop())
  // Pooled agentless connections: idle SSH connections close, idle WinRM shells are deleted on their hosts.
  await phase('ssh', () => closeSshPool(ctx))
  await phase('winrm', () => closeWinrmPools())
  // Agents learn first, so they reconnect (to another controller, or to this one when it is back) spread out.
  await phase('agents', () => parts.gateway.drain('controller stopping'))
  // Both listeners drain at once so the whole stop stays inside the 10 s budget.
  await phase('listeners', () => Promise.all([parts.http.close(SHUTDOWN_GRACE_MS), parts.grpc.close(SHUTDOWN_GRACE_MS)]), SHUTDOWN_GRACE_MS + 1_000)
  await phase('deregister', () => markControllerNodeStopped(ctx.db, ctx.nodeId, ctx.clock()))
  await phase('cleanup', () => parts.cleanup())
  ctx.log.info({ durationMs: Date.now() - started }, 'controller.stopped')
}
