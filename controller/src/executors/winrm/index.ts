import { CopyInput, ExecInput } from '../exec-input.ts'
import type { TargetRow } from '../../targets/targets.sql.ts'
import type { ExecutionContext, StepExecutor, StepOutcome } from '../types.ts'
import { runWinrmCopy } from './copy.ts'
import { runWinrmExec } from './exec.ts'

/*
 * The WinRM step types. `winrm.exec` and `winrm.copy` force the WinRM transport; the engine's
 * transport-neutral `exec`/`copy` steps call the same executors when a target is reached over WinRM.
 */

export { WinrmError, WsmanFault, type WinrmErrorKind } from './errors.ts'
export { closeWinrmPools } from './pool.ts'
export { probeWinrm } from './probe.ts'
export { runWinrmCopy } from './copy.ts'
export { runWinrmExec } from './exec.ts'

function winrmStep<I>(types: string[], input: StepExecutor<I>['input'], run: (target: TargetRow, input: I, x: ExecutionContext) => Promise<StepOutcome>): StepExecutor<I> {
  return {
    types,
    input,
    needsTarget: true,
    run(_type, value, x) {
      if (!x.target) return Promise.resolve({ status: 'failed', error: 'this step needs a target' })
      if (x.target.connection.type !== 'winrm') return Promise.resolve({ status: 'failed', error: `target ${x.target.name} is not reached over WinRM (its connection is ${x.target.connection.type})` })
      return run(x.target, value, x)
    },
  }
}

export const winrmExec = winrmStep(['winrm.exec'], ExecInput, runWinrmExec)
export const winrmCopy = winrmStep(['winrm.copy'], CopyInput, runWinrmCopy)
