import { eq, sql } from 'drizzle-orm'
import type { OutputChunk } from '../../../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import type { AppContext } from '../../context.ts'
import { agentAssignment, agentOutput } from './assignments.sql.ts'
import { STREAM_NAMES, type AssignmentEvents } from './events.ts'

interface OutputState {
  agentId: string
  ackedSeq: number
  outputBytes: number
  droppedBytes: number
  truncated: boolean
}

type Ack = { assignmentId: string; ackedSeq: bigint }

/**
 * Persists output chunks exactly once: a chunk is kept only when its seq is the next one after
 * the highest contiguous seq already stored (a resend of an older chunk is acked, not stored
 * again), inside one transaction per batch together with the assignment's acked seq.
 * Beyond the per-step cap, chunks are acked but not kept, and the assignment is marked truncated.
 */
export class OutputWriter {
  private readonly states = new Map<string, OutputState>()

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
    const rows: (typeof agentOutput.$inferInsert)[] = []
    const updates: { id: string; before: OutputState; after: OutputState }[] = []
    for (const [assignmentId, list] of byAssignment) {
      const before = await this.state(assignmentId)
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
      // Rows first, then the acked seq: a crash between them leaves rows a resend skips (same seq),
      // never an acked seq without its rows. So no transaction is needed, and memory (and the ack)
      // advance only after both writes.
      for (let i = 0; i < rows.length; i += 500) await this.ctx.db.insert(agentOutput).values(rows.slice(i, i + 500)).onConflictDoNothing()
      await Promise.all(
        updates.map((u) =>
          this.ctx.db
            .update(agentAssignment)
            .set({ ackedSeq: u.after.ackedSeq, outputBytes: u.after.outputBytes, droppedBytes: u.after.droppedBytes, truncated: u.after.truncated })
            .where(eq(agentAssignment.id, u.id)),
        ),
      )
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
    if (!/^[0-9a-f-]{36}$/i.test(assignmentId)) return undefined
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
