// A virtual agent: the real ControllerConnection (own TLS connection, own Ed25519 identity, challenge
// signed over that connection's TLS exporter, heartbeats, reconnect with backoff) and either
//  * 'cheap' mode: a runner that verifies each signed assignment exactly as the agent does (the same
//    verifySignedAssignment, refusals reported with a security event) and spawns nothing: see CHEAP
//    ACTIONS in protocol.ts; or
//  * 'real' mode: the agent's own Runner over a journal and spool in a temporary directory.
// Either way every frame the agent sends goes through `count`, which keeps the simulator's statistics.
import { AsyncLocalStorage } from 'node:async_hooks'
import { createHash, randomBytes, type KeyObject } from 'node:crypto'
import { rmSync } from 'node:fs'
import path from 'node:path'
import type { TLSSocket } from 'node:tls'
import type { Logger } from 'pino'
import { OutputStream, RejectReason, type Cancel, type SignedAssignment } from '../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { importEd25519PrivateKey, importEd25519PublicKey, verifySignedAssignment } from '../../proto/src/sign.ts'
import { ControllerConnection } from '../../agent/src/connection.ts'
import { Journal } from '../../agent/src/journal.ts'
import { REFUSAL, Runner } from '../../agent/src/runner.ts'
import { Spool } from '../../agent/src/spool.ts'
import { CHUNK_BYTES, STAMPED_COMMAND, stampHeader, STREAM_COMMAND, type Behaviour, type SimIdentity, type SimStats } from './protocol.ts'
import { mulberry32 } from '../harness/prng.ts'

type Frame = NonNullable<Parameters<ControllerConnection['send']>[0]>

const RANDOM_CHUNK = randomBytes(CHUNK_BYTES) // incompressible, so Postgres cannot shrink what it stores
const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/'
/** Printable output for `emit` (and outputBytes): random letters, a newline every 64 bytes. */
const TEXT_CHUNK = Buffer.from(Array.from(randomBytes(CHUNK_BYTES), (b, i) => (i % 64 === 63 ? 10 : ALPHABET.charCodeAt(b & 63))))


/** A STAMPED_COMMAND chunk: its send time, then printable filler up to `length` bytes. */
function stamped(length: number): Buffer {
  const header = Buffer.from(stampHeader(), 'latin1')
  return Buffer.concat([header, TEXT_CHUNK.subarray(0, Math.max(0, length - header.length))]).subarray(0, length)
}

/** Deterministic draws in [0, 1): mulberry32 seeded from (seed, agent index, n-th assignment of the agent). */
export function draws(seed: number, index: number, nth: number): () => number {
  return mulberry32(createHash('sha256').update(`${seed}/${index}/${nth}`).digest().readUInt32LE(0))
}

/** What a cheap action does, from the command text. */
export function cheapPlan(
  text: string,
  behaviour: Pick<Behaviour, 'outputBytes' | 'window'>,
): { sleepMs: number; bytes: number; data: 'text' | 'random' | 'stamped' | Buffer; window: number; chunkBytes: number; intervalMs: number } {
  const words = text.trim().split(/\s+/)
  const n = (s: string | undefined) => Math.max(0, Number(s) || 0)
  const plan = { sleepMs: 0, bytes: 0, data: 'text' as 'text' | 'random' | 'stamped' | Buffer, window: behaviour.window, chunkBytes: CHUNK_BYTES, intervalMs: 0 }
  if (words[0] === STREAM_COMMAND) return { ...plan, bytes: n(words[1]), data: 'random', window: n(words[2]) || behaviour.window }
  if (words[0] === STAMPED_COMMAND) {
    const chunkBytes = Math.min(CHUNK_BYTES, Math.max(stampHeader().length, n(words[2]) || CHUNK_BYTES))
    return { ...plan, bytes: n(words[1]), data: 'stamped', chunkBytes, intervalMs: n(words[3]) }
  }
  if (words[0] === 'emit' && words.length === 2) return { ...plan, bytes: n(words[1]) }
  if (words[0] === 'sleep' && words.length === 2 && /^\d+(\.\d+)?$/.test(words[1]!)) return { ...plan, sleepMs: Number(words[1]) * 1000 }
  if (words[0] === 'echo') {
    const data = Buffer.from(`${text.trim().slice(4).trim()}\n`)
    return { ...plan, bytes: data.length, data }
  }
  if (behaviour.outputBytes !== undefined) return { ...plan, bytes: behaviour.outputBytes }
  const data = Buffer.from(`${text}\n`)
  return { ...plan, bytes: data.length, data }
}

