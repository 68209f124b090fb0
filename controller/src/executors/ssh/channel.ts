import type { SftpSession, SftpStats, SshChannel, SshClient } from './ssh2.ts'
import { SFTP_NO_SUCH_FILE, type SftpError } from './ssh2.ts'

/** Promise forms of the few ssh2 channel and SFTP calls the executors make. */

const PTY = { term: 'xterm', cols: 200, rows: 50, modes: { ECHO: 0 } }

// Channels a pooled connection may have open at once (below the server's MaxSessions).
const channelLimits = new WeakMap<SshClient, number>()

export function limitChannels(client: SshClient, max: number): void {
  channelLimits.set(client, max)
}

/** Open channels, including ones being opened (ssh2's channel manager; it has no public count). */
const openChannels = (client: SshClient) => (client as unknown as { _chanMgr?: { _count?: number } })._chanMgr?._count ?? 0

/**
 * Waits until a limited connection has room for another channel. Steps are admitted below the
 * limit, so this only waits when several of them open helper channels at once; those are short.
 */
async function channelRoom(client: SshClient): Promise<void> {
  const max = channelLimits.get(client)
  if (max === undefined) return
  for (let waited = 0; openChannels(client) >= max && waited < 60_000; waited += 20) await new Promise((r) => setTimeout(r, 20))
}

/**
 * Opens an exec channel. `attach` runs synchronously in ssh2's callback: a fast command's exit
 * status can arrive in the same read as the channel confirmation, and ssh2 emits `exit` while it
 * parses that read, before any promise continuation could add a listener.
 */
export async function openExec(client: SshClient, command: string, pty: boolean, attach: (channel: SshChannel) => void): Promise<SshChannel> {
  await channelRoom(client)
  return new Promise((resolve, reject) => {
    try {
      client.exec(command, pty ? { pty: PTY } : {}, (err, channel) => {
        if (err) return reject(err)
        attach(channel)
        resolve(channel)
      })
    } catch (err) {
      reject(err)
    }
  })
}

export interface Captured {
  code: number | null
  stdout: string
}

/**
 * Runs a short helper command (kill, sha256sum) on its own channel; resolves with its exit code
 * and at most 64 KiB of stdout, or `code: null` when it could not run or did not end in `timeoutMs`.
 */
export function capture(client: SshClient, command: string, timeoutMs: number): Promise<Captured> {
  return new Promise((resolve) => {
    let stdout = ''
    let code: number | null = null
    let channel: SshChannel | undefined
    const timer = setTimeout(() => {
      channel?.close()
      resolve({ code: null, stdout })
    }, timeoutMs)
    openExec(client, command, false, (ch) => {
      channel = ch
      ch.on('data', (d: Buffer) => {
        if (stdout.length < 64 * 1024) stdout += d.toString('utf8')
      })
      ch.stderr.on('data', () => {})
      ch.on('error', () => {})
      ch.on('exit', (c) => (code = typeof c === 'number' ? c : null))
      ch.on('close', () => {
        clearTimeout(timer)
        resolve({ code, stdout })
      })
      ch.end()
    }).then(
      () => {},
      () => {
        clearTimeout(timer)
        resolve({ code: null, stdout })
      },
    )
  })
}

export async function openSftp(client: SshClient): Promise<SftpSession> {
  await channelRoom(client)
  return new Promise((resolve, reject) => {
    try {
      client.sftp((err, sftp) => {
        if (err) return reject(err)
        // Failures reach the pending requests' callbacks; an unheard 'error' event would crash the process.
        sftp.on('error', () => {})
        resolve(sftp)
      })
    } catch (err) {
      reject(err)
    }
  })
}

/** Calls an SFTP method that takes a node-style callback. */
export function sftpCall<T = void>(fn: (cb: (err: SftpError | null | undefined, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))))
}

export async function statOrNull(sftp: SftpSession, path: string): Promise<SftpStats | null> {
  try {
    return await sftpCall<SftpStats>((cb) => sftp.stat(path, cb))
  } catch (err) {
    if ((err as SftpError).code === SFTP_NO_SUCH_FILE) return null
    throw err
  }
}
