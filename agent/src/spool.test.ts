import { create } from '@bufbuild/protobuf'
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, rmSync, statSync, truncateSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'
import { AssignmentResultSchema, OutputChunkSchema, OutputStream, type OutputChunk } from '../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { inspectSpool, Spool, SpoolError, type SpoolEntry } from './spool.ts'

const KiB = 1024
const roots: string[] = []
const tempDir = () => {
  roots.push(mkdtempSync(path.join(tmpdir(), 'opsc-spool-')))
  return path.join(roots.at(-1)!, 'spool')
}
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true })
})

const chunk = (assignmentId: string, seq: number, size = 16, byteOffset = (seq - 1) * size): OutputChunk =>
  create(OutputChunkSchema, {
    assignmentId,
    stream: OutputStream.STDOUT,
    seq: BigInt(seq),
    byteOffset: BigInt(byteOffset),
    data: new Uint8Array(size).fill(seq & 0xff),
  })
const result = (assignmentId: string, lastSeq = 0) =>
  create(AssignmentResultSchema, { assignmentId, exitCode: 0, lastSeq: BigInt(lastSeq), finishedAtUnixMs: 1n })

/** A compact, comparable view of pending(): "a1#3" for output (with "~N" for a gap of N bytes), "a1!" for a result. */
const view = (entries: Iterable<SpoolEntry>) =>
  [...entries].map((e) =>
    e.kind === 'result' ? `${e.result.assignmentId}!` : `${e.chunk.assignmentId}#${e.chunk.seq}${e.chunk.droppedBytes ? `~${e.chunk.droppedBytes}` : ''}`,
  )

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((sum, name) => sum + statSync(path.join(dir, name)).size, 0)
}
const segmentFiles = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('seg-')).sort((a, b) => Number(a.slice(4, -4)) - Number(b.slice(4, -4)))

test('pending returns every unacked entry in append order, with data intact', () => {
  const spool = Spool.open(tempDir())
  spool.appendOutput(chunk('a1', 1))
  spool.appendOutput(chunk('a2', 1))
  spool.appendOutput(chunk('a1', 2, 100))
  spool.appendResult(result('a2', 1))
  spool.appendOutput(chunk('a1', 3))
  assert.deepEqual(view(spool.pending()), ['a1#1', 'a2#1', 'a1#2', 'a2!', 'a1#3'])
  const second = [...spool.pending()][2]!
  assert.equal(second.kind, 'output')
  assert.deepEqual(second.kind === 'output' && second.chunk, chunk('a1', 2, 100))

  spool.ackOutput('a1', 2n)
  assert.deepEqual(view(spool.pending()), ['a2#1', 'a2!', 'a1#3'])
  spool.ackResult('a2')
  assert.deepEqual(view(spool.pending()), ['a2#1', 'a1#3'])
  assert.deepEqual(spool.unackedAssignments().sort(), ['a1', 'a2'])
  spool.ackOutput('a2', 1n)
  assert.deepEqual(spool.unackedAssignments(), ['a1'])
  assert.deepEqual(spool.stats().entries, 1)
  spool.close()
})

test('acks are cumulative and idempotent; stale and unknown acks change nothing', () => {
  const dir = tempDir()
  const spool = Spool.open(dir)
  for (let seq = 1; seq <= 5; seq++) spool.appendOutput(chunk('a1', seq))
  spool.ackOutput('a1', 3n)
  const bytes = spool.stats().bytes
  spool.ackOutput('a1', 3n)
  spool.ackOutput('a1', 2n)
  spool.ackOutput('unknown', 9n)
  spool.ackResult('a1') // no result yet
  assert.equal(spool.stats().bytes, bytes, 'a stale ack writes nothing')
  assert.deepEqual(view(spool.pending()), ['a1#4', 'a1#5'])
  spool.ackOutput('a1', 5n)
  assert.deepEqual(view(spool.pending()), [])
  assert.equal(spool.lastSeq('a1'), 5n)
  assert.equal(spool.lastSeq('other'), 0n)
  spool.close()
})

