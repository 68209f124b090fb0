import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, mkdtempSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { and, asc, eq } from 'drizzle-orm'
import { agentOutput } from '../../controller/src/agents/assignments/assignments.sql.ts'
import { createEnrollmentToken } from '../../controller/src/agents/enrollment.ts'
import type { Dispatcher } from '../../controller/src/agents/assignments/dispatcher.ts'
import { loadConfig } from '../../controller/src/config.ts'
import type { AppContext } from '../../controller/src/context.ts'
import { createLogger } from '../../controller/src/log.ts'
import { startController, type RunningController } from '../../controller/src/main.ts'
import { REPO_ROOT, tempDataDir } from './controller-process.ts'
import { createPostgresDatabase, dropPostgresDatabase, testBackend } from './db.ts'
import { JsonLogWatcher, type LogRecord } from './log-watch.ts'
import { BalancingProxy } from './proxy.ts'

export const AGENT_BIN = path.join(REPO_ROOT, 'agent/bin/opsconductor-agent.js')

/** A loopback port nothing listens on right now (so a restarted controller can take the same one). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })
}

/**
 * The real controller, in this process (so a test can reach the dispatcher the job engine will
 * call), on fixed loopback ports and its own database, restartable on the same ports and data.
 */
export class TestController {
  running!: RunningController
  private constructor(
    readonly dataDir: string,
    readonly grpcPort: number,
    private readonly env: Record<string, string>,
    private readonly databaseUrl: string | undefined,
  ) {}

  static async start(env: Record<string, string> = {}): Promise<TestController> {
    const databaseUrl = (await testBackend()) === 'postgres' ? await createPostgresDatabase({ migrated: false }) : undefined
    const controller = new TestController(tempDataDir(), await freePort(), env, databaseUrl)
    await controller.boot()
    return controller
  }

  get ctx(): AppContext {
    return this.running.ctx
  }

  get dispatcher(): Dispatcher {
    return this.running.ctx.agentGateway!.dispatcher
  }

  get grpcAddress(): string {
    return `127.0.0.1:${this.grpcPort}`
  }

  private async boot(): Promise<void> {
    const config = loadConfig({
      OPSC_DATA_DIR: this.dataDir,
      OPSC_HTTP_PORT: '0',
      OPSC_GRPC_PORT: String(this.grpcPort),
      OPSC_BIND: '127.0.0.1',
      OPSC_ADMIN_PASSWORD: 'test controller passphrase',
      ...(this.databaseUrl ? { DATABASE_URL: this.databaseUrl } : {}),
      ...this.env,
    })
    const logFile = process.env.OPSC_TEST_CONTROLLER_LOG
    const log = logFile ? createLogger({ level: 'debug', destination: createWriteStream(logFile, { flags: 'a' }) }) : createLogger({ level: 'silent' })
    this.running = await startController(config, log)
  }

  /** Stops and boots again on the same ports and data; `env` changes settings from now on (e.g. a shorter heartbeat). */
  async restart(env: Record<string, string> = {}): Promise<void> {
    Object.assign(this.env, env)
    await this.running.stop()
    await this.boot()
  }

  async stop(): Promise<void> {
    await this.running?.stop()
    if (this.databaseUrl) await dropPostgresDatabase(this.databaseUrl)
  }

  async enrollmentToken(): Promise<string> {
    const { token } = await createEnrollmentToken(this.ctx, undefined, { expires_in_seconds: 600, max_uses: 1 })
    return token
  }
}

export function agentCli(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const proc = spawn(process.execPath, [AGENT_BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env } })
    let stdout = ''
    let stderr = ''
    proc.stdout.on('data', (d) => (stdout += d))
    proc.stderr.on('data', (d) => (stderr += d))
    proc.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

/** Enrols a fresh agent state dir with the controller (through `address`, default the controller's own). */
export async function enrollAgent(controller: TestController, address = controller.grpcAddress): Promise<{ agentId: string; stateDir: string }> {
  const stateDir = path.join(mkdtempSync(path.join(tmpdir(), 'opsc-agent-')), 'state')
  const token = await controller.enrollmentToken()
  const res = await agentCli(['enroll', '--controller', address, '--token', token, '--ca-fingerprint', controller.running.caFingerprint, '--state-dir', stateDir])
  if (res.code !== 0) throw new Error(`enroll failed: ${res.stderr}`)
  return { agentId: /enrolled as agent ([0-9a-f-]{36})/.exec(res.stdout)![1]!, stateDir }
}

/** A real `opsconductor-agent run` process; its JSON log lines are kept for assertions. */
export class AgentProcess {
  readonly exited: Promise<number | null>
  private readonly watcher: JsonLogWatcher

  private constructor(readonly proc: ChildProcess) {
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)))
    this.watcher = new JsonLogWatcher(proc.stderr!, `agent ${proc.pid}`)
  }

  static start(stateDir: string, args: string[] = [], env: Record<string, string> = {}): AgentProcess {
    const proc = spawn(process.execPath, [AGENT_BIN, 'run', '--state-dir', stateDir, '--reconnect-max-ms', '500', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    return new AgentProcess(proc)
  }

  get logs(): LogRecord[] {
    return this.watcher.logs
  }

  waitFor(msg: string, fields: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<LogRecord> {
    return this.watcher.waitFor(msg, fields, timeoutMs)
  }

  waitForNext(msg: string, timeoutMs = 60_000): Promise<LogRecord> {
    return this.watcher.waitForNext(msg, timeoutMs)
  }

  kill(signal: NodeJS.Signals): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal)
    return this.exited
  }
}

/** A TCP relay between agent and controller whose connections a test can cut mid-stream. */
export const CuttableProxy = { start: (targetPort: number) => BalancingProxy.start(() => [targetPort]) }
export type CuttableProxy = BalancingProxy

/** Every stored byte of one output stream of an assignment (1 stdout, 2 stderr, 3 pty, 4 file), in seq order. */
export async function storedOutput(controller: TestController, assignmentId: string, stream: number): Promise<Buffer> {
  const rows = await controller.ctx.db
    .select({ data: agentOutput.data })
    .from(agentOutput)
    .where(and(eq(agentOutput.assignmentId, assignmentId), eq(agentOutput.stream, stream)))
    .orderBy(asc(agentOutput.seq))
  return Buffer.concat(rows.map((r) => r.data))
}

/** Polls until `check` holds; for state that changes on its own (database rows, process tables). */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs = 60_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
