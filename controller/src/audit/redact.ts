/** Keys whose values may carry a secret. Matched anywhere in the key, case-insensitively. */
const SECRET_KEY = /pass(word|phrase)?|secret|token|totp|otp|hash|private|key|credential|authorization|cookie|recovery/i
// Identifiers and facts about a secret are not the secret: `tokenId`, `tokenName`, `keyCount`, `passwordChangedAt`.
const SAFE_SUFFIX = /(^|[a-z0-9_])(Id|Ids|Name|Count|At|Enabled|_id|_ids|_name|_count|_at|_enabled)$/
// Values that are secrets whatever their key: bearer credentials, JWTs, PEM private keys, and our
// own API (`opsc_…`) and refresh (`opsc_rt_…`) tokens.
const SECRET_VALUE =
  /^\s*(bearer|basic)\s+[\w.~+/-]{8,}=*\s*$|eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]+|-----BEGIN [A-Z ]*PRIVATE KEY-----|\bopsc_[\w-]{20,}/i
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

export const REDACTED = '[redacted]'
export const LIMITS = { depth: 6, stringLength: 1000, arrayItems: 50, objectKeys: 50, keyLength: 100 } as const

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json }

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key) && !SAFE_SUFFIX.test(key)
}

/**
 * A JSON-safe deep copy for the audit trail: values under secret-looking keys become '[redacted]',
 * strings are capped and made storable (jsonb rejects NUL and lone surrogates), and depth, arrays
 * and key counts are bounded so a summary can never be large.
 */
export function redactSummary(obj: Record<string, unknown> | null | undefined): Record<string, Json> {
  const out = redactValue(obj ?? {}, 0)
  return out !== null && typeof out === 'object' && !Array.isArray(out) ? out : { value: out }
}

function redactValue(value: unknown, depth: number): Json {
  switch (typeof value) {
    case 'string':
      return SECRET_VALUE.test(value) ? REDACTED : cleanString(value, LIMITS.stringLength)
    case 'number':
      return Number.isFinite(value) ? value : null
    case 'boolean':
      return value
    case 'bigint':
      return value.toString()
    case 'undefined':
    case 'function':
    case 'symbol':
      return null
    case 'object':
      return redactObject(value, depth)
  }
}

function redactObject(value: object | null, depth: number): Json {
  if (value === null) return null
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString()
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return `[binary ${value.byteLength} bytes]`
  // An error's message can quote anything (a connection string, a request body): keep its name only.
  if (value instanceof Error) return { error: value.name }
  if (depth >= LIMITS.depth) return '[truncated]'
  if (Array.isArray(value)) {
    const items = value.slice(0, LIMITS.arrayItems).map((v) => redactValue(v, depth + 1))
    if (value.length > LIMITS.arrayItems) items.push(`[+${value.length - LIMITS.arrayItems} more]`)
    return items
  }
  const source = value instanceof Map ? Object.fromEntries(value) : value instanceof Set ? [...value] : value
  if (source !== value) return redactValue(source, depth)
  const out: Record<string, Json> = {}
  const keys = Object.keys(value)
  for (const key of keys.slice(0, LIMITS.objectKeys)) {
    const v = (value as Record<string, unknown>)[key]
    // JSON drops these; so do we, rather than storing nulls nobody wrote.
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue
    out[cleanString(key, LIMITS.keyLength)] = isSecretKey(key) && typeof v !== 'boolean' && v !== null ? REDACTED : redactValue(v, depth + 1)
  }
  if (keys.length > LIMITS.objectKeys) out['[truncated]'] = `${keys.length - LIMITS.objectKeys} more keys`
  return out
}

/** Postgres text and jsonb reject NUL and lone surrogates (a pair split by the cut becomes U+FFFD). */
export function cleanString(s: string, max: number): string {
  let out = s.includes('\u0000') ? s.replaceAll('\u0000', '') : s
  if (out.length > max) out = `${out.slice(0, max)}…`
  return out.replace(LONE_SURROGATE, '\uFFFD')
}
