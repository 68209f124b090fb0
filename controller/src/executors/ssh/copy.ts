import { createHash, randomBytes } from 'node:crypto'
import { posix } from 'node:path'
import { z } from 'zod'
import type { TargetRow } from '../../targets/targets.sql.ts'
import { copyContent, copyMode, type CopyInput } from '../exec-input.ts'
import { abortOutcome, aborted, oneLine, stepSignal } from '../outcome.ts'
import type { ExecutionContext, StepOutcome } from '../types.ts'
import { capture, openSftp, sftpCall, statOrNull } from './channel.ts'
import { shQuote } from './command.ts'
import { staleConnection, type SshConnection } from './connect.ts'
import { connectForStep } from './exec.ts'
import type { SftpError, SftpSession, SftpStats } from './ssh2.ts'

/*
 * File transfer over SFTP. An upload goes to a temporary name beside the destination and is then
 * renamed over it, so readers see the old file or the new one, never half of one; the result is
 * verified by hashing the file on the target.
 */

/** Largest download whose bytes are returned inline in the step result. */
export const INLINE_DOWNLOAD_LIMIT = 1024 * 1024
const CHUNK = 32 * 1024
/** SFTP requests kept in flight, so a long round trip does not set the pace. */
const IN_FLIGHT = 8
const VERIFY_TIMEOUT_MS = 60_000

export const DownloadInput = z
  .object({
    source: z.string().min(1, 'required').max(4096),
    /** Refuse files larger than this (bytes). */
    max_bytes: z.number().int().positive().max(1024 * 1024 * 1024).default(64 * 1024 * 1024),
  })
  .strict()
export type DownloadInput = z.output<typeof DownloadInput>

/** A failure of the transfer on the target: becomes `failed` with this line. */
export class CopyFailure extends Error {}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex')

export function sftpMessage(err: unknown): string {
  return oneLine((err as SftpError)?.message ?? String(err))
}

/** statOrNull, with the path in the message when the server refuses (permission denied). */
async function statPath(sftp: SftpSession, path: string): Promise<SftpStats | null> {
  try {
    return await statOrNull(sftp, path)
  } catch (err) {
    throw new CopyFailure(`cannot inspect ${path}: ${sftpMessage(err)}`, { cause: err })
  }
}

/** Windows OpenSSH takes `C:/dir/file` over SFTP; backslashes would defeat the POSIX path handling here. */
const sftpPath = (target: TargetRow, p: string) => (target.osType === 'windows' ? p.replace(/\\/g, '/') : p)

export async function mkdirs(sftp: SftpSession, dir: string): Promise<void> {
  const missing: string[] = []
  let at = dir
  for (;;) {
    const st = await statPath(sftp, at)
    if (st) {
      if (!st.isDirectory()) throw new CopyFailure(`cannot create ${dir}: ${at} is not a directory`)
      break
    }
    missing.unshift(at)
    const parent = posix.dirname(at)
    if (parent === at) break
    at = parent
  }
  for (const d of missing) {
    try {
      await sftpCall((cb) => sftp.mkdir(d, {}, cb))
    } catch (err) {
      // Another writer may have made it meanwhile.
      if (!(await statOrNull(sftp, d))?.isDirectory()) throw new CopyFailure(`cannot create directory ${d}: ${sftpMessage(err)}`, { cause: err })
    }
  }
}

async function writeFile(sftp: SftpSession, path: string, data: Buffer, mode: number): Promise<void> {
  const handle = await sftpCall<Buffer>((cb) => sftp.open(path, 'wx', { mode }, cb))
  try {
    let next = 0
    const writer = async () => {
      while (next < data.length) {
        const off = next
        next += CHUNK
        await sftpCall((cb) => sftp.write(handle, data, off, Math.min(CHUNK, data.length - off), off, cb)).catch((err: unknown) => {
          next = data.length // the other writers stop too
          throw err
        })
      }
    }
    await Promise.all(Array.from({ length: IN_FLIGHT }, writer))
  } finally {
    await sftpCall((cb) => sftp.close(handle, cb)).catch(() => {})
  }
}

function readAt(sftp: SftpSession, handle: Buffer, position: number): Promise<Buffer> {
  const buf = Buffer.alloc(CHUNK)
  return new Promise((resolve, reject) => sftp.read(handle, buf, 0, CHUNK, position, (err, n) => (err ? reject(err) : resolve(buf.subarray(0, n)))))
}

/**
 * Hash and size of a remote file read over SFTP (several reads in flight), stopping past
 * `maxBytes`; keeps the bytes when there are at most `keepBytes`. Every request is answered before
 * this returns, so closing the connection afterwards leaves nothing pending.
 */
