import { parseAnsi, spanLook, type Segment } from './ansi.ts'
import type { OutputStore } from './output-store.ts'

/*
 * One output line as DOM nodes: text nodes and spans whose look comes from classes (the 16 basic
 * colours, bold…) or style properties (256/truecolor), with search matches wrapped in <mark>.
 * Text is only ever set as text: output can never become markup.
 */

export function lineSegments(store: OutputStore, line: number): Segment[] {
  const styled = store.styled[line]
  return styled ? parseAnsi(styled.raw, styled.start).segments : [{ text: store.text[line] ?? '', style: null }]
}

/** [start, end) ranges of every match of the query in the text. */
export function matchRanges(text: string, query: RegExp | null): [number, number][] {
  if (!query) return []
  const re = new RegExp(query.source, 'gi')
  const out: [number, number][] = []
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[0].length === 0) {
      re.lastIndex++
      continue
    }
    out.push([m.index, m.index + m[0].length])
  }
  return out
}

function styledNode(seg: Segment): HTMLElement | Text {
  if (!seg.style) return document.createTextNode(seg.text)
  const look = spanLook(seg.style)
  const span = document.createElement('span')
  if (look.cls) span.className = look.cls
  if (look.color) span.style.color = look.color
  if (look.background) span.style.backgroundColor = look.background
  span.textContent = seg.text
  return span
}

export function renderLine(store: OutputStore, line: number, query: RegExp | null): Node[] {
  const segments = lineSegments(store, line)
  const ranges = matchRanges(store.text[line] ?? '', query)
  if (ranges.length === 0) return segments.map(styledNode)
  // Split the segments at the match boundaries; a match may span several coloured segments.
  const nodes: Node[] = []
  let offset = 0
  let r = 0
  let mark: HTMLElement | null = null
  for (const seg of segments) {
    let pos = 0
    while (pos < seg.text.length) {
      const abs = offset + pos
      while (r < ranges.length && ranges[r]![1] <= abs) {
        r++
        mark = null
      }
      const range = ranges[r]
      const inMatch = !!range && range[0] <= abs
      const stop = range ? (inMatch ? range[1] : range[0]) - offset : seg.text.length
      const end = Math.min(seg.text.length, Math.max(stop, pos + 1))
      const node = styledNode({ text: seg.text.slice(pos, end), style: seg.style })
      if (inMatch) {
        if (!mark) {
          mark = document.createElement('mark')
          mark.className = 'log-match'
          nodes.push(mark)
        }
        mark.append(node)
      } else {
        mark = null
        nodes.push(node)
      }
      pos = end
    }
    offset += seg.text.length
  }
  return nodes
}
