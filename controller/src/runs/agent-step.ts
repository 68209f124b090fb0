import { createHash } from 'node:crypto'
import { Shell } from '../../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import type { AssignmentAction } from '../agents/assignments/dispatcher.ts'
import type { AssignmentOutcome } from '../agents/assignments/events.ts'
import type { AppContext } from '../context.ts'
import { copyContent, copyMode, type CopyInput, type ExecInput, type Shell as ShellName } from '../executors/exec-input.ts'
import type { ExecutionContext } from '../executors/types.ts'
import type { StepDef } from '../jobs/definition.ts'
import type { Outcome } from './execute.ts'
import type { SecretMasker } from '../../../proto/src/masking.ts'
import type { StepRunRow } from './runs.sql.ts'

const SHELLS: Record<ShellName, Shell> = {
  sh: Shell.SH,
  bash: Shell.BASH,
  zsh: Shell.ZSH,
  powershell: Shell.POWERSHELL,
  pwsh: Shell.PWSH,
  cmd: Shell.CMD,
}

/** How long an offline agent may still pick the step up: the step's own time budget. */
const deliveryTtl = (step: StepDef) => step.timeout_sec * 1000

function execAction(input: ExecInput, step: StepDef, osType: string | undefined): AssignmentAction {
  const shell = input.shell ?? (osType === 'windows' ? 'powershell' : 'sh')
  return {
    case: 'exec',
    value: {
      command: { case: 'script', value: { shell: SHELLS[shell], script: input.command } },
      env: input.env,
      cwd: input.cwd ?? '',
      timeoutMs: BigInt(step.timeout_sec * 1000),
      runAsUser: input.run_as ?? '',
      stdin: input.stdin !== undefined ? Buffer.from(input.stdin, 'utf8') : new Uint8Array(),
      ...(input.pty ? { pty: { term: 'xterm-256color', size: { columns: 200, rows: 50 } } } : {}),
    },
  }
}

/**
 * A step through the target's agent. The assignment id is the step run's id: a controller that
 * takes over a step run finds its assignment and waits for it instead of sending it twice.
 */
export async function agentStep(ctx: AppContext, row: StepRunRow, step: StepDef, action: 'exec' | 'copy', input: ExecInput | CopyInput, x: ExecutionContext, masker: SecretMasker, takenOver: boolean): Promise<Outcome> {
  const dispatcher = ctx.agentGateway?.dispatcher
  if (!dispatcher) return { status: 'system_error', error: 'this controller process serves no agents' }
  if (!row.agentId) return { status: 'failed', error: `target ${x.target?.name} has no agent enrolled` }
  // Only a step run taken over from a stopped controller can have its assignment already.
  let outcome: AssignmentOutcome | undefined = takenOver ? await dispatcher.outcome(row.id) : undefined
  let done: Promise<AssignmentOutcome>
  if (outcome) {
    done = dispatcher.waitFor(row.id)
  } else {
    let assignment: AssignmentAction
    let content: Uint8Array | undefined
    if (action === 'exec') assignment = execAction(input as ExecInput, step, x.target?.osType)
    else {
      const copy = input as CopyInput
      content = copyContent(copy)
      assignment = {
        case: 'putFile',
        value: {
          path: copy.destination,
          size: BigInt(content.length),
          sha256: createHash('sha256').update(content).digest(),
          mode: copyMode(copy),
          createParents: copy.create_parents,
          overwrite: copy.overwrite,
        },
      }
    }
    const dispatched = await dispatcher.dispatch(row.agentId, assignment, {
      assignmentId: row.id,
      runId: row.runId,
      stepId: row.id,
      ttlMs: deliveryTtl(step),
      maskValues: masker.patterns,
      ...(content ? { content } : {}),
    })
    done = dispatched.done
  }
  const onAbort = () => void dispatcher.cancel(row.id, x.signal.reason === 'timed_out' ? 'the step timed out' : 'the run was cancelled').catch(() => {})
  if (x.signal.aborted) onAbort()
  else x.signal.addEventListener('abort', onAbort, { once: true })
  try {
    outcome = await done
  } finally {
    x.signal.removeEventListener('abort', onAbort)
  }
  return fromAssignment(outcome, action === 'exec' ? (input as ExecInput).success_exit_codes : [0], x.signal)
}

/** An assignment's final outcome as the step run's: exit codes judged by the step, an interruption we asked for is the cancel or timeout. */
export function fromAssignment(o: AssignmentOutcome, successCodes: number[], signal: AbortSignal): Outcome {
  const base = { exitCode: o.exitCode, signal: o.signal, outputBytes: o.outputBytes, truncated: o.truncated, ...(o.fileSha256 ? { result: { sha256: o.fileSha256, size: o.fileSize } } : {}) }
  switch (o.status) {
    case 'succeeded':
    case 'failed':
      if (o.error && o.exitCode === null) return { ...base, status: 'failed', error: o.error }
      if (o.exitCode !== null && successCodes.includes(o.exitCode)) return { ...base, status: 'succeeded' }
      return { ...base, status: 'failed', error: o.error ?? (o.signal ? `killed by ${o.signal}` : `exit code ${o.exitCode}`) }
    case 'timed_out':
      return { ...base, status: 'timed_out', error: 'the step timed out' }
    case 'interrupted':
    case 'cancelled':
      if (signal.aborted) return { ...base, status: signal.reason === 'timed_out' ? 'timed_out' : 'cancelled', error: o.error }
      return { ...base, status: 'interrupted', error: o.error ?? 'the agent stopped the step (it restarted or shut down)' }
    case 'agent_lost':
      return { ...base, status: 'agent_lost', error: o.error }
    case 'undelivered':
      return { ...base, status: 'failed', error: o.error ?? 'the agent was not connected before the delivery deadline' }
    case 'rejected':
      return { ...base, status: 'system_error', error: `the agent refused the assignment (${o.rejectReason}): ${o.error ?? ''}`.trim() }
    default:
      return { ...base, status: 'system_error', error: `unexpected assignment status ${o.status}` }
  }
}
