/*
 * Splits a PostgreSQL script into statements at top-level semicolons, so that `sql.script` runs
 * them one by one inside its transaction and can report affected rows per statement (postgres.js
 * merges the results of a multi-statement simple query) and which statement failed.
 *
 * Semicolons do not split inside: '…' and E'…' strings, "…" identifiers, $tag$…$tag$ bodies,
 * -- and (nested) /* *\/ comments, and BEGIN ATOMIC … END function bodies (CASE … END inside
 * them is counted). Chunks holding only whitespace and comments are dropped.
 */

const IDENT_CHAR = /[\p{L}\p{N}_$]/u
const DOLLAR_TAG = /^\$(?:[\p{L}_][\p{L}\p{N}_]*)?\$/u

export function splitPostgresScript(script: string): string[] {
  const statements: string[] = []
  const n = script.length
  let start = 0
  let meaningful = false
  // Inside BEGIN ATOMIC: `atomic` is true and `cases` counts open CASE expressions.
  let atomic = false
  let cases = 0
  let lastWord = ''
  let i = 0
  const prevIsIdent = (at: number) => at > 0 && IDENT_CHAR.test(script[at - 1]!)

  while (i < n) {
    const c = script[i]!
    const next = script[i + 1]
    if (c === '-' && next === '-') {
      const eol = script.indexOf('\n', i)
      i = eol === -1 ? n : eol + 1
      continue
    }
    if (c === '/' && next === '*') {
      let depth = 1
      i += 2
      while (i < n && depth > 0) {
        const pair = script.slice(i, i + 2)
        if (pair === '/*' || pair === '*/') {
          depth += pair === '/*' ? 1 : -1
          i += 2
        } else i++
      }
      continue
    }
    if (c !== ';') meaningful ||= !/\s/.test(c)
    if (c === "'") {
      const backslashes = i > 0 && /[eE]/.test(script[i - 1]!) && !prevIsIdent(i - 1)
      i = skipQuoted(script, i, "'", backslashes)
      continue
    }
    if (c === '"') {
      i = skipQuoted(script, i, '"', false)
      continue
    }
    if (c === '$' && !prevIsIdent(i)) {
      const tag = DOLLAR_TAG.exec(script.slice(i, i + 256))?.[0]
      if (tag !== undefined) {
        const end = script.indexOf(tag, i + tag.length)
        i = end === -1 ? n : end + tag.length
        continue
      }
    }
    if (/[\p{L}_]/u.test(c) && !prevIsIdent(i)) {
      let j = i + 1
      while (j < n && IDENT_CHAR.test(script[j]!)) j++
      const word = script.slice(i, j).toLowerCase()
      if (!atomic && lastWord === 'begin' && word === 'atomic') atomic = true
      else if (atomic && word === 'case') cases++
      else if (atomic && word === 'end') {
        if (cases > 0) cases--
        else atomic = false
      }
      lastWord = word
      i = j
      continue
    }
    if (c === ';' && !atomic) {
      if (meaningful) statements.push(script.slice(start, i).trim())
      start = i + 1
      meaningful = false
      lastWord = ''
    }
    i++
  }
  if (meaningful) statements.push(script.slice(start).trim())
  return statements
}

/** The index just past a quoted run starting at `from` (doubled quotes escape; E-strings also take backslashes). */
function skipQuoted(script: string, from: number, quote: string, backslashes: boolean): number {
  let i = from + 1
  while (i < script.length) {
    const c = script[i]
    if (backslashes && c === '\\') i += 2
    else if (c === quote && script[i + 1] === quote) i += 2
    else if (c === quote) return i + 1
    else i++
  }
  return script.length
}
