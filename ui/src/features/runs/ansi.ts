/*
 * A small ANSI SGR parser for command output: colours (16, 256, truecolor), bold, dim, italic,
 * underline, inverse, strike and reset. Every other escape sequence (cursor moves, erase, OSC
 * titles and hyperlinks) is dropped. The result is plain segments and a style state — the viewer
 * builds spans from them with classes and style properties, never HTML from the output.
 * No Solid, no DOM: node:test covers it.
 */

/** 0–255 is a palette index; a string is `#rrggbb`. */
export type AnsiColor = number | string

export interface SgrState {
  readonly fg?: AnsiColor
  readonly bg?: AnsiColor
  readonly bold?: boolean
  readonly dim?: boolean
  readonly italic?: boolean
  readonly underline?: boolean
  readonly inverse?: boolean
  readonly strike?: boolean
}

export interface Segment {
  text: string
  /** null: the terminal's default look. */
  style: SgrState | null
}

export interface ParsedLine {
  segments: Segment[]
  /** The text without escape sequences (what search and download see). */
  plain: string
  /** The state after the line, carried into the next line of the same stream. */
  end: SgrState | null
}

const ESC = '\x1b'

const CONTROLS = /[\x00-\x08\x0a-\x1f]/

/** Whether a line has escape sequences or control characters (else it is its own plain text). */
export const hasControls = (raw: string) => CONTROLS.test(raw)

const hex2 = (n: number) => Math.max(0, Math.min(255, n | 0)).toString(16).padStart(2, '0')

/** The text with every escape sequence removed; a `\r` keeps only what was written after it. */
export function stripAnsi(raw: string): string {
  if (!hasControls(raw)) return raw
  return parseAnsi(raw, null).plain
}

/** Parses one line (no `\n`) starting in `start` (the state the previous line ended in). */
export function parseAnsi(raw: string, start: SgrState | null): ParsedLine {
  let state = start
  let segments: Segment[] = []
  let text = ''
  const flush = () => {
    if (text) segments.push({ text, style: state })
    text = ''
  }
  let i = 0
  const n = raw.length
  while (i < n) {
    const ch = raw.charCodeAt(i)
    if (ch === 0x1b) {
      const next = raw[i + 1]
      if (next === '[') {
        // CSI: parameter bytes, intermediate bytes, one final byte (0x40–0x7e).
        let j = i + 2
        while (j < n && (raw.charCodeAt(j) < 0x40 || raw.charCodeAt(j) > 0x7e)) j++
        if (raw[j] === 'm') {
          const next = applySgr(state, raw.slice(i + 2, j))
          if (next !== state) {
            flush()
            state = next
          }
        }
        i = j + 1
      } else if (next === ']') {
        // OSC: up to BEL or ST (ESC \); the text of an OSC 8 hyperlink stays, its target goes.
        let j = i + 2
        while (j < n && raw.charCodeAt(j) !== 0x07 && !(raw.charCodeAt(j) === 0x1b && raw[j + 1] === '\\')) j++
        i = j < n && raw.charCodeAt(j) === 0x07 ? j + 1 : j + 2
      } else {
        i += 2
      }
      continue
    }
    if (ch === 0x0d) {
      // A carriage return rewrites the line (progress bars): keep what comes after the last one.
      if (i + 1 < n) {
        segments = []
        text = ''
      }
      i++
      continue
    }
    if (ch < 0x20 && ch !== 0x09) {
      i++
      continue
    }
    // Copy the run of ordinary characters at once.
    let j = i + 1
    while (j < n) {
      const c = raw.charCodeAt(j)
      if (c === 0x1b || c === 0x0d || (c < 0x20 && c !== 0x09)) break
      j++
    }
    text += raw.slice(i, j)
    i = j
  }
  flush()
  let plain = ''
  for (const s of segments) plain += s.text
  return { segments, plain, end: state }
}

const isEmpty = (s: SgrState) => Object.values(s).every((v) => v === undefined || v === false)