async function readRemote(sftp: SftpSession, path: string, maxBytes: number, keepBytes: number): Promise<{ size: number; sha256: string; content?: Buffer; tooLarge: boolean }> {
  const hash = createHash('sha256')
  const kept: Buffer[] = []
  let size = 0
  const handle = await sftpCall<Buffer>((cb) => sftp.open(path, 'r', {}, cb))
  try {
    for (;;) {
      const batch = await Promise.all(Array.from({ length: IN_FLIGHT }, (_, i) => readAt(sftp, handle, size + i * CHUNK)))
      // Chunks count up to the first short one; the next round goes on from there, and an empty one is the end.
      const short = batch.findIndex((c) => c.length < CHUNK)
      for (const chunk of short === -1 ? batch : batch.slice(0, short + 1)) {
        size += chunk.length
        if (size > maxBytes) return { size, sha256: '', tooLarge: true }
        hash.update(chunk)
        if (size <= keepBytes) kept.push(chunk)
      }
      if (short !== -1 && batch[short]!.length === 0) break
    }
  } finally {
    await sftpCall((cb) => sftp.close(handle, cb)).catch(() => {})
  }
  return { size, sha256: hash.digest('hex'), ...(size <= keepBytes ? { content: Buffer.concat(kept) } : {}), tooLarge: false }
}

const SUM_SCRIPT = 'if command -v sha256sum >/dev/null 2>&1; then sha256sum < "$1"; elif command -v shasum >/dev/null 2>&1; then shasum -a 256 < "$1"; else exit 127; fi'

/** SHA-256 of the file computed on the target (sha256sum/shasum), else by reading it back. */
async function remoteSha256(conn: SshConnection, sftp: SftpSession, path: string, windows: boolean): Promise<string> {
  if (!windows) {
    const res = await capture(conn.client, `exec /bin/sh -c ${shQuote(SUM_SCRIPT)} opsc-sum ${shQuote(path)}`, VERIFY_TIMEOUT_MS)
    const m = /^([0-9a-f]{64})\b/.exec(res.stdout.trim())
    if (res.code === 0 && m) return m[1]!
  }
  return (await readRemote(sftp, path, Number.MAX_SAFE_INTEGER, 0)).sha256
}

/** Renames `from` over `to`: atomically replacing it, or (overwrite=false) failing when it exists. */
export async function moveIntoPlace(sftp: SftpSession, from: string, to: string, overwrite: boolean): Promise<void> {
  if (!overwrite) {
    // Plain SFTP rename never replaces an existing file (OpenSSH links, then unlinks).
    try {
      return await sftpCall((cb) => sftp.rename(from, to, cb))
    } catch (err) {
      if (await statOrNull(sftp, to)) throw new CopyFailure(`${to} already exists and overwrite is false`, { cause: err })
      throw new CopyFailure(`cannot move the upload into place at ${to}: ${sftpMessage(err)}`, { cause: err })
    }
  }
  try {
    return await sftpCall((cb) => sftp.ext_openssh_rename(from, to, cb))
  } catch (err) {
    // Servers without posix-rename@openssh.com: replace in two steps (not atomic).
    if (!/does not support/i.test(sftpMessage(err))) throw new CopyFailure(`cannot move the upload into place at ${to}: ${sftpMessage(err)}`, { cause: err })
  }
  await sftpCall((cb) => sftp.unlink(to, cb)).catch(() => {})
  await sftpCall((cb) => sftp.rename(from, to, cb)).catch((err: unknown) => {
    throw new CopyFailure(`cannot move the upload into place at ${to}: ${sftpMessage(err)}`, { cause: err })
  })
}

async function upload(conn: SshConnection, sftp: SftpSession, target: TargetRow, input: CopyInput, onTemp: (path: string) => void): Promise<StepOutcome> {
  const data = copyContent(input)
  const mode = copyMode(input)
  const dest = sftpPath(target, input.destination)
  const dir = posix.dirname(dest)
  const existing = await statPath(sftp, dest)
  if (existing?.isDirectory()) throw new CopyFailure(`${dest} is a directory`)
  if (existing && !input.overwrite) throw new CopyFailure(`${dest} already exists and overwrite is false`)
  const parent = existing ? null : await statPath(sftp, dir)
  if (!existing && !parent) {
    if (!input.create_parents) throw new CopyFailure(`directory ${dir} does not exist (create_parents is false)`)
    await mkdirs(sftp, dir)
  } else if (parent && !parent.isDirectory()) throw new CopyFailure(`${dir} is not a directory`)

  const temp = posix.join(dir, `.${posix.basename(dest)}.opsc-${randomBytes(6).toString('hex')}.tmp`)
  onTemp(temp)
  // Written privately, then given its mode: the requested one, the replaced file's, or the server's default.
  const finalMode = mode || (existing ? existing.mode & 0o7777 : 0)
  try {
    await writeFile(sftp, temp, data, finalMode ? 0o600 : 0o666)
    if (finalMode) await sftpCall((cb) => sftp.chmod(temp, finalMode, cb))
    await moveIntoPlace(sftp, temp, dest, input.overwrite)
  } catch (err) {
    await sftpCall((cb) => sftp.unlink(temp, cb)).catch(() => {})
    if (err instanceof CopyFailure) throw err
    throw new CopyFailure(`cannot write ${dest}: ${sftpMessage(err)}`, { cause: err })
  }
  onTemp('')

  const expected = sha256(data)
  const stat = await statOrNull(sftp, dest)
  const actual = await remoteSha256(conn, sftp, dest, target.osType === 'windows')
  if (stat?.size !== data.length || actual !== expected) {
    throw new CopyFailure(`verification failed: ${dest} on the target has ${stat?.size ?? 'no'} bytes with sha256 ${actual}, expected ${data.length} bytes with ${expected}`)
  }
  return { status: 'succeeded', result: { path: input.destination, size: data.length, sha256: expected } }
}

