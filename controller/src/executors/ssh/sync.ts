import { randomBytes } from 'node:crypto'
import { chmod, mkdir, open, rename, rm, rmdir, unlink, utimes } from 'node:fs/promises'
import path from 'node:path'
import { z } from 'zod'
import { filesDir } from '../../config.ts'
import type { TargetRow } from '../../targets/targets.sql.ts'
import type { ExecutionContext, StepOutcome } from '../types.ts'
import { openExec, sftpCall, statOrNull } from './channel.ts'
import { shQuote } from './command.ts'
import type { SshConnection } from './connect.ts'
import { CopyFailure, mkdirs, moveIntoPlace, sftpMessage, withSftp } from './copy.ts'
import type { SftpSession } from './ssh2.ts'
import { excluder, localDir, localTree, plan, remoteTree, sha256File, type Action, type Entry, type Tree } from './sync-tree.ts'

/*
 * `sftp.sync`: mirrors a directory one way, between the controller's files root and a target.
 * Files are compared by size and mtime (or SHA-256 on both sides), written to a temporary name
 * and renamed into place with the source's mode and mtime, so that the next run finds them
 * unchanged. With `delete`, what the source lacks goes from the destination first.
 */

export const SyncInput = z
  .object({
    direction: z.enum(['push', 'pull']).default('push'),
    /** A directory under the controller's files root (OPSC_FILES_DIR). */
    local: z.string().min(1, 'required').max(4096),
    /** An absolute directory on the target. */
    remote: z
      .string()
      .min(1, 'required')
      .max(4096)
      .regex(/^(\/|[A-Za-z]:[\\/])/, 'an absolute directory on the target'),
    compare: z.enum(['size_mtime', 'checksum']).default('size_mtime'),
    /** Remove files on the destination that the source does not have. */
    delete: z.boolean().default(false),
    dry_run: z.boolean().default(false),
    /** Globs: without a `/` they match a name at any depth, with one the path inside the directory. */
    exclude: z.array(z.string().min(1).max(1024)).max(256).default([]),
  })
  .strict()
export type SyncInput = z.output<typeof SyncInput>

/** Changes listed in the result; the counts cover all of them. */
const MAX_CHANGES = 1000
const CHUNK = 32 * 1024
const IN_FLIGHT = 8
const CHECKSUM_TIMEOUT_MS = 10 * 60_000

interface Change {
  path: string
  action: Action
  size: number
}

/** SHA-256 of many remote files in one command (names on stdin, NUL-separated). */
async function remoteSums(conn: SshConnection, dir: string, files: string[]): Promise<Map<string, string>> {
  const sums = new Map<string, string>()
  if (files.length === 0) return sums
  const script = 'cd -- "$1" || exit 1; xargs -0 sha256sum --'
  let out = ''
  let code: number | null = null
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new CopyFailure(`sha256sum on ${conn.label} took longer than ${CHECKSUM_TIMEOUT_MS / 60_000} minutes`)), CHECKSUM_TIMEOUT_MS)
    openExec(conn.client, `exec /bin/sh -c ${shQuote(script)} opsc-sums ${shQuote(dir)}`, false, (ch) => {
      ch.on('data', (d: Buffer) => (out += d.toString('utf8')))
      ch.stderr.on('data', () => {})
      ch.on('error', () => {})
      ch.on('exit', (c) => (code = typeof c === 'number' ? c : null))
      ch.on('close', () => {
        clearTimeout(timer)
        resolve()
      })
      ch.end(Buffer.from(files.map((f) => `${f}\0`).join('')))
    }).catch((err: unknown) => {
      clearTimeout(timer)
      reject(err)
    })
  })
  for (const line of out.split('\n')) {
    // sha256sum escapes names with a backslash or newline and marks the line with a leading backslash.
    const m = /^(\\?)([0-9a-f]{64}) [ *](.*)$/.exec(line)
    if (!m) continue
    const name = m[1] ? m[3]!.replace(/\\(\\|n)/g, (_, c: string) => (c === 'n' ? '\n' : '\\')) : m[3]!
    sums.set(name, m[2]!)
  }
  if (code !== 0 && sums.size < files.length) throw new CopyFailure(`sha256sum failed on ${conn.label} (exit code ${code ?? 'none'}): is coreutils installed?`)
  return sums
}

