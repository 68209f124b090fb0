/*
 * Replaces every secret a run uses with "****" in its output, before the output is stored or
 * streamed. Works on bytes, never strings: chunks may split UTF-8 sequences, and a secret may be
 * split across chunks.
 *
 * Matching is leftmost-longest: scanning forward, at each position the longest secret that starts
 * there is replaced and scanning resumes after it. So of two overlapping secrets only the first is
 * replaced ("abcdef" and "cdefgh" in "abcdefgh" give "****gh").
 *
 * A stream holds back only the longest tail of its input that is a proper prefix of some secret;
 * everything before that tail is final, because no secret that starts there can still change
 * with later bytes. So stream output equals maskAll() of the whole input, whatever the chunking.
 */

export const MASK = '****'
const MASK_BYTES = Buffer.from(MASK)

/** Shorter secrets would mask ordinary output. */
export const MIN_SECRET_BYTES = 3
/** Lines of a multi-line secret (a private key) are masked on their own from this length. */
export const MIN_SECRET_LINE_BYTES = 8

export class SecretMasker {
  private index: PatternIndex = buildIndex([])
  private readonly seen = new Set<string>()

  constructor(secrets: Iterable<string | Buffer> = []) {
    for (const s of secrets) this.add(s)
  }

  add(secret: string | Buffer): void {
    const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret)
    const added = this.addPattern(bytes, MIN_SECRET_BYTES)
    // A secret read from a file often ends in a newline that the output will not repeat.
    const trimmed = trimBytes(bytes, isSpace)
    if (trimmed.length !== bytes.length) this.addPattern(trimmed, MIN_SECRET_BYTES)
    if (added && bytes.includes(NL)) {
      // Output may reflow or re-terminate lines (a PTY turns \n into \r\n), so each line counts.
      let start = 0
      while (start <= bytes.length) {
        const nl = bytes.indexOf(NL, start)
        const end = nl === -1 ? bytes.length : nl
        this.addPattern(trimBytes(bytes.subarray(start, end), (b) => b === CR), MIN_SECRET_LINE_BYTES)
        start = end + 1
      }
    }
  }

  /** The number of distinct byte patterns masked (a multi-line secret adds its lines too). */
  get size(): number {
    return this.index.list.length
  }

  /** Masks one complete buffer. */
  maskAll(data: Buffer): Buffer {
    if (this.index.list.length === 0) return Buffer.from(data)
    const out: Buffer[] = []
    scan(data, this.index, out, true)
    return Buffer.concat(out)
  }

  stream(): MaskingStream {
    return new MaskingStream(this)
  }

  /** The current patterns, longest first. */
  get patterns(): readonly Buffer[] {
    return this.index.list
  }

  /** @internal read afresh by streams on every push, so a secret added later applies to later bytes. */
  get current(): PatternIndex {
    return this.index
  }

  private addPattern(bytes: Buffer, minLength: number): boolean {
    if (bytes.length < minLength) return false
    const key = bytes.toString('latin1')
    if (this.seen.has(key)) return false
    this.seen.add(key)
    // A new index, so a scan in progress keeps the one it started with.
    this.index = buildIndex([...this.index.list, Buffer.from(bytes)])
    return true
  }
}

export class MaskingStream {
  private held: Buffer = Buffer.alloc(0)

  constructor(private readonly masker: SecretMasker) {}

  /** The bytes that are safe to emit now (masked); a possible start of a secret is held back. */
  push(chunk: Buffer): Buffer {
    const index = this.masker.current
    const data = this.held.length === 0 ? chunk : Buffer.concat([this.held, chunk])
    if (index.list.length === 0) {
      this.held = Buffer.alloc(0)
      return Buffer.from(data)
    }
    const out: Buffer[] = []
    const rest = scan(data, index, out, false)
    // Copied: the caller may reuse its chunk buffer.
    this.held = Buffer.from(data.subarray(rest))
    return Buffer.concat(out)
  }

