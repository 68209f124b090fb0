import { SecretMasker, type MaskingStream } from '../../proto/src/masking.ts'
import { createHash, type KeyObject } from 'node:crypto'
import { create } from '@bufbuild/protobuf'
import type { Logger } from 'pino'
import {
  AssignmentResultSchema,
  OutputChunkSchema,
  OutputStream,
  RejectReason,
  SecurityEventKind,
  type Assignment,
  type Cancel,
  type FileChunk,
  type OutputAck,
  type SignedAssignment,
} from '../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { openSealed } from '../../proto/src/seal.ts'
import { verifySignedAssignment, type RefusalReason } from '../../proto/src/sign.ts'
import type { ControllerConnection } from './connection.ts'
import { runExec, type ExecOutcome, type OutputStreamName } from './exec/exec.ts'
import { runGetFile, startPutFile, type PutFileWriter } from './exec/files.ts'
import type { Journal } from './journal.ts'
import type { Spool, SpoolEntry } from './spool.ts'

/** Output is coalesced into chunks of at most this size… */
export const MAX_CHUNK_BYTES = 32 * 1024
/** …or sent after at most this long. */
export const MAX_CHUNK_DELAY_MS = 50

const STREAMS: Record<OutputStreamName, OutputStream> = {
  stdout: OutputStream.STDOUT,
  stderr: OutputStream.STDERR,
  pty: OutputStream.PTY,
  file: OutputStream.FILE,
}

/** How the agent answers each refused assignment: the reject reason and the security event (the simulator answers the same). */
export const REFUSAL: Record<RefusalReason, { reject: RejectReason; event: SecurityEventKind }> = {
  bad_signature: { reject: RejectReason.BAD_SIGNATURE, event: SecurityEventKind.BAD_SIGNATURE },
  unknown_key: { reject: RejectReason.UNKNOWN_KEY, event: SecurityEventKind.UNKNOWN_KEY },
  wrong_agent: { reject: RejectReason.WRONG_AGENT, event: SecurityEventKind.WRONG_AGENT },
  expired: { reject: RejectReason.EXPIRED, event: SecurityEventKind.EXPIRED },
  not_yet_valid: { reject: RejectReason.NOT_YET_VALID, event: SecurityEventKind.NOT_YET_VALID },
  replayed: { reject: RejectReason.REPLAYED, event: SecurityEventKind.REPLAYED },
  malformed: { reject: RejectReason.MALFORMED, event: SecurityEventKind.MALFORMED },
}

export interface RunnerOptions {
  agentId: string
  journal: Journal
  spool: Spool
  /** Controller signing keys the agent accepts, by key id (replaced when the controller announces keys). */
  signingKeys: Map<string, KeyObject>
  boxSecretKey: Uint8Array
  connection: Pick<ControllerConnection, 'send' | 'isReady' | 'onceWritable'>
  log: Logger
  maxConcurrent: number
  allowedRoots?: string[]
  graceMs?: number
}

interface Running {
  abort: AbortController
  put?: PutFileWriter
}

/** Per assignment: the next seq, each stream's byte offset, and output waiting to be coalesced. */
class OutputBuffer {
  private pending: { stream: OutputStreamName; parts: Buffer[]; bytes: number } | undefined
  private timer: NodeJS.Timeout | undefined
  private readonly offsets = new Map<OutputStreamName, number>()
  private readonly masks = new Map<OutputStreamName, MaskingStream>()

  constructor(
    private readonly assignmentId: string,
    public seq: number,
    private readonly emit: (chunk: ReturnType<typeof create<typeof OutputChunkSchema>>) => void,
    /** Secrets of the assignment: replaced with **** before anything is spooled or sent. */
    private readonly masker?: SecretMasker,
  ) {}

  push(stream: OutputStreamName, raw: Buffer): void {
    let data = raw
    if (this.masker && this.masker.size > 0) {
      let mask = this.masks.get(stream)
      if (!mask) this.masks.set(stream, (mask = this.masker.stream()))
      data = mask.push(raw)
    }
    this.append(stream, data)
  }

  /** The end of the output: what masking held back (a possible secret's start) is released, then flushed. */
  end(): void {
    for (const [stream, mask] of this.masks) this.append(stream, mask.end())
    this.flush()
  }

