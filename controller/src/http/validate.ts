import type { Context } from 'hono'
import type { z } from 'zod'
import { ValidationError } from '../errors.ts'

/** `steps[2].command` — the JSON path a client can find in what it sent. */
export function issuePath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)), '')
}

export function issuesOf(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((i) => ({ path: issuePath(i.path), message: i.message }))
}

export function parseWith<S extends z.ZodType>(schema: S, value: unknown, what = 'request body'): z.infer<S> {
  const parsed = schema.safeParse(value)
  if (parsed.success) return parsed.data
  const issues = issuesOf(parsed.error)
  throw new ValidationError(`invalid ${what}: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`, issues)
}

/** Reads and validates a JSON body; malformed JSON, a wrong content type or bad fields are all 400s listing every problem. */
export async function readJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  const type = c.req.header('content-type') ?? ''
  if (!/^application\/json\b/i.test(type)) throw new ValidationError('send the request body as JSON (Content-Type: application/json)')
  // Size: the app's body-limit middleware (OPSC_HTTP_MAX_BODY_BYTES, larger for imports) has already refused oversized bodies.
  const text = await c.req.text()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    throw new ValidationError('request body is not valid JSON')
  }
  if (text.includes('\\u0000') && containsNul(body)) throw new ValidationError('request body must not contain NUL characters (\\u0000)')
  return parseWith(schema, body)
}

/** Whether any string or key holds U+0000 (Postgres text and jsonb cannot store it). Iterative: bodies may nest deeply. */
function containsNul(value: unknown): boolean {
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return true
    } else if (Array.isArray(v)) stack.push(...v)
    else if (v !== null && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        if (k.includes('\u0000')) return true
        stack.push(child)
      }
    }
  }
  return false
}

/** readJson for routes whose body is optional: no body (or an empty one) is `{}` run through the schema's defaults. */
export async function readOptionalJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  if (!c.req.header('content-type') && (c.req.header('content-length') ?? '0') === '0') return parseWith(schema, {})
  return readJson(c, schema)
}