/** The TLS sockets each agent's connections run on, so kill() can drop them without a goodbye. See installSocketTracking. */
const socketOwner = new AsyncLocalStorage<Set<TLSSocket>>()
let tracking = false

/**
 * Wraps tls.connect (grpc-js calls it through the module object) so that a socket opened in an
 * agent's async context is recorded in that agent's set. Call once per worker process.
 */
export async function installSocketTracking(): Promise<void> {
  if (tracking) return
  tracking = true
  const tls = (await import('node:tls')).default
  const connect = tls.connect
  tls.connect = function (this: unknown, ...args: unknown[]) {
    const socket = (connect as (...a: unknown[]) => TLSSocket).apply(this, args)
    const owner = socketOwner.getStore()
    if (owner) {
      owner.add(socket)
      socket.once('close', () => owner.delete(socket))
    }
    return socket
  } as typeof tls.connect
}

interface CheapRun {
  timer?: NodeJS.Timeout
  sent: number
  acked: number
  total: number
  pump?: () => void
  finish(interrupted?: string): void
}

export interface VirtualAgentOptions {
  identity: SimIdentity
  controllers: string[]
  caPem: string
  behaviour: Behaviour
  stats: SimStats
  log: Logger
  /** Real mode: the directory under which this agent's journal and spool live. */
  workDir: string
  backoffBaseMs?: number
  backoffCapMs?: number
}

export class VirtualAgent {
  private readonly connection: ControllerConnection
  private readonly signingKeys = new Map<string, KeyObject>()
  private readonly cheap = new Map<string, CheapRun>()
  /** Cheap mode's journal: ids accepted once are refused as replays. */
  private readonly seen = new Set<string>()
  private readonly finished = new Set<string>()
  private readonly countedSeq = new Map<string, bigint>()
  private readonly sockets = new Set<TLSSocket>()
  private readonly runner: Runner | undefined
  private readonly files: { journal: Journal; spool: Spool; dir: string } | undefined
  private nth = 0
  private firstReady!: () => void
  private readonly readyOnce = new Promise<void>((resolve) => (this.firstReady = resolve))
  private loop: Promise<unknown> | undefined
  killed = false