  private append(stream: OutputStreamName, data: Buffer): void {
    if (data.length === 0) return
    if (this.pending && this.pending.stream !== stream) this.flush()
    let rest = data
    while (rest.length > 0) {
      this.pending ??= { stream, parts: [], bytes: 0 }
      const take = rest.subarray(0, MAX_CHUNK_BYTES - this.pending.bytes)
      this.pending.parts.push(take)
      this.pending.bytes += take.length
      rest = rest.subarray(take.length)
      if (this.pending.bytes >= MAX_CHUNK_BYTES) this.flush()
    }
    if (this.pending && !this.timer) this.timer = setTimeout(() => this.flush(), MAX_CHUNK_DELAY_MS)
  }

  flush(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    const p = this.pending
    if (!p) return
    this.pending = undefined
    const offset = this.offsets.get(p.stream) ?? 0
    this.offsets.set(p.stream, offset + p.bytes)
    this.emit(
      create(OutputChunkSchema, {
        assignmentId: this.assignmentId,
        stream: STREAMS[p.stream],
        seq: BigInt(++this.seq),
        byteOffset: BigInt(offset),
        data: Buffer.concat(p.parts, p.bytes),
      }),
    )
  }
}

/**
 * Runs verified assignments at most once: verify before decoding, journal (fsync) before starting,
 * every chunk and result into the spool before it is sent, resend from the spool on reconnect.
 */
export class Runner {
  private readonly running = new Map<string, Running>()
  private readonly queue: { assignment: Assignment; env: Record<string, string>; masker: SecretMasker }[] = []
  private active = 0
  /** A reconnect resend in progress: the spool's unacked entries, then what was recorded meanwhile. */
  private backlog: { entries: Iterator<SpoolEntry>; live: SpoolEntry[] } | undefined

  constructor(private readonly opts: RunnerOptions) {}

  /** After a restart: whatever was running when the agent died is reported interrupted, never re-run. */
  recoverInterrupted(): void {
    for (const id of this.opts.journal.interrupted()) {
      const now = BigInt(Date.now())
      this.opts.spool.appendResult(
        create(AssignmentResultSchema, {
          assignmentId: id,
          interrupted: true,
          error: 'the agent stopped while this assignment was running; it was not run again',
          finishedAtUnixMs: now,
          lastSeq: this.opts.spool.lastSeq(id),
        }),
      )
      this.opts.journal.finish(id)
      this.opts.log.warn({ assignmentId: id }, 'agent.assignment_interrupted_by_restart')
    }
  }

  inFlight(): string[] {
    return [...new Set([...this.running.keys(), ...this.queue.map((q) => q.assignment.assignmentId), ...this.opts.spool.unackedAssignments()])]
  }

  runningIds(): string[] {
    return [...this.running.keys()]
  }

  /** The controller told us what it already holds; send everything else from the spool, in order. */
  onReady(acks: OutputAck[]): void {
    for (const ack of acks) this.opts.spool.ackOutput(ack.assignmentId, ack.ackedSeq)
    this.backlog = { entries: this.opts.spool.pending()[Symbol.iterator](), live: [] }
    this.pump()
  }

  /**
   * Sends the spool's backlog at the pace the transport takes it (a 256 MiB backlog never sits in
   * memory at once); output recorded meanwhile waits behind it, so the controller sees seqs in order.
   */
  private pump(): void {
    const backlog = this.backlog
    if (!backlog) return
    for (let next = backlog.entries.next(); !next.done; next = backlog.entries.next()) {
      if (!this.sendEntry(next.value)) {
        if (this.opts.connection.isReady) this.opts.connection.onceWritable(() => this.pump())
        return
      }
    }
    for (const entry of backlog.live) this.sendEntry(entry)
    this.backlog = undefined
  }

  onOutputAck(ack: OutputAck): void {
    this.opts.spool.ackOutput(ack.assignmentId, ack.ackedSeq)
  }

  onResultAck(assignmentId: string): void {
    this.opts.spool.ackResult(assignmentId)
  }

  onDisconnected(): void {
    this.backlog = undefined // everything it held is in the spool: the next session resends it
    // A file transfer cannot complete without its chunks; the controller sees the failure in the result.
    for (const [id, run] of this.running) {
      if (run.put) {
        const put = run.put
        run.put = undefined
        void put.abort('the connection to the controller was lost during the transfer').then((outcome) => this.complete(id, outcome, 0))
      }
    }
  }