  /** Flushes what is held: no more bytes can complete a secret now (secrets within are still masked). */
  end(): Buffer {
    const held = this.held
    this.held = Buffer.alloc(0)
    if (held.length === 0) return held
    const out: Buffer[] = []
    scan(held, this.masker.current, out, true)
    return Buffer.concat(out)
  }
}

/**
 * Patterns bucketed by first byte, each bucket longest first. Scanning looks up the byte at each
 * position and compares only the few patterns that start with it: one pass over the data in JS,
 * rather than a native indexOf per pattern per chunk (which dominates on small chunks).
 */
export interface PatternIndex {
  readonly list: readonly Buffer[]
  readonly byFirstByte: readonly (readonly Buffer[] | undefined)[]
  /** 1 where some pattern starts with that byte: the scan's fast skip. */
  readonly starts: Uint8Array
  readonly maxLength: number
}

function buildIndex(patterns: Buffer[]): PatternIndex {
  const list = patterns.sort((a, b) => b.length - a.length)
  const byFirstByte: Buffer[][] = []
  const starts = new Uint8Array(256)
  for (const p of list) {
    const first = p[0]!
    byFirstByte[first] = [...(byFirstByte[first] ?? []), p]
    starts[first] = 1
  }
  return { list, byFirstByte, starts, maxLength: list[0]?.length ?? 0 }
}

const NL = 0x0a
const CR = 0x0d

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === NL || b === CR
}

function trimBytes(b: Buffer, strip: (byte: number) => boolean): Buffer {
  let start = 0
  let end = b.length
  while (start < end && strip(b[start]!)) start++
  while (end > start && strip(b[end - 1]!)) end--
  return b.subarray(start, end)
}

/**
 * Appends the masked form of `data` to `out` up to where it must stop, and returns that offset:
 * `data.length` when `final`, else the start of the held-back tail.
 */
function scan(data: Buffer, index: PatternIndex, out: Buffer[], final: boolean): number {
  const n = data.length
  let hold = final ? n : heldTailStart(data, 0, index)
  let emitted = 0
  const { starts } = index
  let i = 0
  while (i < hold) {
    if (starts[data[i]!] === 0) {
      i++
      continue
    }
    const match = longestMatchAt(data, i, index.byFirstByte[data[i]!])
    if (match === 0) {
      i++
      continue
    }
    if (i > emitted) out.push(data.subarray(emitted, i))
    out.push(MASK_BYTES)
    i += match
    emitted = i
    // A match may run into the tail that was held back; the tail is then looked for again after it.
    if (i > hold) hold = final ? n : heldTailStart(data, i, index)
  }
  if (hold > emitted) out.push(data.subarray(emitted, hold))
  return hold
}

/** The length of the longest pattern that occurs in full at data[at], or 0. */
function longestMatchAt(data: Buffer, at: number, candidates: readonly Buffer[] | undefined): number {
  if (!candidates) return 0
  const room = data.length - at
  for (const p of candidates) {
    if (p.length <= room && sameBytes(p, data, at, p.length)) return p.length
  }
  return 0
}

/** Whether p[1..length) equals data[at+1..at+length) (the first byte is already known to match). */
function sameBytes(p: Buffer, data: Buffer, at: number, length: number): boolean {
  for (let k = 1; k < length; k++) if (p[k] !== data[at + k]) return false
  return true
}

/** The start of the longest tail of data[from..] that is a proper prefix of some pattern, else data.length. */
function heldTailStart(data: Buffer, from: number, index: PatternIndex): number {
  const n = data.length
  for (let start = Math.max(from, n - index.maxLength + 1); start < n; start++) {
    const candidates = index.byFirstByte[data[start]!]
    if (!candidates) continue
    const tail = n - start
    for (const p of candidates) {
      // Longest first: once patterns are no longer than the tail, none can be a proper prefix match.
      if (p.length <= tail) break
      if (sameBytes(p, data, start, tail)) return start
    }
  }
  return n
}
