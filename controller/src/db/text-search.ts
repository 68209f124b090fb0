import { ilike, or, type Column, type SQL } from 'drizzle-orm'

/** Escapes LIKE wildcards so user text matches literally. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (m) => `\\${m}`)
}

/** Case-insensitive "contains" over one or more columns (a list's `q` filter). */
export function containsText(text: string, ...columns: Column[]): SQL | undefined {
  const pattern = `%${escapeLike(text)}%`
  return or(...columns.map((c) => ilike(c, pattern)))
}
