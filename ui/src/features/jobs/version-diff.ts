import { diffLines } from 'diff'
import { prettyJson, type JsonObject } from './model.ts'

/*
 * Two versions of a definition compared line by line (jsdiff's Myers diff of the pretty-printed
 * JSON), with long unchanged runs folded to a few lines of context around each change.
 */

export type DiffRow = { kind: 'same' | 'add' | 'del'; text: string; oldNo?: number; newNo?: number } | { kind: 'skip'; count: number }

const CONTEXT = 3

/** The definition part of a version (what an edit changes): without the server's bookkeeping. */
export function comparable(version: JsonObject): JsonObject {
  const { id: _i, version: _v, latest_version: _l, created_at: _c, updated_at: _u, created_by: _cb, updated_by: _ub, ...definition } = version
  return definition
}

export function diffRows(before: JsonObject, after: JsonObject, context = CONTEXT): DiffRow[] {
  const rows: DiffRow[] = []
  let oldNo = 1
  let newNo = 1
  for (const part of diffLines(prettyJson(comparable(before)), prettyJson(comparable(after)))) {
    const lines = part.value.replace(/\n$/, '').split('\n')
    for (const text of lines) {
      if (part.added) rows.push({ kind: 'add', text, newNo: newNo++ })
      else if (part.removed) rows.push({ kind: 'del', text, oldNo: oldNo++ })
      else rows.push({ kind: 'same', text, oldNo: oldNo++, newNo: newNo++ })
    }
  }
  return fold(rows, context)
}

/** Keeps `context` unchanged lines around each change; longer unchanged runs become one skip row. */
function fold(rows: DiffRow[], context: number): DiffRow[] {
  const near = rows.map(() => false)
  rows.forEach((r, i) => {
    if (r.kind === 'same') return
    for (let j = Math.max(0, i - context); j <= Math.min(rows.length - 1, i + context); j++) near[j] = true
  })
  const out: DiffRow[] = []
  let skipped = 0
  rows.forEach((r, i) => {
    if (r.kind !== 'same' || near[i]) {
      if (skipped) out.push({ kind: 'skip', count: skipped })
      skipped = 0
      out.push(r)
    } else skipped++
  })
  if (skipped) out.push({ kind: 'skip', count: skipped })
  return out
}

export const changeCount = (rows: DiffRow[]) => rows.filter((r) => r.kind === 'add' || r.kind === 'del').length