  constructor(private readonly opts: VirtualAgentOptions) {
    const { identity, stats } = opts
    const real = opts.behaviour.mode === 'real'
    this.connection = new ControllerConnection({
      agentId: identity.id,
      controllers: opts.controllers,
      caCertPem: opts.caPem,
      identityKey: importEd25519PrivateKey(Buffer.from(identity.seed, 'base64')),
      log: opts.log,
      ...(opts.backoffBaseMs !== undefined ? { backoffBaseMs: opts.backoffBaseMs } : {}),
      ...(opts.backoffCapMs !== undefined ? { backoffCapMs: opts.backoffCapMs } : {}),
      handlers: {
        inFlight: () => (this.runner ? this.runner.inFlight() : [...this.cheap.keys()]),
        running: () => (this.runner ? this.runner.runningIds() : [...this.cheap.keys()]),
        signingKeyIds: () => [...this.signingKeys.keys()],
        onReady: (ready) => {
          stats.sessions++
          stats.connected++
          this.runner?.onReady(ready.outputAcks)
          this.firstReady()
        },
        onDisconnected: () => {
          stats.connected--
          this.runner?.onDisconnected()
        },
        onSigningKeys: (keys) => {
          const next = keys.filter((k) => k.publicKey.length === 32)
          if (next.length === 0) return
          this.signingKeys.clear()
          for (const k of next) this.signingKeys.set(k.keyId, importEd25519PublicKey(k.publicKey))
        },
        onAssignment: (signed) => {
          stats.received++
          if (this.runner) this.runner.onAssignment(signed)
          else this.onCheapAssignment(signed)
        },
        onOutputAck: (ack) => {
          if (this.runner) return this.runner.onOutputAck(ack)
          const run = this.cheap.get(ack.assignmentId)
          if (run) {
            run.acked = Math.max(run.acked, Number(ack.ackedSeq))
            run.pump?.()
          }
        },
        onResultAck: (id) => {
          this.runner?.onResultAck(id)
          this.countedSeq.delete(id)
        },
        onCancel: (cancel) => (this.runner ? this.runner.onCancel(cancel) : this.onCheapCancel(cancel)),
        onFileChunk: (chunk) => this.runner?.onFileChunk(chunk),
      },
    })
    if (real) {
      const dir = path.join(opts.workDir, `agent-${identity.index}`)
      const journal = Journal.open(path.join(dir, 'journal'))
      const spool = Spool.open(path.join(dir, 'spool'), { maxBytes: 64 * 1024 * 1024, segmentBytes: 1024 * 1024 })
      this.files = { journal, spool, dir }
      const conn = this.connection
      this.runner = new Runner({
        agentId: identity.id,
        journal,
        spool,
        signingKeys: this.signingKeys,
        boxSecretKey: identity.box ? Buffer.from(identity.box, 'base64') : new Uint8Array(32),
        connection: { send: (frame) => this.send(frame), get isReady() { return conn.isReady }, onceWritable: (fn) => conn.onceWritable(fn) },
        log: opts.log,
        maxConcurrent: 4,
      })
    }
  }

  get id(): string {
    return this.opts.identity.id
  }

  get isReady(): boolean {
    return this.connection.isReady
  }

  /** Starts the connection loop; resolves at the first SessionReady (reconnects are the connection's own business). */
  start(): Promise<void> {
    this.loop ??= socketOwner.run(this.sockets, () => this.connection.run())
    return this.readyOnce
  }

  /** Ends the session politely (the stream is cancelled) and closes the agent's files. */
  async stop(): Promise<void> {
    for (const run of this.cheap.values()) clearTimeout(run.timer)
    if (this.runner) await this.runner.shutdown()
    this.connection.stop()
    await this.loop
    if (this.files) {
      this.files.spool.close()
      this.files.journal.close()
      rmSync(this.files.dir, { recursive: true, force: true })
    }
  }

  /** Abrupt: the TCP connections are destroyed with no gRPC goodbye, nothing more is sent, no reconnect. */
  kill(): void {
    if (this.killed) return
    this.killed = true
    this.opts.stats.killed++
    for (const run of this.cheap.values()) clearTimeout(run.timer)
    this.cheap.clear()
    for (const socket of this.sockets) {
      this.opts.stats.socketsDropped++
      socket.destroy()
    }
    this.connection.stop() // its cancel goes nowhere: the sockets are gone
  }

  /** Every frame the agent sends passes here: the statistics are read off the wire. */
  private send(frame: Frame | undefined): boolean {
    if (this.killed) return false
    if (!frame) return this.connection.send(frame)
    const stats = this.opts.stats
    switch (frame.case) {
      case 'accepted':
        stats.verified++
        break
      case 'rejected':
        stats.rejected++
        break
      case 'output': {
        const { assignmentId, seq, data } = frame.value
        const counted = this.countedSeq.get(assignmentId!) ?? 0n
        if (seq! > counted) {
          this.countedSeq.set(assignmentId!, seq!)
          stats.chunksSent++
          stats.bytesSent += data!.length
        }
        break
      }
      case 'result': {
        const r = frame.value
        if (this.finished.has(r.assignmentId!)) break
        this.finished.add(r.assignmentId!)
        stats.executed++
        if (r.exitCode === 0 && !r.error && !r.timedOut && !r.interrupted && !r.signal) stats.succeeded++
        else stats.failed++
        break
      }
    }
    return this.connection.send(frame)
  }

