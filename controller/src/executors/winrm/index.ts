import { CopyInput, ExecInput } from '../exec-input.ts'
import { runWinrmCopy } from './copy.ts'
import { runWinrmExec } from './exec.ts'
import { transportStep } from '../transport-step.ts'

/*
 * The WinRM step types. `winrm.exec` and `winrm.copy` force the WinRM transport; the engine's
 * transport-neutral `exec`/`copy` steps call the same executors when a target is reached over WinRM.
 */

export { WinrmError, WsmanFault, type WinrmErrorKind } from './errors.ts'
export { closeWinrmPools } from './pool.ts'
export { probeWinrm } from './probe.ts'
export { runWinrmCopy } from './copy.ts'
export { runWinrmExec } from './exec.ts'

export const winrmExec = transportStep('winrm', ['winrm.exec'], ExecInput, runWinrmExec)
export const winrmCopy = transportStep('winrm', ['winrm.copy'], CopyInput, runWinrmCopy)