  onCancel(cancel: Cancel): void {
    const queued = this.queue.findIndex((q) => q.assignment.assignmentId === cancel.assignmentId)
    if (queued >= 0) {
      this.queue.splice(queued, 1)
      const now = Date.now()
      this.complete(cancel.assignmentId, { interrupted: true, timedOut: false, error: `cancelled: ${cancel.reason}`, startedAtMs: now, finishedAtMs: now }, 0)
      return
    }
    this.running.get(cancel.assignmentId)?.abort.abort(cancel.reason || 'cancelled')
  }

  onFileChunk(chunk: FileChunk): void {
    const put = this.running.get(chunk.assignmentId)?.put
    if (!put) return
    put.write(chunk).then(
      async () => {
        if (!chunk.last) return
        const run = this.running.get(chunk.assignmentId)
        if (run) run.put = undefined
        this.complete(chunk.assignmentId, await put.finish(), 0)
      },
      async (err: Error) => {
        const run = this.running.get(chunk.assignmentId)
        if (run) run.put = undefined
        this.complete(chunk.assignmentId, await put.abort(err.message), 0)
      },
    )
  }

  onAssignment(signed: SignedAssignment): void {
    const { journal, log } = this.opts
    const sha = createHash('sha256').update(signed.assignment).digest()
    const verdict = verifySignedAssignment(signed, {
      publicKeys: this.opts.signingKeys,
      agentId: this.opts.agentId,
      now: Date.now(),
      isJournaled: (id) => journal.has(id),
    })
    if (!verdict.ok) {
      const map = REFUSAL[verdict.reason]
      log.warn({ reason: verdict.reason, assignmentId: verdict.assignmentId, keyId: signed.keyId }, 'agent.assignment_refused')
      this.refuse(sha, verdict.assignmentId ?? '', map.reject, `refused: ${verdict.reason}`)
      this.opts.connection.send({
        case: 'securityEvent',
        value: { kind: map.event, assignmentId: verdict.assignmentId ?? '', assignmentSha256: sha, keyId: signed.keyId, detail: `assignment refused: ${verdict.reason}`, observedAtUnixMs: BigInt(Date.now()) },
      })
      return
    }
    const assignment = verdict.assignment
    const id = assignment.assignmentId
    if (!assignment.action.case) return this.refuse(sha, id, RejectReason.UNSUPPORTED_ACTION, 'this agent does not know the action')
    const env: Record<string, string> = {}
    for (const sealed of assignment.secrets) {
      const opened = openSealed(this.opts.boxSecretKey, sealed, id)
      if (!opened.ok) {
        this.refuse(sha, id, RejectReason.SECRET_UNOPENABLE, `secret ${sealed.name} does not open (${opened.reason})`)
        this.opts.connection.send({
          case: 'securityEvent',
          value: { kind: SecurityEventKind.SECRET_TAMPERED, assignmentId: id, assignmentSha256: sha, keyId: signed.keyId, detail: `sealed secret ${sealed.name}: ${opened.reason}`, observedAtUnixMs: BigInt(Date.now()) },
        })
        return
      }
      env[sealed.name] = Buffer.from(opened.value).toString('utf8')
    }
    const masker = new SecretMasker(Object.values(env))
    for (const sealed of assignment.maskValues) {
      const opened = openSealed(this.opts.boxSecretKey, sealed, id)
      if (opened.ok) masker.add(Buffer.from(opened.value))
      else return this.refuse(sha, id, RejectReason.SECRET_UNOPENABLE, `mask value ${sealed.name} does not open (${opened.reason})`)
    }
    // Durable before anything runs: after a crash this id is reported interrupted, never started again.
    journal.begin(id, { runId: assignment.runId, stepId: assignment.stepId, expiresAtUnixMs: Number(assignment.expiresAtUnixMs) })
    this.opts.connection.send({ case: 'accepted', value: { assignmentId: id, acceptedAtUnixMs: BigInt(Date.now()) } })
    log.info({ assignmentId: id, runId: assignment.runId, action: assignment.action.case }, 'agent.assignment_accepted')
    if (assignment.action.case === 'putFile') {
      // File content is already streaming in behind the assignment: the writer must exist now.
      this.running.set(id, { abort: new AbortController(), put: startPutFile(assignment.action.value, { allowedRoots: this.opts.allowedRoots }) })
      return
    }
    this.queue.push({ assignment, env, masker })
    this.drainQueue()
  }