  private onCheapAssignment(signed: SignedAssignment): void {
    const { identity, behaviour } = this.opts
    const verdict = verifySignedAssignment(signed, { publicKeys: this.signingKeys, agentId: identity.id, now: Date.now(), isJournaled: (id) => this.seen.has(id) })
    if (!verdict.ok) {
      const sha = createHash('sha256').update(signed.assignment).digest()
      const map = REFUSAL[verdict.reason]
      this.send({ case: 'rejected', value: { assignmentId: verdict.assignmentId ?? '', assignmentSha256: sha, reason: map.reject, message: `refused: ${verdict.reason}` } })
      this.send({
        case: 'securityEvent',
        value: { kind: map.event, assignmentId: verdict.assignmentId ?? '', assignmentSha256: sha, keyId: signed.keyId, detail: `assignment refused: ${verdict.reason}`, observedAtUnixMs: BigInt(Date.now()) },
      })
      return
    }
    const { assignmentId, action } = verdict.assignment
    this.seen.add(assignmentId)
    if (action.case !== 'exec') {
      this.send({ case: 'rejected', value: { assignmentId, reason: RejectReason.UNSUPPORTED_ACTION, message: `the simulator's cheap mode runs exec only (got ${action.case})` } })
      return
    }
    this.send({ case: 'accepted', value: { assignmentId, acceptedAtUnixMs: BigInt(Date.now()) } })
    const command = action.value.command
    const text = command.case === 'argv' ? command.value.argv.join(' ') : command.case === 'script' ? command.value.script : ''
    const plan = cheapPlan(text, behaviour)
    const random = draws(behaviour.seed, identity.index, this.nth++)
    const [min, max] = behaviour.latencyMs
    const latency = min + random() * Math.max(0, max - min)
    const fails = random() < behaviour.failureRate
    const startedAt = Date.now()
    const source = plan.data === 'random' ? RANDOM_CHUNK : plan.data === 'text' || plan.data === 'stamped' ? TEXT_CHUNK : plan.data
    const run: CheapRun = {
      sent: 0,
      acked: 0,
      total: Math.ceil(plan.bytes / plan.chunkBytes),
      finish: (interrupted) => {
        clearTimeout(run.timer)
        this.cheap.delete(assignmentId)
        const now = BigInt(Date.now())
        this.send({
          case: 'result',
          value: {
            assignmentId,
            ...(interrupted ? { interrupted: true, error: interrupted } : { exitCode: fails ? 1 : 0 }),
            startedAtUnixMs: BigInt(startedAt),
            finishedAtUnixMs: now,
            lastSeq: BigInt(run.sent),
          },
        })
      },
    }
    this.cheap.set(assignmentId, run)
    // Output first (paced by acks, as a spool bound would), then the latency and sleep, then the result.
    const afterOutput = () => {
      run.pump = undefined
      const wait = latency + plan.sleepMs
      if (wait <= 0) run.finish()
      else run.timer = setTimeout(() => run.finish(), wait)
    }
    run.pump = () => {
      while (run.sent < run.total && run.sent - run.acked < plan.window) {
        // Paced output: chunk n goes out at startedAt + n × interval (no drift), whatever the acks say.
        const dueIn = startedAt + run.sent * plan.intervalMs - Date.now()
        if (plan.intervalMs > 0 && dueIn > 0) {
          run.timer ??= setTimeout(() => {
            run.timer = undefined
            run.pump?.()
          }, dueIn)
          return
        }
        const offset = run.sent * plan.chunkBytes
        const length = Math.min(plan.chunkBytes, plan.bytes - offset)
        const data = Buffer.isBuffer(plan.data)
          ? source.subarray(offset, offset + length)
          : plan.data === 'stamped'
            ? stamped(length)
            : source.subarray(0, length)
        this.send({ case: 'output', value: { assignmentId, stream: OutputStream.STDOUT, seq: BigInt(++run.sent), byteOffset: BigInt(offset), data } })
      }
      if (run.sent === run.total && this.cheap.has(assignmentId) && run.pump) afterOutput()
    }
    run.pump()
  }

  private onCheapCancel(cancel: Cancel): void {
    this.cheap.get(cancel.assignmentId)?.finish(`cancelled: ${cancel.reason}`)
  }
}
