import { z } from 'zod'
import { ValidationError } from '../errors.ts'

export const MAX_PAGE_SIZE = 500
export const DEFAULT_PAGE_SIZE = 50

/** `?limit=&cursor=` for every list endpoint; extend it with the endpoint's own filters. */
export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(DEFAULT_PAGE_SIZE),
  cursor: z.string().min(1).max(1024).optional(),
})
export type PageQuery = z.infer<typeof PageQuery>

/** Every list endpoint answers with this: `next` is the cursor for the following page, null on the last. */
export interface Page<T> {
  items: T[]
  next: string | null
}

/** Cursors are opaque to clients: base64url of a small JSON value the endpoint defines (its keyset position). */
export function encodeCursor(position: unknown): string {
  return Buffer.from(JSON.stringify(position), 'utf8').toString('base64url')
}

/** A cursor that is not ours (garbage, truncated, edited) is the client's mistake: a 400, never a 500. */
export function decodeCursor<T>(cursor: string, shape: z.ZodType<T>): T {
  let json: unknown
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error('not base64url')
    json = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw invalidCursor()
  }
  const parsed = shape.safeParse(json)
  if (!parsed.success) throw invalidCursor()
  return parsed.data
}

function invalidCursor(): ValidationError {
  return new ValidationError('invalid cursor; start again without one', [{ path: 'cursor', message: 'not a cursor this endpoint issued' }])
}

/**
 * Turns `limit + 1` fetched rows into a page: the extra row only proves there is a next page.
 * `positionOf` gives the keyset position of the last row shown.
 */
export function pageOf<R, T, P>(rows: R[], limit: number, map: (row: R) => T, positionOf: (row: R) => P): Page<T> {
  const shown = rows.slice(0, limit)
  const last = shown.at(-1)
  return { items: shown.map(map), next: rows.length > limit && last !== undefined ? encodeCursor(positionOf(last)) : null }
}

/** Parses query parameters; every problem is listed in the ValidationError's details as `{ path, message }`. */
export function parseQuery<S extends z.ZodType>(schema: S, query: Record<string, string>): z.infer<S> {
  const parsed = schema.safeParse(query)
  if (parsed.success) return parsed.data
  throw new ValidationError('invalid query parameters', issuesOf(parsed.error))
}

export function issuesOf(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }))
}