/** Runs `fn` over chunk offsets of a `size`-byte file with a few requests in flight. */
async function pipelined(size: number, fn: (offset: number, length: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < size) {
      const off = next
      next += CHUNK
      await fn(off, Math.min(CHUNK, size - off)).catch((err: unknown) => {
        next = size
        throw err
      })
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
}

async function remoteRead(sftp: SftpSession, handle: Buffer, buf: Buffer, position: number): Promise<void> {
  for (let got = 0; got < buf.length; ) {
    const n = await new Promise<number>((resolve, reject) => sftp.read(handle, buf, got, buf.length - got, position + got, (err, bytes) => (err ? reject(err) : resolve(bytes))))
    if (n === 0) throw new CopyFailure('the file shrank while it was copied')
    got += n
  }
}

async function push(sftp: SftpSession, localFile: string, remoteFile: string, e: Entry, onTemp: (p: string) => void): Promise<void> {
  const temp = path.posix.join(path.posix.dirname(remoteFile), `.${path.posix.basename(remoteFile)}.opsc-${randomBytes(6).toString('hex')}.tmp`)
  onTemp(temp)
  const local = await open(localFile, 'r')
  try {
    const handle = await sftpCall<Buffer>((cb) => sftp.open(temp, 'wx', { mode: 0o600 }, cb))
    try {
      await pipelined(e.size, async (off, len) => {
        const buf = Buffer.allocUnsafe(len)
        const { bytesRead } = await local.read(buf, 0, len, off)
        if (bytesRead !== len) throw new CopyFailure(`${localFile} changed while it was copied`)
        await sftpCall((cb) => sftp.write(handle, buf, 0, len, off, cb))
      })
    } finally {
      await sftpCall((cb) => sftp.close(handle, cb)).catch(() => {})
    }
    await sftpCall((cb) => sftp.chmod(temp, e.mode, cb))
    await sftpCall((cb) => sftp.utimes(temp, e.mtime, e.mtime, cb))
    await moveIntoPlace(sftp, temp, remoteFile, true)
  } catch (err) {
    await sftpCall((cb) => sftp.unlink(temp, cb)).catch(() => {})
    throw err
  } finally {
    onTemp('')
    await local.close()
  }
}

async function pull(sftp: SftpSession, remoteFile: string, localFile: string, e: Entry): Promise<void> {
  const temp = path.join(path.dirname(localFile), `.${path.basename(localFile)}.opsc-${randomBytes(6).toString('hex')}.tmp`)
  const local = await open(temp, 'wx', 0o600)
  try {
    const handle = await sftpCall<Buffer>((cb) => sftp.open(remoteFile, 'r', {}, cb))
    try {
      await pipelined(e.size, async (off, len) => {
        const buf = Buffer.allocUnsafe(len)
        await remoteRead(sftp, handle, buf, off)
        await local.write(buf, 0, len, off)
      })
    } finally {
      await sftpCall((cb) => sftp.close(handle, cb)).catch(() => {})
    }
    await local.close()
    await chmod(temp, e.mode)
    await utimes(temp, e.mtime, e.mtime)
    await rename(temp, localFile)
  } catch (err) {
    await local.close().catch(() => {})
    await unlink(temp).catch(() => {})
    throw err
  }
}

async function sync(conn: SshConnection, sftp: SftpSession, target: TargetRow, input: SyncInput, x: ExecutionContext, onTemp: (p: string) => void, signal: AbortSignal): Promise<StepOutcome> {
  const pushing = input.direction === 'push'
  const remote = target.osType === 'windows' ? input.remote.replace(/\\/g, '/') : input.remote.replace(/(.)\/+$/, '$1')
  // A pull creates its local directory; a dry run only says it would.
  const local = await localDir(filesDir(x.ctx.config), input.local, pushing ? 'error' : input.dry_run ? 'none' : 'create')
  const excluded = excluder(input.exclude)
  const say = (line: string) => x.output.write('stdout', `${line}\n`)
  const skip = (side: string) => (rel: string) => x.output.write('stderr', `skipped ${rel} on the ${side}: not a regular file or directory\n`)
  const remoteSt = await statOrNull(sftp, remote)
  if (remoteSt && !remoteSt.isDirectory()) throw new CopyFailure(`${remote} on the target is not a directory`)
  if (!remoteSt && !pushing) throw new CopyFailure(`${remote} does not exist on the target`)
  const localTreeP = local === null ? Promise.resolve<Tree>(new Map()) : localTree(local, excluded, skip('controller'))
  const remoteT: Tree = remoteSt ? await remoteTree(sftp, remote, excluded, skip('target')) : new Map()
  const [src, dst] = pushing ? [await localTreeP, remoteT] : [remoteT, await localTreeP]

  let sums = new Map<string, string>()
  if (input.compare === 'checksum') {
    const both = [...src].filter(([rel, s]) => s.type === 'file' && dst.get(rel)?.type === 'file' && dst.get(rel)!.size === s.size).map(([rel]) => rel)
    sums = await remoteSums(conn, remote, both)
  }
  const localRoot = local ?? ''
  const same = async (rel: string, s: Entry, d: Entry) => (input.compare === 'checksum' ? sums.get(rel) !== undefined && sums.get(rel) === (await sha256File(path.join(localRoot, rel))) : s.mtime === d.mtime)
  const p = await plan(src, dst, input.delete, same)
  if (p.conflicts.length > 0) throw new CopyFailure(`${p.conflicts[0]} is a file on one side and a directory on the other; set delete: true to replace it`)

  const changes: Change[] = []
  const counts = { created: 0, updated: 0, deleted: 0 }
  let bytes = 0
  const note = (c: Change) => {
    if (changes.length < MAX_CHANGES) changes.push(c)
    say(`${input.dry_run ? 'would ' : ''}${c.action} ${c.path}${c.action === 'delete' ? '' : ` (${c.size} bytes)`}`)
  }
  const dstPath = (rel: string) => (pushing ? path.posix.join(remote, rel) : path.join(localRoot, rel))
  const srcPath = (rel: string) => (pushing ? path.join(localRoot, rel) : path.posix.join(remote, rel))
  const fail = (what: string, rel: string) => (err: unknown) => {
    throw new CopyFailure(`cannot ${what} ${dstPath(rel)}: ${err instanceof CopyFailure ? err.message : sftpMessage(err)}`, { cause: err })
  }

  for (const d of p.deletes) {
    if (signal.aborted) break
    if (d.entry.type === 'file') {
      counts.deleted++
      note({ path: d.path, action: 'delete', size: d.entry.size })
    } else say(`${input.dry_run ? 'would ' : ''}delete ${d.path}/`)
    if (input.dry_run) continue
    const where = dstPath(d.path)
    if (pushing) await sftpCall((cb) => (d.entry.type === 'file' ? sftp.unlink(where, cb) : sftp.rmdir(where, cb))).catch(fail('delete', d.path))
    else await (d.entry.type === 'file' ? rm(where, { force: true }) : rmdir(where)).catch(fail('delete', d.path))
  }
  if (!input.dry_run && pushing && !remoteSt) await mkdirs(sftp, remote)
  for (const rel of p.dirs) {
    if (input.dry_run || signal.aborted) continue
    const mode = src.get(rel)!.mode
    if (pushing) await sftpCall((cb) => sftp.mkdir(dstPath(rel), { mode }, cb)).catch(fail('create directory', rel))
    else await mkdir(dstPath(rel), { mode }).catch(fail('create directory', rel))
  }
  for (const f of p.files) {
    if (signal.aborted) break
    counts[f.action === 'create' ? 'created' : 'updated']++
    bytes += f.entry.size
    note({ path: f.path, action: f.action, size: f.entry.size })
    if (input.dry_run) continue
    if (pushing) await push(sftp, srcPath(f.path), dstPath(f.path), f.entry, onTemp).catch(fail('write', f.path))
    else await pull(sftp, srcPath(f.path), dstPath(f.path), f.entry).catch(fail('write', f.path))
  }
  const result = { ...counts, unchanged: p.unchanged, bytes, changes, truncated: changes.length < counts.created + counts.updated + counts.deleted, dry_run: input.dry_run }
  return { status: 'succeeded', result }
}

/** The `sftp.sync` step. */
export function runSftpSync(target: TargetRow, input: SyncInput, x: ExecutionContext): Promise<StepOutcome> {
  return withSftp(target, x, (conn, sftp, onTemp, signal) => sync(conn, sftp, target, input, x, onTemp, signal))
}