test('refuses output whose seq does not follow the last one, and keeps only the first result', () => {
  const spool = Spool.open(tempDir())
  spool.appendOutput(chunk('a1', 1))
  assert.throws(() => spool.appendOutput(chunk('a1', 1)), SpoolError)
  assert.throws(() => spool.appendOutput(chunk('', 1)), SpoolError)
  spool.appendResult(result('a1', 1))
  spool.appendResult(create(AssignmentResultSchema, { assignmentId: 'a1', interrupted: true }))
  const results = [...spool.pending()].filter((e) => e.kind === 'result')
  assert.equal(results.length, 1)
  assert.equal(results[0]!.kind === 'result' && results[0]!.result.interrupted, false)
  spool.close()
  assert.throws(() => spool.appendOutput(chunk('a1', 2)), /closed/)
})

test('reopening resends exactly the unacked entries and continues the numbering', () => {
  const dir = tempDir()
  const spool = Spool.open(dir, { segmentBytes: 4 * KiB })
  for (let seq = 1; seq <= 40; seq++) spool.appendOutput(chunk('a1', seq, 300))
  spool.appendResult(result('a1', 40))
  for (let seq = 1; seq <= 3; seq++) spool.appendOutput(chunk('a2', seq, 300))
  spool.ackOutput('a1', 25n)
  spool.ackOutput('a2', 1n)
  const before = view(spool.pending())
  spool.close()

  const reopened = Spool.open(dir, { segmentBytes: 4 * KiB })
  assert.deepEqual(view(reopened.pending()), before)
  assert.equal(reopened.lastSeq('a1'), 40n)
  assert.equal(reopened.lastSeq('a2'), 3n)
  reopened.appendOutput(chunk('a2', 4))
  assert.throws(() => reopened.appendOutput(chunk('a1', 40)), SpoolError)
  assert.deepEqual(view(reopened.pending()), [...before, 'a2#4'])
  reopened.close()
})

test('after a crash mid-write the torn record is dropped and the rest is resent', () => {
  const dir = tempDir()
  const spool = Spool.open(dir, { segmentBytes: 2 * KiB })
  for (let seq = 1; seq <= 12; seq++) spool.appendOutput(chunk('a1', seq, 500))
  spool.ackOutput('a1', 4n)
  spool.appendResult(result('a0'))
  spool.appendOutput(chunk('a1', 13, 500))
  const before = view(spool.pending())
  // no close(): the process died while writing seq 13
  const head = path.join(dir, segmentFiles(dir).at(-1)!)
  truncateSync(head, statSync(head).size - 200)

  const recovered = Spool.open(dir, { segmentBytes: 2 * KiB })
  assert.deepEqual(view(recovered.pending()), before.slice(0, -1))
  assert.equal(recovered.lastSeq('a1'), 12n)
  recovered.appendOutput(chunk('a1', 13, 500))
  recovered.close()
  const again = Spool.open(dir, { segmentBytes: 2 * KiB })
  assert.deepEqual(view(again.pending()), before)
  again.close()
})

test('over budget, the oldest output becomes gap markers and results are kept', () => {
  const dir = tempDir()
  const opts = { maxBytes: 32 * KiB, segmentBytes: 4 * KiB }
  const spool = Spool.open(dir, opts)
  spool.appendResult(result('r0'))
  for (let seq = 1; seq <= 100; seq++) {
    spool.appendOutput(chunk('a1', seq, KiB))
    if (seq % 25 === 0) spool.appendResult(result(`r${seq}`))
  }
  const entries = [...spool.pending()]
  const results = entries.flatMap((e) => (e.kind === 'result' ? [e.result.assignmentId] : []))
  assert.deepEqual(results, ['r0', 'r25', 'r50', 'r75', 'r100'])
  const output = entries.flatMap((e) => (e.kind === 'output' ? [e.chunk] : []))
  assert.deepEqual(output.map((c) => Number(c.seq)), Array.from({ length: 100 }, (_, i) => i + 1), 'seqs stay contiguous')
  const gaps = output.filter((c) => c.droppedBytes > 0n)
  assert.ok(gaps.length > 50, `${gaps.length} gaps`)
  for (const [i, c] of output.entries()) {
    assert.equal(c.byteOffset, BigInt(i * KiB))
    if (i < gaps.length) assert.deepEqual([c.data.length, c.droppedBytes], [0, BigInt(KiB)], `seq ${c.seq} is a gap`)
    else assert.deepEqual([c.data.length, c.droppedBytes], [KiB, 0n], `seq ${c.seq} is intact`)
  }
  assert.equal(spool.stats().droppedBytes, gaps.length * KiB)
  assert.deepEqual(view(entries).slice(0, 3), ['r0!', 'a1#1~1024', 'a1#2~1024'], 'gaps and moved results keep their place')
  const before = view(entries)
  spool.close()

  const reopened = Spool.open(dir, opts)
  assert.deepEqual(view(reopened.pending()), before)
  reopened.ackOutput('a1', 100n)
  for (const id of ['r0', 'r25', 'r50', 'r75', 'r100']) reopened.ackResult(id)
  assert.deepEqual(view(reopened.pending()), [])
  reopened.close()
})

