import { randomBytes } from 'node:crypto'
import type { TargetRow } from '../../targets/targets.sql.ts'
import type { ExecInput, Shell } from '../exec-input.ts'
import { abortOutcome, stepSignal } from '../outcome.ts'
import type { ExecutionContext, StepOutcome } from '../types.ts'
import { killCommand, MarkerScanner, posixCommand, POSIX_SHELLS, powershellCommand, shQuote } from './command.ts'
import { staleConnection, type ConnectDeps, type SshConnection } from './connect.ts'
import { SshError } from './errors.ts'
import { capture, openExec, openSftp, sftpCall } from './channel.ts'
import { connectSsh } from './pool.ts'
import type { SshChannel, SshClient } from './ssh2.ts'

/** How long a cancel waits for the wrapper to report its process group before giving up on a clean kill. */
const PGID_WAIT_MS = 5_000
/** After the kill script, how long the command's channel gets to report its end. */
const CLOSE_WAIT_MS = 3_000

/** What connectSsh needs from a step's context, with the step's signal (see stepSignal). */
export function connectDeps(x: ExecutionContext, signal: AbortSignal): ConnectDeps {
  return { ctx: x.ctx, log: x.log, credential: (ref) => x.credential(ref), signal }
}

/** A connection failure is the target's failure (`failed`); an abort while connecting is the abort. */
export function connectFailure(err: unknown, x: ExecutionContext, signal: AbortSignal): StepOutcome {
  if (signal.aborted) return abortOutcome(x)
  if (err instanceof SshError) return { status: 'failed', error: err.message }
  throw err
}

/** The step's (pooled) connection, or the outcome that ends the step (already aborted, or the connection failed). */
export async function connectForStep(target: TargetRow, x: ExecutionContext, signal: AbortSignal): Promise<SshConnection | StepOutcome> {
  if (signal.aborted) return abortOutcome(x)
  try {
    return await connectSsh(target, connectDeps(x, signal), { pooled: true })
  } catch (err) {
    return connectFailure(err, x, signal)
  }
}

/**
 * Commands travel as one argument of the exec request; past this size (Linux allows 128 KiB per
 * argument, sshd 256 KiB per request) they are staged in a temp file over SFTP and sourced.
 */
const MAX_INLINE_COMMAND_BYTES = 96 * 1024
const MAX_WINDOWS_COMMAND_BYTES = 24 * 1024

type Plan = { shell: Shell; command: string; posix: boolean; staged: boolean } | { error: string }

function plan(target: TargetRow, input: ExecInput, nonce: string): Plan {
  const windows = target.osType === 'windows'
  const shell: Shell = input.shell ?? (windows ? 'powershell' : 'sh')
  if (!windows) {
    if (!POSIX_SHELLS.includes(shell)) return { error: `shell ${shell} is for Windows targets; ${target.name} is ${target.osType}: use sh, bash or zsh` }
    const command = posixCommand(input, shell, nonce)
    const staged = Buffer.byteLength(command) > MAX_INLINE_COMMAND_BYTES
    if (staged && input.run_as !== undefined) return { error: `commands over ${MAX_INLINE_COMMAND_BYTES / 1024} KiB cannot be combined with run_as over SSH; copy a script to the target and run that` }
    return { shell, command, posix: true, staged }
  }
  if (POSIX_SHELLS.includes(shell)) return { error: `shell ${shell} is not available on Windows target ${target.name} over SSH: use powershell, pwsh or cmd` }
  if (input.run_as !== undefined) return { error: 'run_as is not supported over SSH to Windows targets' }
  if (Buffer.byteLength(input.command) > MAX_WINDOWS_COMMAND_BYTES) return { error: `commands over ${MAX_WINDOWS_COMMAND_BYTES / 1024} KiB cannot run over SSH on Windows targets; copy a script to the target and run that` }
  if (shell === 'cmd') {
    if (input.cwd !== undefined || Object.keys(input.env).length > 0) return { error: 'env and cwd need shell powershell (or pwsh) on Windows targets over SSH' }
    return { shell, command: `cmd.exe /d /c ${input.command}`, posix: false, staged: false }
  }
  return { shell, command: powershellCommand(input, shell === 'pwsh' ? 'pwsh' : 'powershell'), posix: false, staged: false }
}

/** The first channel of a step could not be opened on a reused connection that had died. */
class StaleConnectionError extends Error {
  constructor(cause: unknown) {
    super('stale pooled connection', { cause })
  }
}

