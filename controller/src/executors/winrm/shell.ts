import { WinrmError } from './errors.ts'
import type { WinrmTransport } from './transport.ts'
import {
  checkAnswer,
  commandRequest,
  createShellRequest,
  deleteShellRequest,
  isTimedOut,
  MAX_ENVELOPE_BYTES,
  parseCommandId,
  parseReceive,
  parseShellId,
  receiveRequest,
  sendRequest,
  signalRequest,
  type Request,
} from './wsman.ts'

/*
 * One remote shell (WinRS) on its own authenticated connection, running one command at a time:
 * Command, stdin through Send, output through Receive long-polls until the command is Done.
 * A shell whose command was cancelled, timed out or failed in transit is marked `broken` and is
 * deleted rather than reused.
 */

/** How long a Receive waits on the server for output before answering TimedOut (we then poll again). */
export const RECEIVE_POLL_SEC = 20
/** stdin bytes per Send: base64 (4/3) of this plus the envelope stays under MaxEnvelopeSize. */
export const SEND_CHUNK_BYTES = Math.floor(((MAX_ENVELOPE_BYTES - 4096) * 3) / 4 / 3) * 3
const RECEIVE_RETRIES = 3

export interface RunOptions {
  commandLine: string
  skipCmdShell: boolean
  /** Written to the command's stdin in order, then stdin is closed. */
  stdin?: Iterable<Buffer> | AsyncIterable<Buffer>
  onOutput(stream: 'stdout' | 'stderr', data: Buffer): void
  signal?: AbortSignal
  /** Called with the command id once the command runs (for remote clean-up records). */
  onStarted?(commandId: string): void
}

export class WinrmShell {
  broken = false
  lastUsed = Date.now()
  /** Commands started in this shell. */
  runs = 0

  private constructor(
    readonly transport: WinrmTransport,
    readonly id: string,
    private readonly to: string,
  ) {}

  static async create(transport: WinrmTransport, o: { signal?: AbortSignal; idleTimeoutSec?: number } = {}): Promise<WinrmShell> {
    const to = endpointUrl(transport)
    const xml = await call(transport, createShellRequest(to, { idleTimeoutSec: o.idleTimeoutSec }), 'Create shell', o.signal)
    return new WinrmShell(transport, parseShellId(xml), to)
  }

  /** Runs one command to its end; resolves with its exit code. On abort, the command is terminated. */
  async run(o: RunOptions): Promise<{ exitCode: number | null }> {
    this.lastUsed = Date.now()
    this.runs++
    let commandId: string | undefined
    try {
      commandId = parseCommandId(await call(this.transport, commandRequest(this.to, this.id, o.commandLine, { skipCmdShell: o.skipCmdShell }), 'Command', o.signal))
      o.onStarted?.(commandId)
      await this.sendStdin(commandId, o.stdin ?? [], o.signal)
      return await this.receiveAll(commandId, o)
    } catch (err) {
      this.broken = true
      if (commandId !== undefined) await this.terminate(commandId)
      throw err
    } finally {
      this.lastUsed = Date.now()
    }
  }

  private async sendStdin(commandId: string, stdin: Iterable<Buffer> | AsyncIterable<Buffer>, signal: AbortSignal | undefined): Promise<void> {
    let pending: Buffer | undefined
    for await (const piece of stdin) {
      for (let off = 0; off < piece.length; off += SEND_CHUNK_BYTES) {
        if (pending) await call(this.transport, sendRequest(this.to, this.id, commandId, pending, false), 'Send', signal)
        pending = piece.subarray(off, off + SEND_CHUNK_BYTES)
      }
    }
    await call(this.transport, sendRequest(this.to, this.id, commandId, pending ?? Buffer.alloc(0), true), 'Send', signal)
  }

  private async receiveAll(commandId: string, o: RunOptions): Promise<{ exitCode: number | null }> {
    let failures = 0
    for (;;) {
      let xml: string
      try {
        xml = await call(this.transport, receiveRequest(this.to, this.id, commandId, RECEIVE_POLL_SEC), 'Receive', o.signal, (RECEIVE_POLL_SEC + 30) * 1000)
      } catch (err) {
        if (isTimedOut(err)) continue
        // A dropped connection loses no output the server has not sent yet: poll again on a new one.
        if (err instanceof WinrmError && (err.kind === 'lost' || err.kind === 'timeout') && !o.signal?.aborted && ++failures <= RECEIVE_RETRIES) continue
        throw err
      }
      failures = 0
      const r = parseReceive(xml)
      for (const c of r.chunks) o.onOutput(c.stream, c.data)
      if (r.done) return { exitCode: r.exitCode }
    }
  }

  /** Best effort: terminate the command (its process tree ends with it). */
  async terminate(commandId: string): Promise<void> {
    this.broken = true
    try {
      await call(this.transport, signalRequest(this.to, this.id, commandId, 'terminate'), 'Signal', undefined, 15_000)
    } catch {
      // The shell is deleted next, which ends the command too.
    }
  }

  /** Deletes the shell on the server (best effort) and closes its connection. */
  async delete(): Promise<void> {
    this.broken = true
    try {
      await call(this.transport, deleteShellRequest(this.to, this.id), 'Delete shell', undefined, 15_000)
    } catch {
      // Windows drops it after its idle timeout anyway.
    } finally {
      this.transport.close()
    }
  }
}

export function endpointUrl(t: WinrmTransport): string {
  return `${t.opts.https ? 'https' : 'http'}://${t.opts.host.includes(':') ? `[${t.opts.host}]` : t.opts.host}:${t.opts.port}/wsman`
}

/** One request/answer; a non-200 answer without a SOAP fault is a protocol error. */
export async function call(t: WinrmTransport, req: Request, what: string, signal?: AbortSignal, timeoutMs?: number): Promise<string> {
  const res = await t.post(req.xml, { signal, timeoutMs })
  if (res.status === 200) return res.body
  checkAnswer(res.body, what)
  throw new WinrmError('protocol', `${t.where} answered ${what} with HTTP ${res.status}${res.body.trim() ? '' : ' and no body'}`)
}

