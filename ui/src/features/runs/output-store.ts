import { hasControls, parseAnsi, type SgrState } from './ansi.ts'

/*
 * A run's output as lines, for a viewer that must stay quick with a million of them: flat arrays
 * (plain text per line, the raw text and starting colour state only for lines that have colour, a
 * typed array of sources), chunks decoded per step run and stream (a chunk may split a line or a
 * UTF-8 sequence), an unfinished last line shown and completed in place, and a cap that drops the
 * oldest lines (the download still has everything). Filters and search keep their own index arrays
 * and are extended as lines arrive. No Solid, no DOM: node:test covers it.
 */

export type LineStream = 'stdout' | 'stderr' | 'system'

export interface StyledLine {
  raw: string
  start: SgrState | null
}

export interface OutputLimits {
  maxLines: number
  maxChars: number
  /** An unfinished line longer than this is cut (shown as a line of its own). */
  maxLineChars: number
}

// 2^20 lines of 17 px stay under every browser's largest element height (Firefox: ~17.9 M px).
export const DEFAULT_LIMITS: OutputLimits = { maxLines: 1_048_576, maxChars: 128_000_000, maxLineChars: 32_768 }

interface Source {
  stepRunId: string
  stream: LineStream
  decoder: TextDecoder
  /** The colour state at the end of the last complete line. */
  state: SgrState | null
  /** The unfinished last line: its index, raw text and start state (index −1: none). */
  open: number
  openRaw: string
}

export interface LineFilter {
  /** Which step runs to show (asked once per step run and stream, not per line); null: all. */
  stepRun: ((stepRunId: string) => boolean) | null
  stdout: boolean
  stderr: boolean
}

export const ALL_OUTPUT: LineFilter = { stepRun: null, stdout: true, stderr: true }

export class OutputStore {
  readonly text: string[] = []
  readonly styled: (StyledLine | undefined)[] = []
  private src = new Uint32Array(4096)
  private readonly sources: Source[] = []
  private readonly byKey = new Map<string, number>()
  private chars = 0
  /** Lines dropped from the head to stay under the limits. */
  dropped = 0
  /** Bumped whenever existing line indices change meaning (a drop, a reset): every shown row must redraw. */
  generation = 0
  /** Lines whose text changed after they were added (unfinished lines that grew), since the last commit. */
  private readonly changed = new Set<number>()

  /** Indices of the lines the filter lets through, ascending. */
  view: number[] = []
  private viewedUpTo = 0
  private filter: LineFilter = ALL_OUTPUT
  private allowed: Uint8Array = new Uint8Array(0)
  /** Indices of shown lines that match the search, ascending. */
  matches: number[] = []
  private query: RegExp | null = null

  constructor(private readonly limits: OutputLimits = DEFAULT_LIMITS) {}

  get length(): number {
    return this.text.length
  }

  /** The step run and stream a line came from. */
  sourceOf(line: number): { stepRunId: string; stream: LineStream } {
    const s = this.sources[this.src[line]!]!
    return { stepRunId: s.stepRunId, stream: s.stream }
  }

  isOpen(line: number): boolean {
    const s = this.sources[this.src[line]!]
    return !!s && s.open === line
  }

  /** Appends a chunk of a step run's stream. */
  append(stepRunId: string, stream: LineStream, bytes: Uint8Array): void {
    const source = this.source(stepRunId, stream)
    const s = this.sources[source]!
    this.appendText(source, s.decoder.decode(bytes, { stream: true }))
  }

  /** A line of our own (lost bytes, a gap) among a step run's output. */
  notice(stepRunId: string, message: string): void {
    const source = this.source(stepRunId, 'system')
    this.push(message, null, source)
    this.enforceLimits()
  }