/**
 * Writes a long command to a private temp file whose first line deletes it (the shell keeps
 * reading the open file), and returns the command that sources it plus a best-effort cleanup for
 * when it never ran.
 */
async function stage(conn: SshConnection, command: string, nonce: string): Promise<{ command: string; cleanup(): Promise<void> }> {
  const path = `/tmp/.opsc-cmd-${nonce}`
  const sftp = await openSftp(conn.client).catch((err: unknown) => {
    if (staleConnection(conn, err)) throw new StaleConnectionError(err)
    throw new SshError('lost', `cannot stage the command on ${conn.label} (SFTP): ${(err as Error).message}`, { cause: err })
  })
  try {
    const data = Buffer.from(`rm -f -- ${shQuote(path)}\n${command}\n`)
    const handle = await sftpCall<Buffer>((cb) => sftp.open(path, 'wx', { mode: 0o600 }, cb))
    for (let off = 0; off < data.length; off += 32 * 1024) {
      await sftpCall((cb) => sftp.write(handle, data, off, Math.min(32 * 1024, data.length - off), off, cb))
    }
    await sftpCall((cb) => sftp.close(handle, cb))
  } catch (err) {
    throw new SshError('lost', `cannot stage the command on ${conn.label} (/tmp over SFTP): ${(err as Error).message}`, { cause: err })
  } finally {
    // Not kept open while the command runs: on a pooled connection every channel counts.
    sftp.end()
  }
  return {
    command: `. ${shQuote(path)}`,
    // The script removes itself when it runs; this is for when it never did.
    cleanup: () => capture(conn.client, `rm -f -- ${shQuote(path)}`, 10_000).then(() => {}),
  }
}

interface ChannelEnd {
  code: number | null
  signal: string | null
  /** False when the channel closed without an exit status (the connection dropped). */
  reported: boolean
}

/** Streams a running command's output to the sink, strips the pgid marker, and reports how it ended. */
function watch(channel: SshChannel, x: ExecutionContext, scanner: MarkerScanner | null, pty: boolean, onPgid: (pgid: number) => void): Promise<ChannelEnd> {
  return new Promise((resolve) => {
    const end: ChannelEnd = { code: null, signal: null, reported: false }
    const markerStream = pty ? 'stdout' : 'stderr'
    const pass = (stream: 'stdout' | 'stderr', chunk: Buffer) => {
      if (scanner && stream === markerStream && !scanner.settled) {
        chunk = scanner.feed(chunk)
        if (scanner.pgid !== undefined) onPgid(scanner.pgid)
      }
      if (chunk.length > 0) x.output.write(stream, chunk)
    }
    channel.on('data', (d: Buffer) => pass('stdout', d))
    channel.stderr.on('data', (d: Buffer) => pass('stderr', d))
    channel.on('error', () => {})
    channel.on('exit', (code, signal) => {
      end.reported = true
      end.code = typeof code === 'number' ? code : null
      end.signal = signal ? (signal.startsWith('SIG') ? signal : `SIG${signal}`) : null
    })
    channel.on('close', () => {
      if (scanner && !scanner.settled) {
        const rest = scanner.flush()
        if (rest.length > 0) x.output.write(markerStream, rest)
      }
      resolve(end)
    })
  })
}

function writeStdin(channel: SshChannel, input: ExecInput): void {
  if (input.stdin !== undefined) channel.write(input.stdin)
  // Through a pty, end of input is ^D (twice when the last line is unterminated); otherwise EOF.
  if (input.pty) channel.write(input.stdin && !input.stdin.endsWith('\n') ? '\x04\x04' : '\x04')
  else channel.end()
}

function outcomeOf(end: ChannelEnd, input: ExecInput, label: string): StepOutcome {
  if (!end.reported) return { status: 'failed', error: `the connection to ${label} was lost before the command finished` }
  if (end.signal !== null) return { status: 'failed', exitCode: null, signal: end.signal, error: `killed by signal ${end.signal}` }
  const code = end.code ?? -1
  if (input.success_exit_codes.includes(code)) return { status: 'succeeded', exitCode: code }
  return { status: 'failed', exitCode: code, error: `exit code ${code}` }
}

/**
 * Stops a running command: TERM then KILL to its process group from a second channel, then the
 * channel itself is closed. Without a known group (the wrapper never reported it), only the
 * channel is closed.
 */
