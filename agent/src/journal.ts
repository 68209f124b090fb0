// The agent's journal of assignments it has started: at-most-once execution across crashes and restarts.
// An assignment is journaled (written and fsynced) before it starts, so after any crash the agent both refuses
// to run it again and knows it was interrupted. Records are framed with a CRC (spool/frame.ts); a torn last
// record is cut off on open.
import { closeSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, statSync } from 'node:fs'
import path from 'node:path'
import { encodeFrame, fsyncDir, scanFrames, writeAllSync } from './spool/frame.ts'

export interface JournalMeta {
  runId: string
  stepId: string
  expiresAtUnixMs: number
}

export interface JournalOptions {
  /** Rewrite the file once it grows past this many bytes (default 1 MiB). */
  compactAtBytes?: number
  now?: () => number
}

export class JournalError extends Error {
  override name = 'JournalError'
}

const FILE = 'journal.log'
// Signed assignments are refused after expires_at plus the agent's clock-skew allowance; keep ids a while past that.
const EXPIRY_MARGIN_MS = 10 * 60_000
const DEFAULT_COMPACT_AT = 1024 * 1024

const BEGIN = 1
const FINISH = 2
// BEGIN and FINISH in one record; only compaction writes it.
const DONE = 3

interface Entry {
  meta: JournalMeta
  finished: boolean
}

export class Journal {
  readonly #dir: string
  readonly #file: string
  readonly #now: () => number
  readonly #minCompactAt: number
  #compactAt: number
  #fd: number
  #size: number
  #closed = false
  // Map keeps insertion order, which is begin order: interrupted() and compaction rely on it.
  #entries: Map<string, Entry>
  readonly #interrupted: string[]

  private constructor(dir: string, fd: number, size: number, entries: Map<string, Entry>, opts: JournalOptions) {
    this.#dir = dir
    this.#file = path.join(dir, FILE)
    this.#fd = fd
    this.#size = size
    this.#entries = entries
    this.#now = opts.now ?? Date.now
    this.#minCompactAt = opts.compactAtBytes ?? DEFAULT_COMPACT_AT
    this.#compactAt = this.#minCompactAt
    this.#interrupted = [...entries].filter(([, e]) => !e.finished).map(([id]) => id)
  }

  static open(dir: string, opts: JournalOptions = {}): Journal {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const file = path.join(dir, FILE)
    let buf: Buffer
    let created = false
    try {
      buf = readFileSync(file)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      buf = Buffer.alloc(0)
      created = true
    }
    const entries = new Map<string, Entry>()
    const end = scanFrames(buf, (start, stop) => replay(entries, buf.subarray(start, stop)))
    const fd = openSync(file, 'a', 0o600)
    try {
      if (end < buf.length) {
        ftruncateSync(fd, end)
        fsyncSync(fd)
      }
      if (created) {
        fsyncSync(fd)
        fsyncDir(dir)
      }
    } catch (err) {
      closeSync(fd)
      throw err
    }
    const journal = new Journal(dir, fd, end, entries, opts)
    journal.#maybeCompact()
    return journal
  }

  has(assignmentId: string): boolean {
    return this.#entries.has(assignmentId)
  }

  /** Durable (fsynced) when it returns; call it before the assignment starts. Throws for an id already journaled. */
  begin(assignmentId: string, meta: JournalMeta): void {
    if (this.#entries.has(assignmentId)) throw new JournalError(`assignment ${assignmentId} is already journaled`)
    if (!Number.isFinite(meta.expiresAtUnixMs)) throw new JournalError(`assignment ${assignmentId} has no valid expiry`)
    const entry: Entry = { meta: { runId: meta.runId, stepId: meta.stepId, expiresAtUnixMs: meta.expiresAtUnixMs }, finished: false }
    this.#append(record(BEGIN, assignmentId, entry.meta), true)
    this.#entries.set(assignmentId, entry)
    this.#maybeCompact()
  }

  // Not fsynced: it survives a process kill, and after a power loss the spool (not fsynced either) may have lost
  // the result too, so reporting the assignment as interrupted is then the accurate outcome.
  finish(assignmentId: string): void {
    const entry = this.#entries.get(assignmentId)
    if (!entry) throw new JournalError(`assignment ${assignmentId} was never journaled`)
    if (entry.finished) return
    this.#append(record(FINISH, assignmentId), false)
    entry.finished = true
    this.#maybeCompact()
  }

  /** Ids begun but not finished when the journal was opened, in begin order. */
  interrupted(): string[] {
    return [...this.#interrupted]
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    closeSync(this.#fd)
  }

  #append(frame: Buffer, sync: boolean): void {
    if (this.#closed) throw new JournalError('journal is closed')
    try {
      writeAllSync(this.#fd, frame)
      if (sync) fsyncSync(this.#fd)
    } catch (err) {
      // Cut a partial record off, or every later append would sit behind a torn frame and be lost on replay.
      try {
        ftruncateSync(this.#fd, this.#size)
      } catch {
        // The original error is the one worth reporting.
      }
      throw err
    }
    this.#size += frame.length
  }

  #maybeCompact(): void {
    if (this.#size > this.#compactAt) this.#compact()
  }

  // Keeps unfinished ids and those whose expiry (plus margin) has not passed: an expired assignment is refused
  // on its signed expiry alone, so its id no longer needs to be remembered.
  #compact(): void {
    const cutoff = this.#now() - EXPIRY_MARGIN_MS
    const kept = new Map<string, Entry>()
    const frames: Buffer[] = []
    for (const [id, entry] of this.#entries) {
      if (entry.finished && entry.meta.expiresAtUnixMs < cutoff) continue
      kept.set(id, entry)
      frames.push(record(entry.finished ? DONE : BEGIN, id, entry.meta))
    }
    const tmp = `${this.#file}.tmp`
    const fd = openSync(tmp, 'w', 0o600)
    try {
      writeAllSync(fd, Buffer.concat(frames))
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    // Windows will not rename over a file that is open.
    closeSync(this.#fd)
    try {
      renameSync(tmp, this.#file)
      this.#entries = kept
    } finally {
      this.#fd = openSync(this.#file, 'a', 0o600)
      this.#size = statSync(this.#file).size
    }
    fsyncDir(this.#dir)
    // Everything kept may still be needed; wait for real growth before rewriting again.
    this.#compactAt = Math.max(this.#minCompactAt, 2 * this.#size)
  }
}

function record(type: number, id: string, meta?: JournalMeta): Buffer {
  const body = meta ? { id, run: meta.runId, step: meta.stepId, exp: meta.expiresAtUnixMs } : { id }
  return encodeFrame(Uint8Array.of(type), Buffer.from(JSON.stringify(body)))
}

function replay(entries: Map<string, Entry>, payload: Buffer): void {
  const type = payload[0]
  let body: { id?: unknown; run?: unknown; step?: unknown; exp?: unknown }
  try {
    body = JSON.parse(payload.subarray(1).toString('utf8'))
  } catch (err) {
    throw new JournalError('journal record passed its checksum but is not readable', { cause: err })
  }
  if (typeof body.id !== 'string') throw new JournalError('journal record has no assignment id')
  if (type === FINISH) {
    const entry = entries.get(body.id)
    if (entry) entry.finished = true
    return
  }
  if ((type === BEGIN || type === DONE) && !entries.has(body.id)) {
    const meta = { runId: String(body.run ?? ''), stepId: String(body.step ?? ''), expiresAtUnixMs: Number(body.exp) }
    entries.set(body.id, { meta, finished: type === DONE })
  }
}