async function download(sftp: SftpSession, target: TargetRow, input: DownloadInput): Promise<StepOutcome> {
  const source = sftpPath(target, input.source)
  const st = await statPath(sftp, source)
  if (!st) throw new CopyFailure(`${input.source} does not exist`)
  if (!st.isFile()) throw new CopyFailure(`${input.source} is not a regular file`)
  if (st.size > input.max_bytes) throw new CopyFailure(`${input.source} is ${st.size} bytes, more than max_bytes (${input.max_bytes})`)
  const read = await readRemote(sftp, source, input.max_bytes, INLINE_DOWNLOAD_LIMIT).catch((err: unknown) => {
    throw new CopyFailure(`cannot read ${input.source}: ${sftpMessage(err)}`, { cause: err })
  })
  if (read.tooLarge) throw new CopyFailure(`${input.source} grew past max_bytes (${input.max_bytes}) while it was read`)
  const result = { path: input.source, size: read.size, sha256: read.sha256 }
  if (!read.content) return { status: 'failed', error: `${input.source} is ${read.size} bytes, more than the ${INLINE_DOWNLOAD_LIMIT} bytes a step result can carry inline`, result }
  return { status: 'succeeded', result: { ...result, content_base64: read.content.toString('base64') } }
}

/**
 * Connects (pooled), opens SFTP and runs `body`; an abort ends the step (after removing a
 * half-written temp file, when there is one and the server still answers). A reused connection
 * that turns out to have died is replaced once.
 */
export async function withSftp(target: TargetRow, x: ExecutionContext, body: (conn: SshConnection, sftp: SftpSession, onTemp: (path: string) => void, signal: AbortSignal) => Promise<StepOutcome>): Promise<StepOutcome> {
  const signal = stepSignal(x)
  for (let attempt = 0; ; attempt++) {
    const conn = await connectForStep(target, x, signal)
    if ('status' in conn) return conn
    let sftp: SftpSession
    try {
      sftp = await openSftp(conn.client)
    } catch (err) {
      if (attempt === 0 && !signal.aborted && staleConnection(conn, err)) {
        ;(conn.discard ?? conn.close)()
        continue
      }
      conn.close()
      if (signal.aborted) return abortOutcome(x)
      return { status: 'failed', error: `${conn.label} refused SFTP: ${sftpMessage(err)}` }
    }
    return onSession(conn, sftp, x, signal, body)
  }
}

async function onSession(conn: SshConnection, sftp: SftpSession, x: ExecutionContext, signal: AbortSignal, body: Parameters<typeof withSftp>[2]): Promise<StepOutcome> {
  const abort = aborted(signal)
  let temp = ''
  let healthy = true
  try {
    const work = body(conn, sftp, (p) => (temp = p), signal)
    const outcome = await Promise.race([work, abort.promise.then(() => null)])
    if (outcome) return outcome
    work.catch(() => {})
    if (temp) {
      const removed = await Promise.race([sftpCall((cb) => sftp.unlink(temp, cb)).then(() => true, () => true), new Promise<false>((r) => setTimeout(() => r(false), 2000))])
      healthy = removed
    }
    return abortOutcome(x)
  } catch (err) {
    if (signal.aborted) return abortOutcome(x)
    if (err instanceof CopyFailure) return { status: 'failed', error: err.message }
    if (err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError) throw err
    // Anything else came from the server or the connection (permission denied, connection lost).
    healthy = conn.alive?.() !== false
    return { status: 'failed', error: `SFTP on ${conn.label} failed: ${sftpMessage(err)}` }
  } finally {
    abort.dispose()
    sftp.end()
    if (healthy) conn.close()
    else (conn.discard ?? conn.close)()
  }
}

/** Writes `input` to an SSH target: the `ssh.copy`/`sftp.upload` steps, and `copy` on SSH targets. */
export function runSshCopy(target: TargetRow, input: CopyInput, x: ExecutionContext): Promise<StepOutcome> {
  return withSftp(target, x, (conn, sftp, onTemp) => upload(conn, sftp, target, input, onTemp))
}

/** Reads a file from an SSH target: the `sftp.download` step. */
export function runSftpDownload(target: TargetRow, input: DownloadInput, x: ExecutionContext): Promise<StepOutcome> {
  return withSftp(target, x, (_conn, sftp) => download(sftp, target, input))
}
