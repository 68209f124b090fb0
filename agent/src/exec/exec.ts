import { existsSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import path from 'node:path'
import type { ExecAction } from '../../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { spawnPiped, type SpawnSpec } from './piped.ts'
import { spawnPty } from './pty.ts'
import { resolveCommand } from './shells.ts'
import { supervise, type SpawnedChild } from './supervise.ts'
import { lookupUser, type PosixUser } from './users.ts'

export type OutputStreamName = 'stdout' | 'stderr' | 'pty' | 'file'

export interface ExecOutcome {
  exitCode?: number
  signal?: string
  timedOut: boolean
  interrupted: boolean
  error?: string
  startedAtMs: number
  finishedAtMs: number
  fileSha256?: Uint8Array
  fileSize?: number
}

export interface RunOptions {
  /** Called in order with the raw bytes, never transformed. */
  onOutput(stream: OutputStreamName, data: Buffer): void
  /** Abort = cancel: SIGTERM to the process group, SIGKILL after graceMs; the outcome is interrupted. */
  signal: AbortSignal
  /** Default 5000. */
  graceMs?: number
  /** Opened secrets, added after action.env. */
  extraEnv?: Record<string, string>
}

const DEFAULT_GRACE_MS = 5000

/** Runs an exec action to its end. Never rejects: anything that keeps it from running is `error`. */
export async function runExec(action: ExecAction, opts: RunOptions): Promise<ExecOutcome> {
  const startedAtMs = Date.now()
  const end = (rest: Partial<ExecOutcome>): ExecOutcome => ({ timedOut: false, interrupted: false, ...rest, startedAtMs, finishedAtMs: Date.now() })
  try {
    if (opts.signal.aborted) return end({ interrupted: true })
    const prepared = await prepare(action, opts)
    if ('error' in prepared) return end(prepared)
    const child: SpawnedChild | { error: string } = action.pty ? spawnPty(prepared, action.pty) : await spawnPiped(prepared)
    if ('error' in child) return end(child)
    const result = await supervise(child, { timeoutMs: Number(action.timeoutMs), signal: opts.signal, graceMs: opts.graceMs ?? DEFAULT_GRACE_MS })
    return end(result)
  } catch (err) {
    return end({ error: `exec failed: ${(err as Error).message}` })
  }
}

/** Everything that can be checked before spawning: user, environment, cwd, program. */
async function prepare(action: ExecAction, opts: RunOptions): Promise<SpawnSpec | { error: string }> {
  let user: PosixUser | undefined
  if (action.runAsUser) {
    const found = await runAsUser(action.runAsUser)
    if ('error' in found) return found
    user = found
  }
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v
  // As a login would: the target user's identity, unless the action says otherwise.
  if (user) Object.assign(env, { HOME: user.home, USER: user.name, LOGNAME: user.name })
  Object.assign(env, action.env, opts.extraEnv)

  const cwd = action.cwd || (user ? (existsSync(user.home) ? user.home : '/') : process.cwd())
  if (!path.isAbsolute(cwd)) return { error: `cwd ${cwd} is not an absolute path` }
  const cwdStat = await stat(cwd).catch(() => undefined)
  if (!cwdStat) return { error: `cwd ${cwd} does not exist` }
  if (!cwdStat.isDirectory()) return { error: `cwd ${cwd} is not a directory` }

  const command = resolveCommand(action.command, env)
  if ('error' in command) return command
  return { ...command, cwd, env, stdin: action.stdin, uid: user?.uid, gid: user?.gid, onOutput: opts.onOutput }
}

async function runAsUser(name: string): Promise<PosixUser | { error: string }> {
  if (process.platform === 'win32') return { error: 'run_as_user is not supported on Windows' }
  const user = await lookupUser(name)
  if (!user) return { error: `run_as_user: no user ${name}` }
  // Switching user needs root; running as oneself needs nothing.
  if (process.getuid?.() !== 0 && process.getuid?.() !== user.uid) {
    return { error: `run_as_user ${name} needs the agent to run as root` }
  }
  return user
}
