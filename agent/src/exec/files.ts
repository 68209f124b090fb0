import { createHash } from 'node:crypto'
import { constants } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import type { GetFileAction } from '../../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import type { ExecOutcome, RunOptions } from './exec.ts'
import { resolveExisting } from './safe-path.ts'

export { startPutFile, type PutFileOptions, type PutFileWriter } from './put-file.ts'

/** Pieces of at most this size go to onOutput, so each fits one OutputChunk. */
const PIECE_BYTES = 32 * 1024
const DEFAULT_MAX_SIZE = 1024 ** 3

/** Streams a regular file as 'file' output and reports its size and SHA-256. Never rejects. */
export async function runGetFile(
  action: GetFileAction,
  opts: RunOptions & { allowedRoots?: string[]; defaultMaxSize?: number },
): Promise<ExecOutcome> {
  const startedAtMs = Date.now()
  const end = (rest: Partial<ExecOutcome>): ExecOutcome => ({ timedOut: false, interrupted: false, ...rest, startedAtMs, finishedAtMs: Date.now() })
  if (opts.signal.aborted) return end({ interrupted: true })
  const resolved = await resolveExisting(action.path, opts.allowedRoots)
  if ('error' in resolved) return end(resolved)
  const max = action.maxSize > 0n ? action.maxSize : BigInt(opts.defaultMaxSize ?? DEFAULT_MAX_SIZE)
  let file: FileHandle
  try {
    // O_NONBLOCK: opening a FIFO must not hang before fstat can refuse it.
    file = await open(resolved.real, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0))
  } catch (err) {
    return end({ error: `cannot open ${action.path}: ${(err as Error).message}` })
  }
  try {
    const info = await file.stat({ bigint: true })
    if (!info.isFile()) return end({ error: `${action.path} is not a regular file` })
    if (info.size > max) return end({ error: `${action.path} is ${info.size} bytes, more than the limit of ${max}` })
    const hash = createHash('sha256')
    let size = 0n
    for (;;) {
      if (opts.signal.aborted) return end({ interrupted: true })
      // A fresh buffer each time: onOutput may keep what it is given.
      const { bytesRead, buffer } = await file.read(Buffer.alloc(PIECE_BYTES), 0, PIECE_BYTES, null)
      if (bytesRead === 0) break
      size += BigInt(bytesRead)
      if (size > max) return end({ error: `${action.path} grew past the limit of ${max} bytes while being read` })
      const piece = buffer.subarray(0, bytesRead)
      hash.update(piece)
      opts.onOutput('file', piece)
    }
    return end({ exitCode: 0, fileSha256: new Uint8Array(hash.digest()), fileSize: Number(size) })
  } catch (err) {
    return end({ error: `reading ${action.path} failed: ${(err as Error).message}` })
  } finally {
    await file.close().catch(() => {})
  }
}