  /** Aborts everything running (agent shutdown); each ends interrupted and its result is spooled. */
  async shutdown(): Promise<void> {
    const waits = [...this.running.values()].map((run) => {
      run.abort.abort('the agent is shutting down')
      return run.put?.abort('the agent is shutting down')
    })
    await Promise.all(waits)
  }

  private refuse(sha: Uint8Array, assignmentId: string, reason: RejectReason, message: string): void {
    this.opts.connection.send({ case: 'rejected', value: { assignmentId, assignmentSha256: sha, reason, message } })
  }

  private drainQueue(): void {
    while (this.active < this.opts.maxConcurrent && this.queue.length > 0) {
      const { assignment, env, masker } = this.queue.shift()!
      this.active++
      void this.execute(assignment, env, masker).finally(() => {
        this.active--
        this.drainQueue()
      })
    }
  }

  private async execute(assignment: Assignment, env: Record<string, string>, masker: SecretMasker): Promise<void> {
    const id = assignment.assignmentId
    const abort = new AbortController()
    this.running.set(id, { abort })
    const output = new OutputBuffer(id, Number(this.opts.spool.lastSeq(id)), (chunk) => this.record({ kind: 'output', chunk }), masker)
    const onOutput = (stream: OutputStreamName, data: Buffer) => output.push(stream, data)
    const graceMs = this.opts.graceMs ?? 5_000
    let outcome: ExecOutcome
    try {
      const action = assignment.action
      if (action.case === 'exec') outcome = await runExec(action.value, { onOutput, signal: abort.signal, graceMs, extraEnv: env })
      else if (action.case === 'getFile') outcome = await runGetFile(action.value, { onOutput, signal: abort.signal, graceMs, allowedRoots: this.opts.allowedRoots })
      else throw new Error(`unsupported action ${action.case}`)
    } catch (err) {
      const now = Date.now()
      outcome = { timedOut: false, interrupted: false, error: (err as Error).message, startedAtMs: now, finishedAtMs: now }
    }
    output.end()
    this.complete(id, outcome, output.seq)
  }

  private complete(id: string, outcome: ExecOutcome, lastSeq: number): void {
    this.running.delete(id)
    this.record({
      kind: 'result',
      result: create(AssignmentResultSchema, {
        assignmentId: id,
        exitCode: outcome.exitCode,
        signal: outcome.signal ?? '',
        timedOut: outcome.timedOut,
        interrupted: outcome.interrupted,
        error: outcome.error ?? '',
        startedAtUnixMs: BigInt(Math.floor(outcome.startedAtMs)),
        finishedAtUnixMs: BigInt(Math.floor(outcome.finishedAtMs)),
        lastSeq: BigInt(Math.max(lastSeq, Number(this.opts.spool.lastSeq(id)))),
        ...(outcome.fileSha256 ? { fileSha256: outcome.fileSha256, fileSize: BigInt(outcome.fileSize ?? 0) } : {}),
      }),
    })
    this.opts.journal.finish(id)
    this.opts.log.info({ assignmentId: id, exitCode: outcome.exitCode, signal: outcome.signal, timedOut: outcome.timedOut, interrupted: outcome.interrupted, error: outcome.error }, 'agent.assignment_finished')
    this.drainQueue()
  }

  /** Spool first (it survives a crash and a lost connection), then send if a session is up. */
  private record(entry: SpoolEntry): void {
    if (entry.kind === 'output') this.opts.spool.appendOutput(entry.chunk)
    else this.opts.spool.appendResult(entry.result)
    if (this.backlog) this.backlog.live.push(entry)
    else this.sendEntry(entry)
  }

  /** False when the session is gone or its send buffer is full. */
  private sendEntry(entry: SpoolEntry): boolean {
    if (entry.kind === 'output') return this.opts.connection.send({ case: 'output', value: entry.chunk })
    return this.opts.connection.send({ case: 'result', value: entry.result })
  }
}
