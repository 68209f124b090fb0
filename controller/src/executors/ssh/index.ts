import { CopyInput, ExecInput } from '../exec-input.ts'
import type { ExecutionContext, StepExecutor, StepOutcome } from '../types.ts'
import { DownloadInput, runSftpDownload, runSshCopy } from './copy.ts'
import { runSshExec } from './exec.ts'

/*
 * The SSH step types. `ssh.exec`, `ssh.copy` and `sftp.upload` force the SSH transport; the
 * engine's transport-neutral `exec`/`copy` steps call runSshExec/runSshCopy directly when a
 * target is reached over SSH, so both paths behave the same.
 */

export { connectSsh, SshError, type SshConnection, type SshErrorKind } from './connect.ts'
export { DownloadInput, INLINE_DOWNLOAD_LIMIT, runSftpDownload, runSshCopy } from './copy.ts'
export { runSshExec } from './exec.ts'

function sshTarget(x: ExecutionContext): StepOutcome | NonNullable<ExecutionContext['target']> {
  if (!x.target) return { status: 'failed', error: 'this step needs a target' }
  if (x.target.connection.type !== 'ssh') return { status: 'failed', error: `target ${x.target.name} is not reached over SSH (its connection is ${x.target.connection.type})` }
  return x.target
}

const isOutcome = (v: object): v is StepOutcome => 'status' in v

export const sshExec: StepExecutor<ExecInput> = {
  types: ['ssh.exec'],
  input: ExecInput,
  needsTarget: true,
  run(_type, input, x) {
    const t = sshTarget(x)
    return isOutcome(t) ? Promise.resolve(t) : runSshExec(t, input, x)
  },
}

export const sshCopy: StepExecutor<CopyInput> = {
  types: ['ssh.copy', 'sftp.upload'],
  input: CopyInput,
  needsTarget: true,
  run(_type, input, x) {
    const t = sshTarget(x)
    return isOutcome(t) ? Promise.resolve(t) : runSshCopy(t, input, x)
  },
}

export const sftpDownload: StepExecutor<DownloadInput> = {
  types: ['sftp.download'],
  input: DownloadInput,
  needsTarget: true,
  run(_type, input, x) {
    const t = sshTarget(x)
    return isOutcome(t) ? Promise.resolve(t) : runSftpDownload(t, input, x)
  },
}
