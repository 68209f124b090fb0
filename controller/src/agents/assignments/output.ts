import { sql } from 'drizzle-orm'
import { Batcher } from '../../db/batcher.ts'
import type { OutputChunk } from '../../../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import type { AppContext } from '../../context.ts'
import { agentAssignment, agentOutput } from './assignments.sql.ts'
import { STREAM_NAMES, type AssignmentEvents } from './events.ts'
import { isUuid } from '../../db/client.ts'

interface OutputState {
  agentId: string
  ackedSeq: number
  outputBytes: number
  droppedBytes: number
  truncated: boolean
}

type Ack = { assignmentId: string; ackedSeq: bigint }
type OutputRow = typeof agentOutput.$inferInsert

/** Rows stay under ~8 MB of hex per statement (postgres.js sends bytea as hex). */
const ROW_BYTES_PER_INSERT = 4 * 1024 * 1024

/**
 * Rows first, then the acked seqs: a crash between them leaves rows a resend skips (same seq),
 * never an acked seq without its rows — so no transaction is needed. `greatest` keeps an acked
 * seq from going back when a closed session's last write lands after its successor's.
 */
async function writeOutput(ctx: AppContext, rows: OutputRow[], updates: (OutputState & { id: string })[]): Promise<void> {
  for (let start = 0; start < rows.length; ) {
    let end = start
    let bytes = 0
    while (end < rows.length && (end === start || bytes + rows[end]!.data.length <= ROW_BYTES_PER_INSERT)) bytes += rows[end++]!.data.length
    await ctx.db.insert(agentOutput).values(rows.slice(start, end)).onConflictDoNothing()
    start = end
  }
  if (updates.length === 0) return
  const values = sql.join(
    updates.map((u) => sql`(${u.id}::uuid, ${u.ackedSeq}::bigint, ${u.outputBytes}::bigint, ${u.droppedBytes}::bigint, ${u.truncated}::boolean)`),
    sql`, `,
  )
  await ctx.db.execute(sql`
    update ${agentAssignment} a set
      acked_seq = greatest(a.acked_seq, v.acked_seq),
      output_bytes = greatest(a.output_bytes, v.output_bytes),
      dropped_bytes = greatest(a.dropped_bytes, v.dropped_bytes),
      truncated = a.truncated or v.truncated
    from (values ${values}) as v(id, acked_seq, output_bytes, dropped_bytes, truncated)
    where a.id = v.id`)
}

/**
 * Persists output chunks exactly once: a chunk is kept only when its seq is the next one after
 * the highest contiguous seq already stored (a resend of an older chunk is acked, not stored
 * again), inside one transaction per batch together with the assignment's acked seq.
 * Beyond the per-step cap, chunks are acked but not kept, and the assignment is marked truncated.
 */
export class OutputWriter {
  private readonly states = new Map<string, OutputState>()
  /** Output of every session written together: one insert and one update per event-loop turn. */
  private readonly writes = new Batcher<{ rows: OutputRow[]; updates: (OutputState & { id: string })[] }>((batches) =>
    writeOutput(this.ctx, batches.flatMap((b) => b.rows), batches.flatMap((b) => b.updates)),
  )

  constructor(
    private readonly ctx: AppContext,
    private readonly events: AssignmentEvents,
    private readonly capBytes: number,
  ) {}

  /** A new assignment starts with no output: its state needs no read-back. */
  seed(assignmentId: string, agentId: string): void {
    this.states.set(assignmentId, { agentId, ackedSeq: 0, outputBytes: 0, droppedBytes: 0, truncated: false })
  }

  forget(assignmentId: string): void {
    this.states.delete(assignmentId)
  }

  async persist(agentId: string, chunks: OutputChunk[]): Promise<Ack[]> {
    const byAssignment = new Map<string, OutputChunk[]>()
    for (const chunk of chunks) {
      const list = byAssignment.get(chunk.assignmentId)
      if (list) list.push(chunk)
      else byAssignment.set(chunk.assignmentId, [chunk])
    }
    const rows: OutputRow[] = []
    const updates: { id: string; before: OutputState; after: OutputState }[] = []
    for (const [assignmentId, list] of byAssignment) {
      let before = await this.state(assignmentId)
      // A gap after what this process remembers: another controller may have stored the chunks in
      // between (the agent was connected there for a while). The database knows; ask it again.
      const firstNew = before && list.find((c) => Number(c.seq) > before!.ackedSeq)
      if (before && firstNew && Number(firstNew.seq) > before.ackedSeq + 1) {
        this.states.delete(assignmentId)
        before = await this.state(assignmentId)
      }
      if (!before || before.agentId !== agentId) {
        this.ctx.log.warn({ agentId, assignmentId }, 'agents.output_for_unknown_assignment')
        continue
      }
      const after = { ...before }
      for (const chunk of list) {
        const seq = Number(chunk.seq)
        if (seq <= after.ackedSeq) continue // a resend of what is already stored
        if (seq !== after.ackedSeq + 1) {
          this.ctx.log.warn({ assignmentId, expected: after.ackedSeq + 1, got: seq }, 'agents.output_out_of_order')
          break
        }
        after.ackedSeq = seq
        const dropped = Number(chunk.droppedBytes)
        after.droppedBytes += dropped
        const room = Math.max(0, this.capBytes - after.outputBytes)
        const data = chunk.data.length > room ? chunk.data.subarray(0, room) : chunk.data
        if (data.length < chunk.data.length) after.truncated = true
        if (data.length === 0 && dropped === 0) continue
        after.outputBytes += data.length
        rows.push({ assignmentId, seq, stream: chunk.stream, byteOffset: Number(chunk.byteOffset), data: Buffer.from(data), droppedBytes: dropped })
      }
      if (after.ackedSeq !== before.ackedSeq) updates.push({ id: assignmentId, before, after })
    }
    if (updates.length) {
      await this.writes.add({ rows, updates: updates.map((u) => ({ id: u.id, ...u.after })) })
      for (const u of updates) this.states.set(u.id, u.after)
      for (const row of rows) {
        this.events.emit(row.assignmentId, {
          type: 'output',
          stream: STREAM_NAMES[row.stream] ?? 'stdout',
          seq: row.seq,
          byteOffset: row.byteOffset,
          data: row.data,
          droppedBytes: row.droppedBytes ?? 0,
        })
      }
    }
    const acks: Ack[] = []
    for (const id of byAssignment.keys()) {
      const state = this.states.get(id)
      if (state && state.agentId === agentId) acks.push({ assignmentId: id, ackedSeq: BigInt(state.ackedSeq) })
    }
    return acks
  }

  private async state(assignmentId: string): Promise<OutputState | undefined> {
    const cached = this.states.get(assignmentId)
    if (cached) return cached
    if (!isUuid(assignmentId)) return undefined
    const [row] = await this.ctx.db
      .select({
        agentId: agentAssignment.agentId,
        ackedSeq: agentAssignment.ackedSeq,
        outputBytes: agentAssignment.outputBytes,
        droppedBytes: agentAssignment.droppedBytes,
        truncated: agentAssignment.truncated,
      })
      .from(agentAssignment)
      .where(sql`${agentAssignment.id} = ${assignmentId}`)
    if (!row) return undefined
    this.states.set(assignmentId, row)
    return row
  }
}
