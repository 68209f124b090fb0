import type { Context } from 'hono'
import type { z } from 'zod'
import { AppError, ValidationError } from '../errors.ts'

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

const MAX_BODY_BYTES = 1024 * 1024

/** Reads and validates a JSON body; malformed JSON, a wrong content type or bad fields are all 400s listing every problem. */
export async function readJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  const type = c.req.header('content-type') ?? ''
  if (!/^application\/json\b/i.test(type)) throw new ValidationError('send the request body as JSON (Content-Type: application/json)')
  const text = await c.req.text()
  if (text.length > MAX_BODY_BYTES) throw new AppError('PAYLOAD_TOO_LARGE', `request body over ${MAX_BODY_BYTES} bytes`)
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    throw new ValidationError('request body is not valid JSON')
  }
  return parseWith(schema, body)
}

/** readJson for routes whose body is optional: no body (or an empty one) is `{}` run through the schema's defaults. */
export async function readOptionalJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  if (!c.req.header('content-type') && (c.req.header('content-length') ?? '0') === '0') return parseWith(schema, {})
  return readJson(c, schema)
}