async function stop(client: SshClient, channel: SshChannel, pgid: Promise<number | undefined>, ended: Promise<ChannelEnd>, input: ExecInput): Promise<void> {
  const known = await Promise.race([pgid, ended.then(() => undefined)])
  if (known !== undefined) await capture(client, killCommand(known, input.run_as), 10_000)
  const timer = new Promise((r) => setTimeout(r, CLOSE_WAIT_MS))
  await Promise.race([ended, timer])
  channel.close()
}

/** Runs `input` on an SSH target: the engine's `ssh.exec` step, and the `exec` step on SSH targets. */
export async function runSshExec(target: TargetRow, input: ExecInput, x: ExecutionContext): Promise<StepOutcome> {
  const nonce = randomBytes(6).toString('hex')
  const p = plan(target, input, nonce)
  if ('error' in p) return { status: 'failed', error: p.error }
  const signal = stepSignal(x)
  // A pooled connection that died since its last step gets replaced once.
  for (let attempt = 0; ; attempt++) {
    const conn = await connectForStep(target, x, signal)
    if ('status' in conn) return conn
    let staged: Awaited<ReturnType<typeof stage>> | undefined
    let keep = true
    try {
      let command = p.command
      if (p.staged) {
        staged = await stage(conn, input.command, nonce)
        command = posixCommand({ ...input, command: staged.command }, p.shell, nonce)
      }
      // A staged command proved the connection alive moments ago; only a first channel can find it stale.
      const run = await execOn(conn, target, input, x, signal, { command, posix: p.posix }, nonce, attempt === 0 && !staged)
      keep = run.healthy
      return run.outcome
    } catch (err) {
      if (err instanceof StaleConnectionError) {
        keep = false
        if (!signal.aborted) continue
      }
      if (signal.aborted) return abortOutcome(x)
      if (err instanceof SshError) return { status: 'failed', error: err.message }
      throw err
    } finally {
      await staged?.cleanup()
      if (keep) conn.close()
      else (conn.discard ?? conn.close)()
    }
  }
}

/** `healthy` is false when the channel never closed after a stop: the connection under it is not reused. */
async function execOn(conn: SshConnection, target: TargetRow, input: ExecInput, x: ExecutionContext, signal: AbortSignal, p: { command: string; posix: boolean }, nonce: string, mayRetry: boolean): Promise<{ outcome: StepOutcome; healthy: boolean }> {
  let resolvePgid!: (pgid: number | undefined) => void
  const pgid = new Promise<number | undefined>((r) => (resolvePgid = r))
  const scanner = p.posix ? new MarkerScanner(nonce) : null
  let ended!: Promise<ChannelEnd>
  let channel: SshChannel
  try {
    channel = await openExec(conn.client, p.command, input.pty, (ch) => {
      ended = watch(ch, x, scanner, input.pty, (id) => {
        resolvePgid(id)
        x.remember?.({ kind: 'ssh.pgid', target_id: target.id, host: target.address, pgid: id, run_as: input.run_as ?? null })
      })
    })
  } catch (err) {
    if (signal.aborted) return { outcome: abortOutcome(x), healthy: true }
    if (mayRetry && staleConnection(conn, err)) throw new StaleConnectionError(err)
    return { outcome: { status: 'failed', error: `${conn.label} refused to run the command: ${(err as Error).message}` }, healthy: conn.alive?.() !== false }
  }
  setTimeout(() => resolvePgid(undefined), PGID_WAIT_MS).unref()
  writeStdin(channel, input)

  // After a stop, a channel that still does not close (a dead connection) is given up on.
  let stopping: Promise<void> | undefined
  let giveUp!: (v: null) => void
  const gaveUp = new Promise<null>((r) => (giveUp = r))
  const onAbort = () => {
    stopping = stop(conn.client, channel, pgid, ended, input)
    void stopping.then(() => setTimeout(() => giveUp(null), CLOSE_WAIT_MS).unref())
  }
  if (signal.aborted) onAbort()
  else signal.addEventListener('abort', onAbort, { once: true })
  try {
    const end = await Promise.race([ended, gaveUp])
    if (stopping) {
      // The kill script finishes (it is bounded) before the connection under it is released.
      await stopping
      return { outcome: { ...abortOutcome(x), ...(end?.reported ? { exitCode: end.code, signal: end.signal } : {}) }, healthy: end !== null }
    }
    return { outcome: outcomeOf(end!, input, conn.label), healthy: end!.reported }
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}
