import { createRequire } from 'node:module'
import type { Duplex, Readable } from 'node:stream'

/*
 * ssh2 ships no types and @types/ssh2 is not a dependency: these are the few parts of its API the
 * SSH executors use, typed by hand (ssh2 1.17). Loaded with require, as key-material.ts does.
 */

export interface SshChannel extends Duplex {
  stderr: Readable
  close(): void
  on(event: 'exit', listener: (code: number | null, signal?: string, coreDumped?: boolean, description?: string) => void): this
  on(event: 'close', listener: () => void): this
  on(event: 'data', listener: (chunk: Buffer) => void): this
  on(event: 'error', listener: (err: Error) => void): this
  on(event: string, listener: (...args: never[]) => void): this
}

export interface SftpStats {
  mode: number
  size: number
  /** Seconds since the epoch (SFTP v3 carries whole seconds). */
  mtime: number
  atime: number
  isDirectory(): boolean
  isFile(): boolean
  isSymbolicLink(): boolean
}

export interface SftpDirEntry {
  filename: string
  longname: string
  attrs: SftpStats
}

/** An SFTP error carries the SSH_FX_* status code. */
export type SftpError = Error & { code?: number }
export const SFTP_NO_SUCH_FILE = 2

type Cb<T = void> = (err: SftpError | null | undefined, value: T) => void

export interface SftpSession {
  open(path: string, flags: string, attrs: { mode?: number }, cb: Cb<Buffer>): void
  close(handle: Buffer, cb: Cb): void
  write(handle: Buffer, buf: Buffer, offset: number, length: number, position: number, cb: Cb): void
  read(handle: Buffer, buf: Buffer, offset: number, length: number, position: number, cb: (err: SftpError | null | undefined, bytesRead: number) => void): void
  stat(path: string, cb: Cb<SftpStats>): void
  lstat(path: string, cb: Cb<SftpStats>): void
  readdir(path: string, cb: Cb<SftpDirEntry[]>): void
  rmdir(path: string, cb: Cb): void
  utimes(path: string, atime: number, mtime: number, cb: Cb): void
  mkdir(path: string, attrs: { mode?: number }, cb: Cb): void
  rename(from: string, to: string, cb: Cb): void
  ext_openssh_rename(from: string, to: string, cb: Cb): void
  unlink(path: string, cb: Cb): void
  chmod(path: string, mode: number, cb: Cb): void
  end(): void
  on(event: 'error' | 'close', listener: (err?: Error) => void): this
}

export interface PtyOptions {
  term?: string
  rows?: number
  cols?: number
  modes?: Record<string, number>
}

export interface ConnectConfig {
  host?: string
  port?: number
  sock?: Duplex
  username: string
  password?: string
  privateKey?: string | Buffer
  tryKeyboard?: boolean
  readyTimeout?: number
  keepaliveInterval?: number
  keepaliveCountMax?: number
  hostVerifier?: (key: Buffer, verify: (ok: boolean) => void) => void
  authHandler?: string[]
}

export type ClientError = Error & { level?: string; code?: string; description?: string }

export interface SshClient {
  connect(config: ConnectConfig): this
  end(): this
  destroy(): this
  exec(command: string, opts: { pty?: PtyOptions | boolean }, cb: (err: Error | undefined, channel: SshChannel) => void): this
  sftp(cb: (err: Error | undefined, sftp: SftpSession) => void): this
  forwardOut(srcIp: string, srcPort: number, dstIp: string, dstPort: number, cb: (err: Error | undefined, channel: SshChannel) => void): this
  on(event: 'ready' | 'close' | 'end', listener: () => void): this
  on(event: 'error', listener: (err: ClientError) => void): this
  on(event: 'keyboard-interactive', listener: (name: string, instructions: string, lang: string, prompts: { prompt: string; echo: boolean }[], finish: (answers: string[]) => void) => void): this
  once(event: 'ready' | 'close' | 'end', listener: () => void): this
  once(event: 'error', listener: (err: ClientError) => void): this
  removeListener(event: string, listener: (...args: never[]) => void): this
}

export interface ParsedKey {
  type: string
  isPrivateKey(): boolean
  getPublicSSH(): Buffer
}

interface Ssh2Module {
  Client: new () => SshClient
  utils: { parseKey(key: string | Buffer, passphrase?: string): ParsedKey | ParsedKey[] | Error }
}

export const SSH2_PATH = createRequire(import.meta.url).resolve('ssh2')
export const ssh2 = createRequire(import.meta.url)('ssh2') as Ssh2Module
