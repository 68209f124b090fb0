import { CopyInput, ExecInput } from '../exec-input.ts'
import type { StepExecutor } from '../types.ts'
import { DownloadInput, runSftpDownload, runSshCopy } from './copy.ts'
import { runSshExec } from './exec.ts'
import { runSftpSync, SyncInput } from './sync.ts'
import { transportStep } from '../transport-step.ts'

/*
 * The SSH step types. `ssh.exec`, `ssh.copy` and `sftp.upload` force the SSH transport; the
 * engine's transport-neutral `exec`/`copy` steps call runSshExec/runSshCopy directly when a
 * target is reached over SSH, so both paths behave the same. `sftp.download` and `sftp.sync`
 * exist only over SSH. Steps share pooled connections (pool.ts); connection tests take their own
 * (connectSsh without `pooled`) and read host facts with collectSshFacts.
 */

export type { SshConnection } from './connect.ts'
export { SshError, type SshErrorKind, type SshFailure } from './errors.ts'
export { DownloadInput, INLINE_DOWNLOAD_LIMIT, runSftpDownload, runSshCopy } from './copy.ts'
export { runSshExec } from './exec.ts'
export { collectSshFacts } from './facts.ts'
export { closeSshPool, connectSsh, sshPoolStats, type SshPoolStats } from './pool.ts'
export { runSftpSync, SyncInput } from './sync.ts'

export const sshExec = transportStep('ssh', ['ssh.exec'], ExecInput, runSshExec)
export const sshCopy = transportStep('ssh', ['ssh.copy', 'sftp.upload'], CopyInput, runSshCopy)
export const sftpDownload = transportStep('ssh', ['sftp.download'], DownloadInput, runSftpDownload)
export const sftpSync = transportStep('ssh', ['sftp.sync'], SyncInput, runSftpSync)

/** Every SSH step executor, registered by the step registry. */
export const sshExecutors: StepExecutor<any>[] = [sshExec, sshCopy, sftpDownload, sftpSync]