/** The state after one SGR sequence's parameters (`1;31`, `38;5;208`, `38:2::255:0:0`). */
export function applySgr(state: SgrState | null, params: string): SgrState | null {
  const codes = params === '' ? ['0'] : params.split(';')
  let s: Record<string, unknown> = { ...(state ?? {}) }
  for (let k = 0; k < codes.length; k++) {
    const part = codes[k]!
    if (part.includes(':')) {
      // ITU form: 38:5:n or 38:2:[colourspace]:r:g:b
      const sub = part.split(':').map((x) => (x === '' ? NaN : Number(x)))
      const which = sub[0] === 38 ? 'fg' : sub[0] === 48 ? 'bg' : undefined
      if (!which) continue
      if (sub[1] === 5 && Number.isFinite(sub[2])) s[which] = clampIndex(sub[2]!)
      else if (sub[1] === 2) {
        const rgb = sub.slice(-3)
        if (rgb.every(Number.isFinite)) s[which] = `#${rgb.map(hex2).join('')}`
      }
      continue
    }
    const code = part === '' ? 0 : Number(part)
    if (!Number.isFinite(code)) continue
    if (code === 38 || code === 48) {
      const which = code === 38 ? 'fg' : 'bg'
      const mode = Number(codes[k + 1])
      if (mode === 5) {
        const idx = Number(codes[k + 2])
        if (Number.isFinite(idx)) s[which] = clampIndex(idx)
        k += 2
      } else if (mode === 2) {
        const rgb = [codes[k + 2], codes[k + 3], codes[k + 4]].map(Number)
        if (rgb.every(Number.isFinite)) s[which] = `#${rgb.map(hex2).join('')}`
        k += 4
      }
      continue
    }
    s = applyCode(s, code)
  }
  const next = s as SgrState
  return isEmpty(next) ? null : sameState(next, state) ? state : next
}

const clampIndex = (n: number) => Math.max(0, Math.min(255, Math.trunc(n)))

function applyCode(s: Record<string, unknown>, code: number): Record<string, unknown> {
  if (code === 0) return {}
  if (code >= 30 && code <= 37) return { ...s, fg: code - 30 }
  if (code >= 90 && code <= 97) return { ...s, fg: code - 90 + 8 }
  if (code >= 40 && code <= 47) return { ...s, bg: code - 40 }
  if (code >= 100 && code <= 107) return { ...s, bg: code - 100 + 8 }
  switch (code) {
    case 1:
      return { ...s, bold: true }
    case 2:
      return { ...s, dim: true }
    case 3:
      return { ...s, italic: true }
    case 4:
    case 21:
      return { ...s, underline: true }
    case 7:
      return { ...s, inverse: true }
    case 9:
      return { ...s, strike: true }
    case 22:
      return { ...s, bold: undefined, dim: undefined }
    case 23:
      return { ...s, italic: undefined }
    case 24:
      return { ...s, underline: undefined }
    case 27:
      return { ...s, inverse: undefined }
    case 29:
      return { ...s, strike: undefined }
    case 39:
      return { ...s, fg: undefined }
    case 49:
      return { ...s, bg: undefined }
    default:
      return s
  }
}

const KEYS = ['fg', 'bg', 'bold', 'dim', 'italic', 'underline', 'inverse', 'strike'] as const

export function sameState(a: SgrState | null, b: SgrState | null): boolean {
  if (a === b) return true
  const norm = (v: AnsiColor | boolean | undefined) => (v === false ? undefined : v)
  return KEYS.every((k) => norm(a?.[k]) === norm(b?.[k]))
}

/** A 256-colour palette index above 15 as `#rrggbb` (the xterm cube and grey ramp). */
export function paletteHex(index: number): string {
  if (index < 232) {
    const n = index - 16
    const level = (v: number) => (v === 0 ? 0 : 55 + v * 40)
    return `#${[Math.floor(n / 36), Math.floor(n / 6) % 6, n % 6].map((v) => hex2(level(v))).join('')}`
  }
  const grey = 8 + (index - 232) * 10
  return `#${hex2(grey).repeat(3)}`
}

export interface SpanLook {
  /** Space-separated classes (`ansi-fg-1 ansi-bold`). */
  cls: string
  color?: string
  background?: string
}

/**
 * How a state looks: the 16 basic colours as classes (the stylesheet's palette, readable on the
 * viewer's background), other colours as style values; inverse swaps foreground and background.
 */
export function spanLook(state: SgrState): SpanLook {
  const classes: string[] = []
  let fg = state.fg
  let bg = state.bg
  if (state.inverse) {
    ;[fg, bg] = [bg, fg]
    if (fg === undefined) classes.push('ansi-fg-inverse')
    if (bg === undefined) classes.push('ansi-bg-inverse')
  }
  const look: SpanLook = { cls: '' }
  if (typeof fg === 'number' && fg < 16) classes.push(`ansi-fg-${fg}`)
  else if (fg !== undefined) look.color = typeof fg === 'number' ? paletteHex(fg) : fg
  if (typeof bg === 'number' && bg < 16) classes.push(`ansi-bg-${bg}`)
  else if (bg !== undefined) look.background = typeof bg === 'number' ? paletteHex(bg) : bg
  if (state.bold) classes.push('ansi-bold')
  if (state.dim) classes.push('ansi-dim')
  if (state.italic) classes.push('ansi-italic')
  if (state.underline) classes.push('ansi-underline')
  if (state.strike) classes.push('ansi-strike')
  look.cls = classes.join(' ')
  return look
}
