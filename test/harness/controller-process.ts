import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..')
export const CONTROLLER_BIN = path.join(REPO_ROOT, 'controller/bin/opsconductor.js')

export interface ControllerProcess {
  proc: ChildProcess
  dataDir: string
  httpPort: number
  grpcPort: number
  /** The generated CA (PEM) from the data dir. */
  ca: string
  baseUrl: string
  logs: Record<string, unknown>[]
  stderr(): string
  /** Sends the signal and resolves with the exit code and how long the exit took. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; durationMs: number }>
}

/** Longer than the controller's own stop deadline, so its forced exit is seen first. */
const STOP_WAIT_MS = 45_000

export function tempDataDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'opsc-data-'))
}

/** Runs the real `opsconductor` CLI with the given arguments and waits for it to exit. */
export function runCli(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 30_000) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const proc = spawn(process.execPath, [CONTROLLER_BIN, ...args], { env: { ...baseEnv(), ...env }, cwd: REPO_ROOT })
    let stdout = ''
    let stderr = ''
    proc.stdout.on('data', (d) => (stdout += d))
    proc.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs)
    proc.on('error', reject)
    proc.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

function baseEnv(): Record<string, string | undefined> {
  // A test's own settings must not leak in from the developer's shell.
  const env = { ...process.env }
  for (const key of Object.keys(env)) if (key.startsWith('OPSC_') || key === 'DATABASE_URL') delete env[key]
  return { ...env, OPSC_LOG_LEVEL: 'info' }
}

/** Starts a controller process on ephemeral loopback ports and waits for its `controller.started` line. */
export async function startControllerProcess(opts: { dataDir?: string; env?: Record<string, string> } = {}): Promise<ControllerProcess> {
  const dataDir = opts.dataDir ?? tempDataDir()
  // OPSC_CONTROLLER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof": profile the controllers a test or bench starts.
  const nodeArgs = process.env.OPSC_CONTROLLER_NODE_ARGS?.split(' ').filter(Boolean) ?? []
  const proc = spawn(process.execPath, [...nodeArgs, CONTROLLER_BIN, 'controller'], {
    cwd: REPO_ROOT,
    env: { ...baseEnv(), OPSC_DATA_DIR: dataDir, OPSC_HTTP_PORT: '0', OPSC_GRPC_PORT: '0', OPSC_BIND: '127.0.0.1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  proc.stderr!.on('data', (d) => (stderr += d))
  const logs: Record<string, unknown>[] = []
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  const started = new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      let record: Record<string, unknown>
      try {
        record = JSON.parse(line) as Record<string, unknown>
      } catch {
        return
      }
      logs.push(record)
      if (record.msg === 'controller.started') resolve(record)
    })
    void exited.then((code) => reject(new Error(`controller exited with ${code} before starting: ${stderr.trim()}`)))
  })
  const record = await started
  const httpPort = Number(record.httpPort)
  const ca = opts.env?.OPSC_TLS_CERT ? '' : readFileSync(path.join(dataDir, 'tls', 'ca.crt'), 'utf8')
  return {
    proc,
    dataDir,
    httpPort,
    grpcPort: Number(record.grpcPort),
    ca,
    baseUrl: `https://127.0.0.1:${httpPort}`,
    logs,
    stderr: () => stderr,
    async stop(signal = 'SIGTERM') {
      const t0 = Date.now()
      if (proc.exitCode === null) proc.kill(signal)
      // A stop that hangs is a bug to report with what the controller last said, never a hung suite.
      let timer: NodeJS.Timeout | undefined
      const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), STOP_WAIT_MS)))
      const code = await Promise.race([exited, hung])
      clearTimeout(timer)
      if (code === 'hung') {
        proc.kill('SIGKILL')
        await exited
        const tail = logs.slice(-15).map((l) => JSON.stringify(l)).join('\n')
        throw new Error(`controller did not exit within ${STOP_WAIT_MS} ms of ${signal}; its last log lines:\n${tail}\n${stderr.slice(-2000)}`)
      }
      return { code, durationMs: Date.now() - t0 }
    },
  }
}
