import { createHash, randomBytes } from 'node:crypto'
import { link, lstat, mkdir, open, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { FileChunk, PutFileAction } from '../../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import type { ExecOutcome } from './exec.ts'
import { resolveTarget } from './safe-path.ts'
import { lookupGroupId, lookupUserId } from './users.ts'

export interface PutFileOptions {
  /** When set and non-empty, the target's real path must lie inside one of these. */
  allowedRoots?: string[]
}

/**
 * Receives a put_file's chunks. write() never rejects: the first failure is kept, later chunks
 * are ignored, and finish() reports it. finish() and abort() return the same outcome if repeated.
 */
export interface PutFileWriter {
  write(chunk: FileChunk): Promise<void>
  finish(): Promise<ExecOutcome>
  abort(reason: string): Promise<ExecOutcome>
}

export function startPutFile(action: PutFileAction, opts: PutFileOptions): PutFileWriter {
  return new PutFile(action, opts)
}

class Failure extends Error {}

// Content goes to a 0600 temp file beside the target and is renamed into place only once size
// and SHA-256 match, so the target is never half-written; every failure removes the temp file.
class PutFile implements PutFileWriter {
  private readonly startedAtMs = Date.now()
  private queue: Promise<void>
  private failure?: string
  private outcome?: Promise<ExecOutcome>
  private target = ''
  private temp?: string
  private file?: FileHandle
  private existingMode?: number
  private written = 0n
  private readonly hash = createHash('sha256')

  constructor(
    private readonly action: PutFileAction,
    private readonly opts: PutFileOptions,
  ) {
    this.queue = this.step(() => this.open())
  }

  write(chunk: FileChunk): Promise<void> {
    if (this.outcome) return Promise.resolve() // finished or aborted: nothing more is written
    this.queue = this.queue.then(() => this.step(() => this.append(chunk)))
    return this.queue
  }

  finish(): Promise<ExecOutcome> {
    this.outcome ??= this.queue.then(async () => {
      await this.step(() => this.commit())
      return this.end()
    })
    return this.outcome
  }

  abort(reason: string): Promise<ExecOutcome> {
    this.outcome ??= this.queue.then(async () => {
      if (this.failure === undefined) await this.fail(`put_file aborted: ${reason}`)
      return this.end(true)
    })
    return this.outcome
  }

  /** Runs one stage unless an earlier one failed; a Failure or any error becomes the failure. */
  private async step(stage: () => Promise<void>): Promise<void> {
    if (this.failure !== undefined) return
    try {
      await stage()
    } catch (err) {
      await this.fail(err instanceof Failure ? err.message : `put_file ${this.action.path}: ${(err as Error).message}`)
    }
  }

  private async fail(message: string): Promise<void> {
    this.failure = message
    await this.file?.close().catch(() => {})
    this.file = undefined
    if (this.temp) await rm(this.temp, { force: true }).catch(() => {})
  }

  private end(interrupted = false): ExecOutcome {
    const base = { timedOut: false, interrupted, startedAtMs: this.startedAtMs, finishedAtMs: Date.now() }
    if (this.failure !== undefined) return { ...base, error: this.failure }
    return { ...base, exitCode: 0, fileSha256: new Uint8Array(this.hash.copy().digest()), fileSize: Number(this.written) }
  }

  private async open(): Promise<void> {
    const { action } = this
    const resolved = await resolveTarget(action.path, this.opts.allowedRoots)
    if ('error' in resolved) throw new Failure(resolved.error)
    this.target = resolved.real
    const dir = path.dirname(this.target)
    const dirStat = await stat(dir).catch(() => undefined)
    if (!dirStat) {
      if (!action.createParents) throw new Failure(`directory ${path.dirname(action.path)} does not exist`)
      await mkdir(dir, { recursive: true })
    } else if (!dirStat.isDirectory()) {
      throw new Failure(`${path.dirname(action.path)} is not a directory`)
    }
    const existing = await lstat(this.target).catch(() => undefined)
    if (existing && !action.overwrite) throw new Failure(`${action.path} exists and overwrite is not set`)
    if (existing?.isDirectory()) throw new Failure(`${action.path} is a directory`)
    if (existing?.isFile()) this.existingMode = existing.mode & 0o7777
    this.temp = path.join(dir, `.${path.basename(this.target)}.opsc-${randomBytes(6).toString('hex')}.tmp`)
    this.file = await open(this.temp, 'wx', 0o600)
  }

  private async append(chunk: FileChunk): Promise<void> {
    if (chunk.offset !== this.written) throw new Failure(`chunk at offset ${chunk.offset}, expected offset ${this.written}`)
    const end = this.written + BigInt(chunk.data.length)
    if (end > this.action.size) throw new Failure(`content exceeds the declared size of ${this.action.size} bytes`)
    let done = 0
    while (done < chunk.data.length) {
      const { bytesWritten } = await this.file!.write(chunk.data, done, chunk.data.length - done, Number(this.written) + done)
      done += bytesWritten
    }
    this.hash.update(chunk.data)
    this.written = end
  }

  private async commit(): Promise<void> {
    const { action } = this
    if (this.written !== action.size) throw new Failure(`received ${this.written} bytes, expected ${action.size}`)
    const got = this.hash.copy().digest()
    if (!got.equals(Buffer.from(action.sha256))) {
      throw new Failure(`sha256 mismatch: expected ${Buffer.from(action.sha256).toString('hex')}, got ${got.toString('hex')}`)
    }
    const file = this.file!
    // Owner before mode: chown clears setuid/setgid bits that chmod would have set.
    await this.applyOwner(file)
    // Mode 0 means what the file would have had anyway: the replaced file's, or 0666 less the umask.
    if (process.platform !== 'win32') await file.chmod(action.mode & 0o7777 || (this.existingMode ?? 0o666 & ~process.umask()))
    await file.sync()
    await file.close()
    this.file = undefined
    await this.place()
    await syncDir(path.dirname(this.target))
  }

  private async applyOwner(file: FileHandle): Promise<void> {
    const { owner, group } = this.action
    if (!owner && !group) return
    if (process.platform === 'win32') throw new Failure('owner and group are not supported on Windows')
    const uid = owner ? await lookupUserId(owner) : -1
    const gid = group ? await lookupGroupId(group) : -1
    if (uid === undefined) throw new Failure(`no user ${owner}`)
    if (gid === undefined) throw new Failure(`no group ${group}`)
    if (process.getuid?.() !== 0) throw new Failure('setting owner or group needs the agent to run as root')
    await file.chown(uid, gid)
  }

  /** Atomic either way: rename replaces; link refuses an existing target (no check-then-act race). */
  private async place(): Promise<void> {
    const temp = this.temp!
    if (this.action.overwrite) return rename(temp, this.target)
    try {
      await link(temp, this.target)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EEXIST') throw new Failure(`${this.action.path} exists and overwrite is not set`)
      // Filesystems without hard links: fall back to check, then rename.
      if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV'].includes(code ?? '')) throw err
      if (await lstat(this.target).catch(() => undefined)) throw new Failure(`${this.action.path} exists and overwrite is not set`)
      return rename(temp, this.target)
    }
    await unlink(temp)
  }
}

/** Makes the rename durable; some filesystems cannot fsync a directory, which is not an error. */
async function syncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return
  const handle = await open(dir, 'r').catch(() => undefined)
  await handle?.sync().catch(() => {})
  await handle?.close().catch(() => {})
}
