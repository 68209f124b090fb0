import type { ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { cpSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { eq } from 'drizzle-orm'
import { agent } from '../../controller/src/agents/agents.sql.ts'
import { createEnrollmentToken } from '../../controller/src/agents/enrollment.ts'
import { loadConfig } from '../../controller/src/config.ts'
import type { AppContext } from '../../controller/src/context.ts'
import { createKeyring } from '../../controller/src/crypto/master-key.ts'
import { openDatabase, type Database } from '../../controller/src/db/client.ts'
import { shippedMigrationCount } from '../../controller/src/db/migrate.ts'
import { createLogger } from '../../controller/src/log.ts'
import { createMetrics } from '../../controller/src/system/metrics.ts'
import { Readiness } from '../../controller/src/system/readiness.ts'
import { ensureInstallation } from '../../controller/src/system/service.ts'
import { VERSION } from '../../proto/src/product-version.ts'
import { AgentProcess, agentCli, freePort } from '../harness/agents.ts'
import { startControllerProcess, tempDataDir, type ControllerProcess } from '../harness/controller-process.ts'
import { BalancingProxy } from '../harness/proxy.ts'

/*
 * The processes of a chaos run: controller processes sharing one database and one TLS identity
 * (restartable on the same gRPC port), real agent processes (restartable on the same state dir),
 * each behind its own BalancingProxy. Every process exit the chaos did not cause is recorded.
 */

export interface Unexpected {
  at: number
  who: string
  detail: string
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** What ChaosController and ChaosAgent share: the live process, its history, kills and exits nobody caused. */
abstract class ChaosProcess<P extends { proc: ChildProcess; logs: Record<string, unknown>[] }> {
  current: P | undefined
  /** Every process this one has been (their logs, for evidence). */
  readonly history: P[] = []
  starts = 0
  private killing = false

  constructor(
    readonly name: string,
    private readonly unexpected: Unexpected[],
  ) {}

  get alive(): boolean {
    const p = this.current?.proc
    return !!p && p.exitCode === null && p.signalCode === null
  }

  /** Kills the live process with SIGKILL and waits for it to be gone. */
  protected abstract killProcess(p: P): Promise<unknown>

  /** Whether a start is under way (a process not yet up is not dead). */
  protected get starting(): boolean {
    return false
  }

  /** Makes `p` the live process; if it exits while live and nobody killed it, that is recorded. */
  protected adopt(p: P, extra: () => string = () => ''): void {
    this.current = p
    this.history.push(p)
    this.starts++
    p.proc.once('exit', (code, signal) => {
      if (this.current !== p || this.killing) return
      const tail = p.logs.slice(-8).map((l) => JSON.stringify(l)).join('\n')
      this.unexpected.push({ at: Date.now(), who: this.name, detail: `exited on its own (${signal ?? code}); last log lines:\n${tail}${extra()}` })
    })
  }

  async kill(): Promise<void> {
    if (!this.current) return
    this.killing = true
    try {
      await this.killProcess(this.current)
    } finally {
      this.killing = false
      this.current = undefined
    }
  }

  /** A process that died without being killed: forget it so it is started again. */
  reapIfDead(): boolean {
    if (this.current && !this.alive && !this.starting) {
      this.current = undefined
      return true
    }
    return false
  }
}

export class ChaosController extends ChaosProcess<ControllerProcess> {
  private startingUp: Promise<void> | undefined

  constructor(
    name: string,
    readonly dataDir: string,
    readonly grpcPort: number,
    private readonly env: Record<string, string>,
    unexpected: Unexpected[],
  ) {
    super(name, unexpected)
  }

  protected override get starting(): boolean {
    return this.startingUp !== undefined
  }

  protected killProcess(p: ControllerProcess): Promise<unknown> {
    return p.stop('SIGKILL')
  }

  /** Starts the process, retrying while it cannot start (the database restarting). */
  start(deadlineMs = 180_000): Promise<void> {
    this.startingUp ??= (async () => {
      const deadline = Date.now() + deadlineMs
      for (let attempt = 1; ; attempt++) {
        try {
          const proc = await startControllerProcess({ dataDir: this.dataDir, env: { ...this.env, OPSC_GRPC_PORT: String(this.grpcPort) } })
          this.adopt(proc, () => `\n${proc.stderr().slice(-1500)}`)
          return
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`${this.name} could not start within ${deadlineMs} ms: ${(err as Error).message}`)
          await sleep(Math.min(2_000, 250 * attempt))
        }
      }
    })().finally(() => (this.startingUp = undefined))
    return this.startingUp
  }
}

export class ChaosAgent extends ChaosProcess<AgentProcess> {
  constructor(
    name: string,
    readonly agentId: string,
    readonly targetId: string,
    readonly stateDir: string,
    readonly proxy: BalancingProxy,
    unexpected: Unexpected[],
  ) {
    super(name, unexpected)
  }

  protected killProcess(p: AgentProcess): Promise<unknown> {
    return p.kill('SIGKILL')
  }

  start(): void {
    this.adopt(AgentProcess.start(this.stateDir))
  }
}

/** An AppContext of this process on the chaos database: the API's routes and services, no engine. */
export async function driverContext(url: string, masterKey: Buffer): Promise<{ ctx: AppContext; database: Database }> {
  const database = await openDatabase({ kind: 'postgres', url })
  const ctx: AppContext = {
    db: database.db,
    database,
    log: createLogger({ level: 'silent' }),
    config: loadConfig({ OPSC_DATA_DIR: '/nonexistent-chaos-driver', DATABASE_URL: url }),
    metrics: createMetrics(VERSION),
    readiness: new Readiness(database, shippedMigrationCount()),
    keyring: createKeyring([masterKey]),
    version: VERSION,
    installationId: await ensureInstallation(database.db),
    nodeId: randomUUID(),
    startedAt: new Date(),
    clock: () => new Date(),
  }
  return { ctx, database }
}

/** Starts `count` controllers on one database: the first makes the TLS identity, the others get a copy of it. */
export async function startControllers(count: number, env: Record<string, string>, unexpected: Unexpected[]): Promise<ChaosController[]> {
  const controllers: ChaosController[] = []
  for (let i = 0; i < count; i++) {
    const dataDir = tempDataDir()
    // Agents pin one CA and may reach any controller: every controller serves the same certificate.
    if (i > 0) cpSync(path.join(controllers[0]!.dataDir, 'tls'), path.join(dataDir, 'tls'), { recursive: true })
    const c = new ChaosController(`controller-${i}`, dataDir, await freePort(), env, unexpected)
    // One at a time: cold starts at once on two cores only slow each other (and the first migrates).
    await c.start()
    controllers.push(c)
  }
  return controllers
}

/** Enrols `count` agents, each through its own proxy to the live controllers, and starts them. */
export async function startAgents(ctx: AppContext, controllers: ChaosController[], count: number, unexpected: Unexpected[]): Promise<ChaosAgent[]> {
  const fingerprint = String(controllers[0]!.current!.logs.find((l) => l.msg === 'controller.started')!.caFingerprint)
  const livePorts = () => controllers.filter((c) => c.alive).map((c) => c.grpcPort)
  const agents: ChaosAgent[] = []
  for (let i = 0; i < count; i++) {
    const proxy = await BalancingProxy.start(livePorts)
    const stateDir = path.join(mkdtempSync(path.join(tmpdir(), 'opsc-chaos-agent-')), 'state')
    let res: Awaited<ReturnType<typeof agentCli>>
    for (let attempt = 1; ; attempt++) {
      const { token } = await createEnrollmentToken(ctx, undefined, { expires_in_seconds: 600, max_uses: 1 })
      res = await agentCli(['enroll', '--controller', proxy.address, '--token', token, '--ca-fingerprint', fingerprint, '--state-dir', stateDir])
      if (res.code === 0) break
      if (attempt >= 5) throw new Error(`enroll of agent ${i} failed ${attempt} times, last: ${res.stderr}`)
      unexpected.push({ at: Date.now(), who: `agent-${i}`, detail: `enrolment attempt ${attempt} failed (retried): ${res.stderr.trim()}` })
      await sleep(1_000)
    }
    const agentId = /enrolled as agent ([0-9a-f-]{36})/.exec(res.stdout)![1]!
    const [row] = await ctx.db.select({ targetId: agent.targetId }).from(agent).where(eq(agent.id, agentId))
    const a = new ChaosAgent(`agent-${i}`, agentId, row!.targetId!, stateDir, proxy, unexpected)
    a.start()
    agents.push(a)
  }
  await Promise.all(agents.map((a) => a.current!.waitFor('agent.session_ready', {}, 120_000)))
  return agents
}
