import type { TargetRow } from '../../targets/targets.sql.ts'
import type { ExecInput, Shell } from '../exec-input.ts'
import { abortOutcome, stepSignal } from '../outcome.ts'
import type { ExecutionContext, StepOutcome } from '../types.ts'
import { targetLabel, transportOptionsFor } from './connect.ts'
import { WinrmError, WsmanFault } from './errors.ts'
import { hostPool, type HostPool } from './pool.ts'
import { psScript } from '../powershell.ts'
import { ClixmlDecoder, psInvocation } from './powershell.ts'
import type { WinrmShell } from './shell.ts'

/*
 * `winrm.exec` (and `exec` on WinRM targets): the command runs in a pooled remote shell, as a
 * PowerShell script by default or through cmd.exe, with output streamed to the step as it comes.
 * Cancel and timeout terminate the remote command and discard its shell.
 */

export interface WinrmCommand {
  commandLine: string
  skipCmdShell: boolean
  stdin: Buffer[]
  /** stderr is PowerShell's and may be CLIXML. */
  powershell: boolean
}

export function planCommand(target: TargetRow, input: ExecInput): WinrmCommand | { error: string } {
  const shell: Shell = input.shell ?? 'powershell'
  if (input.run_as !== undefined) return { error: 'run_as is not supported over WinRM; use a credential for that user' }
  const stdin = input.stdin !== undefined ? [Buffer.from(input.stdin, 'utf8')] : []
  if (shell === 'cmd') {
    if (input.cwd !== undefined || Object.keys(input.env).length > 0) return { error: 'env and cwd need shell powershell (or pwsh) over WinRM' }
    if (input.command.length > 8000) return { error: 'cmd commands over 8000 characters cannot run over WinRM; use shell powershell' }
    return { commandLine: input.command, skipCmdShell: false, stdin, powershell: false }
  }
  if (shell !== 'powershell' && shell !== 'pwsh') return { error: `shell ${shell} is not available over WinRM on ${target.name}: use powershell, pwsh or cmd` }
  const inv = psInvocation(psScript(input), shell)
  if (inv.stdinScript !== undefined) {
    if (input.stdin !== undefined) return { error: 'a command this long travels over stdin, so it cannot be given stdin as well; copy a script to the target and run that' }
    return { commandLine: inv.commandLine, skipCmdShell: true, stdin: [Buffer.from(inv.stdinScript, 'utf8')], powershell: true }
  }
  return { commandLine: inv.commandLine, skipCmdShell: true, stdin, powershell: true }
}

export interface RunResult {
  exitCode: number | null
}

/**
 * Runs one command in a shell from `pool`, streaming output to `write`. A reused shell that the
 * server has dropped (idle timeout, service restart) is replaced once, before the command starts.
 */
export async function runPooled(pool: HostPool, cmd: WinrmCommand, write: (stream: 'stdout' | 'stderr', data: Buffer | string) => void, signal: AbortSignal, onStarted?: (shell: WinrmShell, commandId: string) => void): Promise<RunResult> {
  for (let attempt = 0; ; attempt++) {
    const shell = await pool.acquire(signal)
    const reused = shell.runs > 0
    let started = false
    const decoder = cmd.powershell ? new ClixmlDecoder() : null
    try {
      const r = await shell.run({
        commandLine: cmd.commandLine,
        skipCmdShell: cmd.skipCmdShell,
        stdin: cmd.stdin,
        signal,
        onStarted: (id) => {
          started = true
          onStarted?.(shell, id)
        },
        onOutput: (stream, data) => {
          if (stream === 'stderr' && decoder) {
            const text = decoder.push(data)
            if (text) write('stderr', text)
          } else write(stream, data)
        },
      })
      const rest = decoder?.end()
      if (rest) write('stderr', rest)
      return r
    } catch (err) {
      if (attempt === 0 && reused && !started && err instanceof WsmanFault && !signal.aborted) {
        shell.broken = true
        continue
      }
      throw err
    } finally {
      pool.release(shell)
    }
  }
}

export function exitOutcome(exitCode: number | null, successCodes: number[]): StepOutcome {
  if (exitCode === null) return { status: 'failed', exitCode: null, error: 'the command ended without an exit code' }
  if (successCodes.includes(exitCode)) return { status: 'succeeded', exitCode }
  return { status: 'failed', exitCode, error: `exit code ${exitCode}` }
}

/** Runs `input` on a WinRM target: the engine's `winrm.exec` step, and `exec` on WinRM targets. */
export async function runWinrmExec(target: TargetRow, input: ExecInput, x: ExecutionContext): Promise<StepOutcome> {
  const plan = planCommand(target, input)
  if ('error' in plan) return { status: 'failed', error: plan.error }
  const signal = stepSignal(x)
  if (signal.aborted) return abortOutcome(x)
  try {
    const pool = hostPool(await transportOptionsFor(target, { ctx: x.ctx, log: x.log, credential: x.credential, signal }))
    const r = await runPooled(pool, plan, (s, d) => x.output.write(s, d), signal, (shell, commandId) =>
      x.remember?.({ kind: 'winrm.command', target_id: target.id, host: target.address, shell_id: shell.id, command_id: commandId }),
    )
    return exitOutcome(r.exitCode, input.success_exit_codes)
  } catch (err) {
    if (signal.aborted) return abortOutcome(x)
    if (err instanceof WinrmError) return { status: 'failed', error: `${targetLabel(target)}: ${err.message}` }
    throw err
  }
}
