import type { AppContext } from '../context.ts'
import { Batcher } from '../db/batcher.ts'
import type { OutputStream, StepOutputSink } from '../executors/types.ts'
import type { MaskingStream, SecretMasker } from '../../../proto/src/masking.ts'
import { stepOutput } from './runs.sql.ts'

const CHUNK_BYTES = 32 * 1024
const CHUNK_DELAY_MS = 50
const STREAM_CODES: Record<OutputStream, number> = { stdout: 1, stderr: 2 }

type Row = typeof stepOutput.$inferInsert

/** All controller-side steps' output rows of one event-loop turn go in one INSERT. */
export class OutputRows {
  private readonly batcher: Batcher<Row>
  constructor(ctx: AppContext) {
    this.batcher = new Batcher<Row>((rows) => ctx.db.insert(stepOutput).values(rows).onConflictDoNothing().then(() => undefined))
  }
  add(row: Row): Promise<void> {
    return this.batcher.add(row)
  }
}

/**
 * Output of a step the controller runs itself: secrets masked (also across chunk boundaries),
 * coalesced into chunks of up to 32 KiB / 50 ms, numbered, capped, stored.
 */
export class StepOutputWriter implements StepOutputSink {
  private seq = 0
  private bytes = 0
  private truncated = false
  private pending: { stream: OutputStream; parts: Buffer[]; size: number } | undefined
  private timer: NodeJS.Timeout | undefined
  private readonly masks = new Map<OutputStream, MaskingStream>()
  private readonly writes: Promise<void>[] = []
  private failed: unknown

  constructor(
    private readonly rows: OutputRows,
    private readonly stepRunId: string,
    private readonly masker: SecretMasker,
    private readonly capBytes: number,
  ) {}

  write(stream: OutputStream, data: Buffer | string): void {
    const raw = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
    let mask = this.masks.get(stream)
    if (!mask) this.masks.set(stream, (mask = this.masker.stream()))
    this.append(stream, mask.push(raw))
  }

  private append(stream: OutputStream, data: Buffer): void {
    if (data.length === 0) return
    if (this.pending && this.pending.stream !== stream) this.flush()
    const room = this.capBytes - this.bytes - (this.pending?.size ?? 0)
    if (room <= 0) {
      this.truncated = true
      return
    }
    const kept = data.length > room ? data.subarray(0, room) : data
    if (kept.length < data.length) this.truncated = true
    this.pending ??= { stream, parts: [], size: 0 }
    this.pending.parts.push(kept)
    this.pending.size += kept.length
    if (this.pending.size >= CHUNK_BYTES) this.flush()
    else this.timer ??= setTimeout(() => this.flush(), CHUNK_DELAY_MS)
  }

  private flush(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    const p = this.pending
    if (!p) return
    this.pending = undefined
    this.bytes += p.size
    const write = this.rows.add({ stepRunId: this.stepRunId, seq: ++this.seq, stream: STREAM_CODES[p.stream], data: Buffer.concat(p.parts, p.size) })
    this.writes.push(write.catch((err) => void (this.failed = err)))
  }

  /** Flushes what masking held back and everything pending; resolves when all of it is stored. */
  async close(): Promise<{ outputBytes: number; truncated: boolean }> {
    for (const [stream, mask] of this.masks) this.append(stream, mask.end())
    this.flush()
    await Promise.all(this.writes)
    if (this.failed) throw this.failed
    return { outputBytes: this.bytes, truncated: this.truncated }
  }
}