test('the disk budget holds under sustained unacked output', () => {
  const dir = tempDir()
  const opts = { maxBytes: 64 * KiB, segmentBytes: 8 * KiB }
  const spool = Spool.open(dir, opts)
  let worst = 0
  for (let seq = 1; seq <= 400; seq++) {
    spool.appendOutput(chunk('a1', seq, 700))
    if (seq % 40 === 0) spool.appendResult(result(`r${seq}`))
    const bytes = dirBytes(dir)
    assert.equal(spool.stats().bytes, bytes)
    worst = Math.max(worst, bytes)
    assert.ok(bytes <= opts.maxBytes + opts.segmentBytes, `${bytes} bytes on disk after seq ${seq}`)
  }
  assert.ok(worst > opts.maxBytes / 2)
  spool.close()
})

test('segments are deleted once everything in them is acked, and finished assignments are forgotten', () => {
  const dir = tempDir()
  const opts = { segmentBytes: 4 * KiB }
  const spool = Spool.open(dir, opts)
  for (let seq = 1; seq <= 60; seq++) spool.appendOutput(chunk('a1', seq, KiB))
  spool.appendResult(result('a1', 60))
  const full = dirBytes(dir)
  assert.ok(segmentFiles(dir).length >= 12)
  spool.ackOutput('a1', 30n)
  const half = dirBytes(dir)
  assert.ok(half < full * 0.6, `${half} of ${full} bytes left after acking half`)
  spool.ackOutput('a1', 60n)
  spool.ackResult('a1')
  // The head is the only segment that may still hold acked data; push it past the segment size to seal it.
  for (let seq = 1; seq <= 5; seq++) spool.appendOutput(chunk('a2', seq, KiB))
  spool.ackOutput('a2', 5n)
  assert.ok(dirBytes(dir) < 2 * opts.segmentBytes, `${dirBytes(dir)} bytes left`)
  assert.deepEqual(spool.unackedAssignments(), [])
  spool.close()

  const reopened = Spool.open(dir, opts)
  assert.deepEqual(view(reopened.pending()), [])
  assert.equal(reopened.lastSeq('a2'), 5n, 'an assignment without a result is remembered')
  reopened.close()
})

test('entries acked while pending() is being iterated are skipped', () => {
  const spool = Spool.open(tempDir())
  for (let seq = 1; seq <= 5; seq++) spool.appendOutput(chunk('a1', seq))
  const seen: string[] = []
  for (const entry of spool.pending()) {
    seen.push(view([entry])[0]!)
    if (seen.length === 1) spool.ackOutput('a1', 3n)
  }
  assert.deepEqual(seen, ['a1#1', 'a1#4', 'a1#5'])
  spool.close()
})

