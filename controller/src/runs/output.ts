import { sql } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import { byteaValue } from '../db/bytea.ts'
import { rowsOf } from '../db/migrate.ts'

/*
 * A step run's output, wherever it was stored: agent steps' chunks are in agent_output (keyed by
 * the assignment id, which is the step run id), controller-side steps' in step_output.
 */

const STREAM_CODES: Record<string, number[]> = { stdout: [1, 3], stderr: [2] }

export interface OutputChunkRow {
  seq: number
  stream: number
  data: Buffer
  dropped_bytes: number
}


export async function readOutput(db: Db, stepRunId: string, opts: { fromSeq?: number; toSeq?: number; stream?: 'stdout' | 'stderr'; limit?: number } = {}): Promise<OutputChunkRow[]> {
  const from = opts.fromSeq ?? 0
  const to = opts.toSeq ?? Number.MAX_SAFE_INTEGER
  const streams = opts.stream ? STREAM_CODES[opts.stream]! : [1, 2, 3, 4]
  const limit = opts.limit ?? 10_000
  const rows = rowsOf<{ seq: string | number; stream: number; data: unknown; dropped_bytes: string | number }>(
    await db.execute(sql`
      select seq, stream, data, dropped_bytes from (
        select seq, stream, data, dropped_bytes from agent_output where assignment_id = ${stepRunId} and seq > ${from} and seq <= ${to}
        union all
        select seq, stream, data, 0 as dropped_bytes from step_output where step_run_id = ${stepRunId} and seq > ${from} and seq <= ${to}
      ) o where stream = any(${`{${streams.join(',')}}`}::smallint[])
      order by seq limit ${limit}`),
  )
  return rows.map((r) => ({ seq: Number(r.seq), stream: r.stream, data: byteaValue(r.data), dropped_bytes: Number(r.dropped_bytes) }))
}

/** A stream's text, up to `maxBytes` (for `{{ steps.x.stdout }}`). */
export async function readOutputText(db: Db, stepRunId: string, stream: 'stdout' | 'stderr', maxBytes: number): Promise<string> {
  const parts: Buffer[] = []
  let size = 0
  let from = 0
  for (;;) {
    const rows = await readOutput(db, stepRunId, { fromSeq: from, stream, limit: 500 })
    for (const r of rows) {
      parts.push(r.data)
      size += r.data.length
      if (size >= maxBytes) return Buffer.concat(parts).subarray(0, maxBytes).toString('utf8')
    }
    if (rows.length < 500) break
    from = rows.at(-1)!.seq
  }
  return Buffer.concat(parts).toString('utf8')
}