  /** The step run ended: what a decoder held back and any unfinished line are final now. */
  finish(stepRunId: string): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const idx = this.byKey.get(`${stepRunId}\u0000${stream}`)
      if (idx === undefined) continue
      const s = this.sources[idx]!
      const rest = s.decoder.decode()
      if (rest) this.appendText(idx, rest)
      if (s.open >= 0) this.closeOpen(s)
    }
  }

  private source(stepRunId: string, stream: LineStream): number {
    const key = `${stepRunId}\u0000${stream}`
    let idx = this.byKey.get(key)
    if (idx === undefined) {
      idx = this.sources.length
      this.sources.push({ stepRunId, stream, decoder: new TextDecoder('utf-8'), state: null, open: -1, openRaw: '' })
      this.byKey.set(key, idx)
      this.allowed = growBytes(this.allowed, idx + 1)
      this.allowed[idx] = this.passes(this.sources[idx]!) ? 1 : 0
    }
    return idx
  }

  private appendText(source: number, text: string): void {
    if (!text) return
    const s = this.sources[source]!
    let from = 0
    if (s.open >= 0) {
      // Continue the unfinished line in place.
      const nl = text.indexOf('\n')
      const piece = nl < 0 ? text : text.slice(0, nl)
      s.openRaw += piece
      if (nl < 0 && s.openRaw.length <= this.limits.maxLineChars) {
        this.setLine(s.open, s.openRaw, s.state, false, s)
        return
      }
      this.setLine(s.open, stripCr(s.openRaw), s.state, true, s)
      s.open = -1
      s.openRaw = ''
      if (nl < 0) return
      from = nl + 1
    }
    while (from < text.length) {
      const nl = text.indexOf('\n', from)
      if (nl < 0) {
        const raw = text.slice(from)
        s.open = this.push(raw, s.state, source, false)
        s.openRaw = raw
        if (raw.length > this.limits.maxLineChars) this.closeOpen(s)
        break
      }
      this.push(stripCr(text.slice(from, nl)), s.state, source, true)
      from = nl + 1
    }
    this.enforceLimits()
  }

  private closeOpen(s: Source): void {
    this.setLine(s.open, stripCr(s.openRaw), s.state, true, s)
    s.open = -1
    s.openRaw = ''
  }

  /** Adds a line; for a complete line the source's colour state moves on to the line's end. */
  private push(raw: string, start: SgrState | null, source: number, complete = true): number {
    const i = this.text.length
    const { plain, styled, end } = lineOf(raw, start)
    this.text.push(plain)
    this.styled.push(styled)
    if (i >= this.src.length) {
      const grown = new Uint32Array(this.src.length * 2)
      grown.set(this.src)
      this.src = grown
    }
    this.src[i] = source
    this.chars += plain.length
    if (complete) this.sources[source]!.state = end
    return i
  }

  private setLine(i: number, raw: string, start: SgrState | null, complete: boolean, s: Source): void {
    const { plain, styled, end } = lineOf(raw, start)
    this.chars += plain.length - this.text[i]!.length
    this.text[i] = plain
    this.styled[i] = styled
    if (complete) s.state = end
    this.changed.add(i)
  }

  private enforceLimits(): void {
    const { maxLines, maxChars } = this.limits
    if (this.text.length <= maxLines && this.chars <= maxChars) return
    // Drop a tenth more than needed at once, so a steady stream pays the O(n) move rarely.
    let n = Math.max(this.text.length - maxLines, 0) + Math.ceil(maxLines / 10)
    if (this.chars > maxChars) {
      let freed = 0
      let k = 0
      while (k < this.text.length && this.chars - freed > maxChars * 0.9) freed += this.text[k++]!.length
      n = Math.max(n, k)
    }
    n = Math.min(n, this.text.length)
    for (let k = 0; k < n; k++) this.chars -= this.text[k]!.length
    this.text.splice(0, n)
    this.styled.splice(0, n)
    this.src.copyWithin(0, n, this.text.length + n)
    for (const s of this.sources) {
      if (s.open < 0) continue
      s.open -= n
      if (s.open < 0) {
        // Its line is gone: what follows starts a new one.
        s.open = -1
        s.openRaw = ''
      }
    }
    this.dropped += n
    this.generation++
    this.changed.clear()
    this.rebuildView()
  }

  // ---- filter and search ---------------------------------------------------------------------

  private passes(s: Source): boolean {
    const f = this.filter
    if (f.stepRun && !f.stepRun(s.stepRunId)) return false
    if (s.stream === 'stdout') return f.stdout
    if (s.stream === 'stderr') return f.stderr
    return true
  }

  setFilter(filter: LineFilter): void {
    this.filter = filter
    for (let k = 0; k < this.sources.length; k++) this.allowed[k] = this.passes(this.sources[k]!) ? 1 : 0
    this.rebuildView()
  }

  /** A case-insensitive text search; '' clears it. */
  setQuery(text: string): void {
    this.query = text ? new RegExp(escapeRegExp(text), 'i') : null
    this.rebuildMatches()
  }

  get searching(): boolean {
    return this.query !== null
  }

  get queryRegExp(): RegExp | null {
    return this.query
  }

  private rebuildView(): void {
    this.view = []
    this.viewedUpTo = 0
    this.extendView()
    this.rebuildMatches()
  }

  private extendView(): number {
    const start = this.view.length
    const n = this.text.length
    for (let i = this.viewedUpTo; i < n; i++) if (this.allowed[this.src[i]!]) this.view.push(i)
    this.viewedUpTo = n
    return start
  }

  private rebuildMatches(): void {
    this.matches = []
    const q = this.query
    if (!q) return
    for (const i of this.view) if (q.test(this.text[i]!)) this.matches.push(i)
  }

  /**
   * Brings the view and the matches up to date with the lines added and changed since the last
   * call (once per animation frame); returns the lines that changed in place.
   */
  commit(): number[] {
    const first = this.extendView()
    const q = this.query
    const changed = [...this.changed]
    this.changed.clear()
    if (q) {
      // Lines new in this commit are tested below, in order; only older lines that changed are fixed up here.
      const newFrom = first < this.view.length ? this.view[first]! : this.text.length
      for (const i of changed) {
        if (i >= newFrom || !this.allowed[this.src[i]!]) continue
        const at = lowerBound(this.matches, i)
        const has = this.matches[at] === i
        const hit = q.test(this.text[i]!)
        if (has && !hit) this.matches.splice(at, 1)
        else if (!has && hit) this.matches.splice(at, 0, i)
      }
      for (let k = first; k < this.view.length; k++) {
        const i = this.view[k]!
        if (q.test(this.text[i]!)) this.matches.push(i)
      }
    }
    return changed
  }

  /** Where a line is in the view (or where it would be). */
  viewPosition(line: number): number {
    return lowerBound(this.view, line)
  }

  /** The whole shown text (what the filter lets through), one line per line. */
  shownText(): string {
    return this.view.map((i) => this.text[i]).join('\n')
  }
}

function lineOf(raw: string, start: SgrState | null): { plain: string; styled: StyledLine | undefined; end: SgrState | null } {
  if (start === null && !hasControls(raw)) return { plain: raw, styled: undefined, end: null }
  const parsed = parseAnsi(raw, start)
  const styled = start !== null || parsed.segments.some((s) => s.style !== null) ? { raw, start } : undefined
  return { plain: parsed.plain, styled, end: parsed.end }
}

const stripCr = (s: string) => (s.endsWith('\r') ? s.slice(0, -1) : s)

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** The first position in a sorted array whose value is ≥ x. */
export function lowerBound(arr: readonly number[], x: number): number {
  let lo = 0
  let hi = arr.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (arr[mid]! < x) lo = mid + 1
    else hi = mid
  }
  return lo
}

function growBytes(a: Uint8Array, size: number): Uint8Array {
  if (size <= a.length) return a
  const b = new Uint8Array(Math.max(size, a.length * 2, 16))
  b.set(a)
  return b
}
