import { CopyInput, ExecInput } from '../exec-input.ts'
import type { TargetRow } from '../../targets/targets.sql.ts'
import type { ExecutionContext, StepExecutor, StepOutcome } from '../types.ts'
import { DownloadInput, runSftpDownload, runSshCopy } from './copy.ts'
import { runSshExec } from './exec.ts'
import { runSftpSync, SyncInput } from './sync.ts'

/*
 * The SSH step types. `ssh.exec`, `ssh.copy` and `sftp.upload` force the SSH transport; the
 * engine's transport-neutral `exec`/`copy` steps call runSshExec/runSshCopy directly when a
 * target is reached over SSH, so both paths behave the same. `sftp.download` and `sftp.sync`
 * exist only over SSH. Steps share pooled connections (pool.ts); connection tests take their own
 * (connectSsh without `pooled`) and read host facts with collectSshFacts.
 */

export { SshError, type SshConnection, type SshErrorKind, type SshFailure } from './connect.ts'
export { DownloadInput, INLINE_DOWNLOAD_LIMIT, runSftpDownload, runSshCopy } from './copy.ts'
export { runSshExec } from './exec.ts'
export { collectSshFacts } from './facts.ts'
export { closeSshPool, connectSsh, sshPoolStats, type SshPoolStats } from './pool.ts'
export { runSftpSync, SyncInput } from './sync.ts'

function sshTarget(x: ExecutionContext): StepOutcome | NonNullable<ExecutionContext['target']> {
  if (!x.target) return { status: 'failed', error: 'this step needs a target' }
  if (x.target.connection.type !== 'ssh') return { status: 'failed', error: `target ${x.target.name} is not reached over SSH (its connection is ${x.target.connection.type})` }
  return x.target
}

/** An SSH step type: its input, run on the step's target once that target is known to be an SSH one. */
function sshStep<I>(types: string[], input: StepExecutor<I>['input'], run: (target: TargetRow, input: I, x: ExecutionContext) => Promise<StepOutcome>): StepExecutor<I> {
  return {
    types,
    input,
    needsTarget: true,
    run(_type, value, x) {
      const t = sshTarget(x)
      return 'status' in t ? Promise.resolve(t) : run(t, value, x)
    },
  }
}

export const sshExec = sshStep(['ssh.exec'], ExecInput, runSshExec)
export const sshCopy = sshStep(['ssh.copy', 'sftp.upload'], CopyInput, runSshCopy)
export const sftpDownload = sshStep(['sftp.download'], DownloadInput, runSftpDownload)
export const sftpSync = sshStep(['sftp.sync'], SyncInput, runSftpSync)

/** Every SSH step executor, registered by the step registry. */
export const sshExecutors: StepExecutor<any>[] = [sshExec, sshCopy, sftpDownload, sftpSync]
