// The agent's outbox: every OutputChunk and AssignmentResult is written here before it is sent, and stays until
// the controller acks it, so a reconnect or a restart resends exactly what is unacked, in the original order.
//
// Layout: append-only segment files `seg-<n>.log` of CRC-framed records (spool/records.ts): output, result,
// output-ack, result-ack and checkpoint. Memory holds an index of unacked entries (where each record lives), never
// the data. A sealed segment is deleted once nothing in it is unacked; a checkpoint of every assignment's ack
// state is written to the head first, so acks that lived in the deleted file are not forgotten. Over budget, the
// oldest segment is evicted: its unacked results move to the head, its unacked output is replaced by gap markers
// (same seq, no data, dropped_bytes set) that keep the position of the chunk they replace, so seqs stay
// contiguous and the controller's cumulative ack still advances. Results are never dropped.
//
// Writes are not fsynced: data written with write(2) sits in the kernel and survives the agent process being
// killed. Only a power loss or kernel crash loses the tail, and then the journal (which is fsynced) reports the
// assignments that were running as interrupted.
import { fromBinary, toBinary } from '@bufbuild/protobuf'
import { mkdirSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { AssignmentResultSchema, OutputChunkSchema, type AssignmentResult, type OutputChunk } from '../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { scanFrames } from './spool/frame.ts'
import { checkpointFrame, dataFrame, DATA_BODY_AT, decodeRecord, gapMarker, outputAckFrame, REC, resultAckFrame, type AckState } from './spool/records.ts'
import { Segment, segmentNumbers } from './spool/segment.ts'

export interface SpoolOptions {
  /** Disk budget for the whole spool (default 256 MiB); it may overshoot by about one segment. */
  maxBytes?: number
  /** Size at which the head segment is sealed and a new one started (default 8 MiB). */
  segmentBytes?: number
}

export type SpoolEntry = { kind: 'output'; chunk: OutputChunk } | { kind: 'result'; result: AssignmentResult }

export interface SpoolUsage {
  bytes: number
  segments: number
  /** Unacked output chunks and results. */
  entries: number
}

export class SpoolError extends Error {
  override name = 'SpoolError'
}

const MiB = 1024 * 1024

interface Assignment extends AckState {
  /** Unacked output in seq order, from outHead on. */
  outputs: Entry[]
  outHead: number
  result: Entry | undefined
}

interface Entry {
  readonly ord: number
  readonly kind: 'output' | 'result'
  readonly assignment: Assignment
  readonly seq: bigint
  /** Output bytes still held (0 for a gap marker or a result): what eviction would free. */
  data: number
  seg: Segment
  offset: number
  length: number
  live: boolean
}

type Located = Omit<Entry, 'ord' | 'live'>

const isDone = (a: AckState) => a.resultAcked && a.ackedSeq >= a.lastSeq

export class Spool {
  readonly #dir: string
  readonly #maxBytes: number
  readonly #segmentBytes: number
  #segments: Segment[] = []
  readonly #assignments = new Map<string, Assignment>()
  /** In ord (append) order; acked entries are dropped lazily. */
  #entries: Entry[] = []
  #live = 0
  #nextOrd = 1
  #droppedBytes = 0
  #closed = false

  private constructor(dir: string, opts: SpoolOptions) {
    this.#dir = dir
    this.#maxBytes = opts.maxBytes ?? 256 * MiB
    this.#segmentBytes = Math.min(opts.segmentBytes ?? 8 * MiB, this.#maxBytes)
    if (!(this.#segmentBytes > 0)) throw new SpoolError('spool maxBytes and segmentBytes must be positive')
  }

  /** Opens the spool in `dir`, recovering what a crash left: a torn last record is cut off. */
  static open(dir: string, opts: SpoolOptions = {}): Spool {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const spool = new Spool(dir, opts)
    try {
      spool.#recover()
    } catch (err) {
      spool.close()
      throw err
    }
    return spool
  }

  appendOutput(chunk: OutputChunk): void {
    this.#assertOpen()
    const known = this.#known(chunk.assignmentId)
    if (chunk.seq <= (known?.lastSeq ?? 0n)) {
      throw new SpoolError(`output seq ${chunk.seq} for ${chunk.assignmentId} does not follow ${known?.lastSeq ?? 0n}`)
    }
    const body = toBinary(OutputChunkSchema, chunk)
    const { seg, offset, ord } = this.#appendData(REC.output, body)
    const a = known ?? this.#assignment(chunk.assignmentId)
    seg.refs.add(a.id)
    a.lastSeq = chunk.seq
    this.#track({ ord, kind: 'output', assignment: a, seq: chunk.seq, data: chunk.data.length, seg, offset, length: body.length, live: true })
    this.#afterWrite()
  }

  /** A result is final: a second one for the same assignment (e.g. "interrupted" after a restart) is ignored. */
  appendResult(result: AssignmentResult): void {
    this.#assertOpen()
    const known = this.#known(result.assignmentId)
    if (known && (known.result || known.resultAcked)) return
    const body = toBinary(AssignmentResultSchema, result)
    const { seg, offset, ord } = this.#appendData(REC.result, body)
    const a = known ?? this.#assignment(result.assignmentId)
    seg.refs.add(a.id)
    this.#track({ ord, kind: 'result', assignment: a, seq: 0n, data: 0, seg, offset, length: body.length, live: true })
    this.#afterWrite()
  }

  /** Cumulative: acks every chunk of the assignment up to and including ackedSeq. Stale and unknown acks are ignored. */
  ackOutput(assignmentId: string, ackedSeq: bigint): void {
    this.#assertOpen()
    const a = this.#assignments.get(assignmentId)
    if (!a || ackedSeq <= a.ackedSeq) return
    this.#head.append(outputAckFrame(assignmentId, ackedSeq))
    this.#head.refs.add(assignmentId)
    a.ackedSeq = ackedSeq
    // The controller holds everything up to ackedSeq; new output must be numbered after it.
    if (ackedSeq > a.lastSeq) a.lastSeq = ackedSeq
    while (a.outHead < a.outputs.length && a.outputs[a.outHead]!.seq <= ackedSeq) this.#kill(a.outputs[a.outHead++]!)
    if (a.outHead > 64 && a.outHead * 2 > a.outputs.length) {
      a.outputs = a.outputs.slice(a.outHead)
      a.outHead = 0
    }
    this.#afterWrite()
  }

  ackResult(assignmentId: string): void {
    this.#assertOpen()
    const a = this.#assignments.get(assignmentId)
    if (!a?.result) return
    this.#head.append(resultAckFrame(assignmentId))
    this.#head.refs.add(assignmentId)
    a.resultAcked = true
    this.#kill(a.result)
    a.result = undefined
    this.#afterWrite()
  }

  /**
   * Every unacked entry in append order, gap markers in place of dropped chunks. Data is read from disk as the
   * iteration goes; entries acked meanwhile are skipped, and entries appended after the call are not included.
   */
  pending(): Iterable<SpoolEntry> {
    this.#assertOpen()
    return this.#read(this.#entries.filter((e) => e.live))
  }

  unackedAssignments(): string[] {
    return [...this.#assignments.values()].filter((a) => a.result || a.outHead < a.outputs.length).map((a) => a.id)
  }

  /** Highest seq appended (or acked by the controller) for the assignment; 0n once it is done and forgotten. */
  lastSeq(assignmentId: string): bigint {
    return this.#assignments.get(assignmentId)?.lastSeq ?? 0n
  }

  /** bytes on disk, segment files, unacked entries, and output bytes dropped for space since this spool was opened. */
  stats(): SpoolUsage & { droppedBytes: number } {
    return { bytes: this.#bytes(), segments: this.#segments.length, entries: this.#live, droppedBytes: this.#droppedBytes }
  }

  close(): void {
    this.#closed = true
    for (const seg of this.#segments) seg.close()
  }

  get #head(): Segment {
    return this.#segments[this.#segments.length - 1]!
  }

  #assertOpen(): void {
    if (this.#closed) throw new SpoolError('spool is closed')
  }

  #known(assignmentId: string): Assignment | undefined {
    if (!assignmentId) throw new SpoolError('spool entry has no assignment id')
    return this.#assignments.get(assignmentId)
  }

  #assignment(id: string): Assignment {
    let a = this.#assignments.get(id)
    if (!a) {
      a = { id, ackedSeq: 0n, lastSeq: 0n, resultAcked: false, outputs: [], outHead: 0, result: undefined }
      this.#assignments.set(id, a)
    }
    return a
  }

  #appendData(type: typeof REC.output | typeof REC.result, body: Uint8Array): { seg: Segment; offset: number; ord: number } {
    const seg = this.#head
    const ord = this.#nextOrd
    const offset = seg.append(dataFrame(type, ord, body)) + DATA_BODY_AT
    this.#nextOrd++
    return { seg, offset, ord }
  }

  #track(e: Entry): void {
    e.seg.live++
    this.#live++
    this.#entries.push(e)
    if (e.kind === 'output') e.assignment.outputs.push(e)
    else e.assignment.result = e
  }

  #kill(e: Entry): void {
    e.live = false
    e.seg.live--
    this.#live--
    if (this.#entries.length > 1024 && this.#live * 2 < this.#entries.length) this.#entries = this.#entries.filter((x) => x.live)
  }

  *#read(snapshot: Entry[]): Generator<SpoolEntry> {
    for (const e of snapshot) {
      if (this.#closed) return
      if (!e.live) continue
      const body = e.seg.read(e.offset, e.length)
      if (e.kind === 'output') yield { kind: 'output', chunk: fromBinary(OutputChunkSchema, body) }
      else yield { kind: 'result', result: fromBinary(AssignmentResultSchema, body) }
    }
  }

  #bytes(): number {
    let total = 0
    for (const seg of this.#segments) total += seg.size
    return total
  }

  #afterWrite(): void {
    if (this.#head.size >= this.#segmentBytes) this.#segments.push(Segment.create(this.#dir, this.#head.n + 1))
    const drained = this.#segments.slice(0, -1).filter((s) => s.live === 0)
    if (drained.length > 0) this.#removeSegments(drained)
    this.#enforceBudget()
  }

  #enforceBudget(): void {
    while (this.#bytes() > this.#maxBytes) {
      if (this.#segments.length === 1) {
        // Only the head is left: seal it so it can be evicted, unless that would free nothing.
        if (!this.#entries.some((e) => e.live && e.data > 0)) return
        this.#segments.push(Segment.create(this.#dir, this.#head.n + 1))
      }
      const before = this.#bytes()
      this.#evict(this.#segments[0]!)
      if (this.#bytes() >= before) return
    }
  }

  /** Deletes a sealed segment, first moving its unacked results to the head and turning its unacked output into gaps. */
  #evict(seg: Segment): void {
    const head = this.#head
    for (const e of this.#entries) {
      if (!e.live || e.seg !== seg) continue
      let body: Uint8Array = seg.read(e.offset, e.length)
      if (e.data > 0) {
        body = toBinary(OutputChunkSchema, gapMarker(fromBinary(OutputChunkSchema, body)))
        this.#droppedBytes += e.data
        e.data = 0
      }
      const at = head.append(dataFrame(e.kind === 'output' ? REC.output : REC.result, e.ord, body))
      seg.live--
      head.live++
      head.refs.add(e.assignment.id)
      e.seg = head
      e.offset = at + DATA_BODY_AT
      e.length = body.length
    }
    this.#removeSegments([seg])
  }

  #removeSegments(victims: Segment[]): void {
    const keep = this.#segments.filter((s) => !victims.includes(s))
    this.#forgetDone(keep)
    const states = [...this.#assignments.values()]
    if (states.length > 0) {
      this.#head.append(checkpointFrame(states))
      for (const s of states) if (!isDone(s)) this.#head.refs.add(s.id)
    }
    for (const seg of victims) seg.remove()
    this.#segments = keep
  }

  /** An assignment whose output and result are all acked is forgotten once no kept file says anything about it. */
  #forgetDone(keep: Segment[]): void {
    for (const a of this.#assignments.values()) {
      if (isDone(a) && !keep.some((s) => s.refs.has(a.id))) this.#assignments.delete(a.id)
    }
  }

  #recover(): void {
    const latest = new Map<number, Located>() // ord → its latest copy: a moved result or a gap marker wins
    for (const n of segmentNumbers(readdirSync(this.#dir))) {
      const buf = readFileSync(path.join(this.#dir, `seg-${n}.log`))
      const frames: [number, number][] = []
      const end = scanFrames(buf, (start, stop) => frames.push([start, stop]))
      const seg = Segment.recover(this.#dir, n, end, buf.length)
      this.#segments.push(seg)
      for (const [start, stop] of frames) this.#replay(seg, buf.subarray(start, stop), stop, latest)
    }
    for (const [ord, loc] of [...latest].sort((x, y) => x[0] - y[0])) {
      const a = loc.assignment
      const acked = loc.kind === 'output' ? loc.seq <= a.ackedSeq : a.resultAcked || a.result !== undefined
      if (!acked) this.#track({ ...loc, ord, live: true })
    }
    this.#forgetDone(this.#segments)
    if (this.#segments.length === 0) this.#segments.push(Segment.create(this.#dir, 1))
    this.#afterWrite()
  }

  #replay(seg: Segment, payload: Buffer, stop: number, latest: Map<number, Located>): void {
    const rec = decodeRecord(payload)
    switch (rec.type) {
      case REC.output:
      case REC.result: {
        const output = rec.type === REC.output ? fromBinary(OutputChunkSchema, rec.body) : undefined
        const a = this.#assignment(output?.assignmentId ?? fromBinary(AssignmentResultSchema, rec.body).assignmentId)
        const seq = output?.seq ?? 0n
        if (seq > a.lastSeq) a.lastSeq = seq
        seg.refs.add(a.id)
        const kind = output ? 'output' : 'result'
        latest.set(rec.ord, { kind, assignment: a, seq, data: output?.data.length ?? 0, seg, offset: stop - rec.body.length, length: rec.body.length })
        if (rec.ord >= this.#nextOrd) this.#nextOrd = rec.ord + 1
        return
      }
      case REC.outputAck:
        this.#merge(seg, { id: rec.id, ackedSeq: rec.ackedSeq, lastSeq: rec.ackedSeq, resultAcked: false })
        return
      case REC.resultAck:
        this.#merge(seg, { id: rec.id, ackedSeq: 0n, lastSeq: 0n, resultAcked: true })
        return
      case REC.checkpoint:
        // A checkpoint line for a finished assignment is harmless on its own, so it does not keep it alive.
        for (const s of rec.states) this.#merge(isDone(s) ? undefined : seg, s)
        return
      default:
        return
    }
  }

  #merge(seg: Segment | undefined, s: AckState): void {
    const a = this.#assignment(s.id)
    if (s.ackedSeq > a.ackedSeq) a.ackedSeq = s.ackedSeq
    if (s.lastSeq > a.lastSeq) a.lastSeq = s.lastSeq
    if (s.resultAcked) a.resultAcked = true
    seg?.refs.add(s.id)
  }
}

/**
 * What `Spool.open(dir).stats()` would report, without opening it: reads only, creates and cuts nothing (so
 * `status`, run by another user or while the agent runs, never touches the agent's files).
 */
export function inspectSpool(dir: string): SpoolUsage {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { bytes: 0, segments: 0, entries: 0 }
    throw err
  }
  const acks = new Map<string, AckState>()
  const ack = (id: string) => acks.get(id) ?? acks.set(id, { id, ackedSeq: 0n, lastSeq: 0n, resultAcked: false }).get(id)!
  const latest = new Map<number, { kind: 'output' | 'result'; id: string; seq: bigint }>()
  const usage: SpoolUsage = { bytes: 0, segments: 0, entries: 0 }
  for (const n of segmentNumbers(names)) {
    const buf = readFileSync(path.join(dir, `seg-${n}.log`))
    usage.segments++
    usage.bytes += scanFrames(buf, (start, stop) => {
      const rec = decodeRecord(buf.subarray(start, stop))
      if (rec.type === REC.output) {
        const chunk = fromBinary(OutputChunkSchema, rec.body)
        latest.set(rec.ord, { kind: 'output', id: chunk.assignmentId, seq: chunk.seq })
      } else if (rec.type === REC.result) {
        latest.set(rec.ord, { kind: 'result', id: fromBinary(AssignmentResultSchema, rec.body).assignmentId, seq: 0n })
      } else if (rec.type === REC.outputAck) {
        const a = ack(rec.id)
        if (rec.ackedSeq > a.ackedSeq) a.ackedSeq = rec.ackedSeq
      } else if (rec.type === REC.resultAck) {
        ack(rec.id).resultAcked = true
      } else if (rec.type === REC.checkpoint) {
        for (const s of rec.states) {
          const a = ack(s.id)
          if (s.ackedSeq > a.ackedSeq) a.ackedSeq = s.ackedSeq
          if (s.resultAcked) a.resultAcked = true
        }
      }
    })
  }
  // As on open: one result per assignment counts, the first by position.
  const results = new Set<string>()
  for (const [, e] of [...latest].sort((x, y) => x[0] - y[0])) {
    const a = acks.get(e.id)
    if (e.kind === 'output' ? e.seq > (a?.ackedSeq ?? 0n) : !a?.resultAcked && !results.has(e.id)) usage.entries++
    if (e.kind === 'result') results.add(e.id)
  }
  return usage
}