test('matches a simple model through random appends, acks, restarts and segment deletions', () => {
  let seed = 42
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed % n
  }
  const dir = tempDir()
  const opts = { segmentBytes: 2 * KiB }
  type M = { last: number; acked: number; result: boolean; resultAcked: boolean }
  const model = new Map<string, M>()
  const order: { id: string; seq: number }[] = [] // seq 0 = result
  const generation = [0, 0, 0, 0, 0, 0]
  let spool = Spool.open(dir, opts)
  for (let step = 0; step < 3000; step++) {
    const slot = rand(6)
    const id = `a${slot}.${generation[slot]}`
    const m = model.get(id) ?? { last: 0, acked: 0, result: false, resultAcked: false }
    model.set(id, m)
    const op = rand(100)
    if (op < 50 && !m.result) {
      spool.appendOutput(chunk(id, ++m.last, 50 + rand(300)))
      order.push({ id, seq: m.last })
    } else if (op < 55 && !m.result) {
      spool.appendResult(result(id, m.last))
      m.result = true
      order.push({ id, seq: 0 })
    } else if (op < 85 && (m.last > 0 || m.result)) {
      // (the spool ignores acks for assignments it holds nothing of)
      const upTo = m.acked + rand(m.last - m.acked + 2)
      spool.ackOutput(id, BigInt(upTo))
      m.acked = Math.max(m.acked, upTo)
      m.last = Math.max(m.last, m.acked)
    } else if (op < 92) {
      spool.ackResult(id)
      if (m.result) m.resultAcked = true
    } else if (op < 94) {
      spool.close()
      spool = Spool.open(dir, opts)
    }
    // a finished assignment's slot moves on to a new assignment id
    if (m.resultAcked && m.acked >= m.last) {
      generation[slot]!++
      model.delete(id)
      for (let i = order.length - 1; i >= 0; i--) if (order[i]!.id === id) order.splice(i, 1)
    }
    const expected = order
      .filter(({ id: o, seq }) => (seq === 0 ? !model.get(o)!.resultAcked : seq > model.get(o)!.acked))
      .map(({ id: o, seq }) => (seq === 0 ? `${o}!` : `${o}#${seq}`))
    assert.deepEqual(view(spool.pending()), expected, `step ${step}`)
    for (const [mid, mm] of model) assert.equal(spool.lastSeq(mid), BigInt(mm.last), `lastSeq ${mid} at step ${step}`)
  }
  assert.ok(segmentFiles(dir).length < 10, `${segmentFiles(dir).length} segments left`)
  spool.close()
})

test('50 MB of output passes through with the controller acking behind', () => {
  const dir = tempDir()
  const spool = Spool.open(dir)
  const data = 32 * KiB
  let worst = 0
  const started = performance.now()
  for (let seq = 1; seq <= 1600; seq++) {
    spool.appendOutput(chunk('big', seq, data))
    if (seq > 64) spool.ackOutput('big', BigInt(seq - 64)) // the controller is 64 chunks (2 MiB) behind
    worst = Math.max(worst, spool.stats().bytes)
  }
  spool.appendResult(result('big', 1600))
  const pendingCount = [...spool.pending()].length
  spool.ackOutput('big', 1600n)
  spool.ackResult('big')
  const ms = performance.now() - started
  console.log(`# 50 MB pass-through: ${ms.toFixed(0)} ms, at most ${(worst / 1024 / 1024).toFixed(1)} MiB on disk`)
  assert.equal(pendingCount, 65)
  assert.ok(worst <= 2 * 8 * 1024 * 1024 + 2 * 1024 * 1024, `${worst} bytes on disk`)
  assert.ok(dirBytes(dir) <= 8 * 1024 * 1024 + data)
  assert.equal(spool.stats().droppedBytes, 0)
  spool.close()
})

test('inspectSpool reads what stats() reports without opening the spool, and writes nothing', () => {
  const dir = tempDir()
  assert.deepEqual(inspectSpool(dir), { bytes: 0, segments: 0, entries: 0 }, 'no spool yet')
  const spool = Spool.open(dir, { maxBytes: 32 * KiB, segmentBytes: 4 * KiB })
  const usage = () => {
    const { bytes, segments, entries } = spool.stats()
    return { bytes, segments, entries }
  }
  spool.appendResult(result('r0'))
  for (let seq = 1; seq <= 60; seq++) {
    spool.appendOutput(chunk('a1', seq, KiB))
    spool.appendOutput(chunk('a2', seq, 200))
    if (seq % 20 === 0) spool.appendResult(result(`r${seq}`))
    if (seq % 7 === 0) spool.ackOutput('a2', BigInt(seq - 2))
    if (seq === 30) spool.ackResult('r20')
    if (seq % 10 === 0) assert.deepEqual(inspectSpool(dir), usage(), `after seq ${seq}`)
  }
  assert.ok(usage().segments > 1 && spool.stats().droppedBytes > 0, 'several segments, some output evicted to gap markers')
  const files = readdirSync(dir).map((n) => [n, statSync(path.join(dir, n)).mtimeMs])
  assert.deepEqual(inspectSpool(dir), usage())
  assert.deepEqual(readdirSync(dir).map((n) => [n, statSync(path.join(dir, n)).mtimeMs]), files)
  spool.close()
  const reopened = Spool.open(dir)
  const { bytes, segments, entries } = reopened.stats()
  assert.deepEqual(inspectSpool(dir), { bytes, segments, entries }, 'what a restarted agent would find')
  reopened.close()
})
