import { STATUS_CODES } from 'node:http'
import { Agent, request } from 'undici'
import { z } from 'zod'
import { connectionError, oneLine, StepFailure, type CredentialOf } from './outcome.ts'
import type { StepOutputSink } from './types.ts'

/*
 * The HTTP client behind the `http.*` and `webhook.call` steps, on undici (the engine of Node's own
 * fetch): one Agent per step carries the TLS choices (`ca`, `rejectUnauthorized`) without touching
 * the process-wide defaults, requests take an AbortSignal, and the response body is a stream we
 * can stop reading at the capture limit. node:https could do the same with more hand-written
 * plumbing; fetch() hides redirects and gives no say over which headers follow them.
 */

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/

export const HttpUrl = z
  .string()
  .min(1, 'required')
  .max(8192)
  .superRefine((value, ctx) => {
    let url: URL
    try {
      url = new URL(value)
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not a valid URL' })
      return
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: 'must be an http:// or https:// URL' })
    // A password in the URL would end up in the output and the result; credentials carry secrets.
    if (url.username || url.password) ctx.addIssue({ code: 'custom', message: 'must not contain a user name or password; use a credential' })
  })

export const HeaderMap = z
  .record(z.string().regex(HEADER_NAME, 'not a valid HTTP header name'), z.string().max(8192).regex(/^[^\r\n\0]*$/, 'must not contain line breaks'))
  .refine((h) => Object.keys(h).length <= 100, 'at most 100 headers')

/** Statuses that count as success: numbers (`204`) or classes and ranges of ten (`"2xx"`, `"30x"`). */
export const ExpectedStatus = z
  .array(z.union([z.number().int().min(100).max(599), z.string().regex(/^[1-5](\d\d|\dx|xx)$/i, 'a status such as 200, "20x" or "2xx"')]))
  .min(1)
  .max(50)
  .default(['2xx'])
export type ExpectedStatus = z.output<typeof ExpectedStatus>

export const MAX_CAPTURE_BYTES = 16 * 1024 * 1024

/** The fields the http steps and the webhook step share. */
export const HttpCommonFields = {
  url: HttpUrl,
  headers: HeaderMap.default({}),
  expected_status: ExpectedStatus,
  /** Verify the server's certificate (against `ca_pem` when given, else the system store). */
  tls_verify: z.boolean().default(true),
  /** PEM CA certificate(s) that replace the system store for this request. */
  ca_pem: z.string().min(1).max(64 * 1024).optional(),
}

export function statusMatches(status: number, expected: ExpectedStatus): boolean {
  const text = String(status)
  return expected.some((e) => (typeof e === 'number' ? e === status : [...e.toLowerCase()].every((c, i) => c === 'x' || c === text[i])))
}

export function unexpectedStatus(status: number, expected: ExpectedStatus): string {
  return `HTTP ${status} (expected ${expected.join(', ')})`
}

/** The request headers an http_auth credential stands for. */
export function credentialHeaders(cred: CredentialOf<'http_auth'>): Record<string, string> {
  switch (cred.scheme) {
    case 'basic':
      return { authorization: `Basic ${Buffer.from(`${cred.username ?? ''}:${cred.password ?? ''}`).toString('base64')}` }
    case 'bearer':
      return { authorization: `Bearer ${cred.token ?? ''}` }
    case 'api_key':
      return { [cred.header_name ?? 'x-api-key']: cred.api_key ?? '' }
    case 'headers':
      return { ...cred.headers }
    default: {
      const unknown: never = cred.scheme
      throw new Error(`unknown http_auth scheme ${String(unknown)}`)
    }
  }
}

export interface HttpCall {
  method: string
  url: string
  /** Sent to every hop, except the ones in CROSS_ORIGIN_DROPPED when a redirect leaves the origin. */
  headers: Record<string, string>
  /** Credential headers: sent only to the origin of `url`. */
  authHeaders?: Record<string, string>
  body?: Buffer
  tlsVerify: boolean
  caPem?: string | undefined
  /** 0 = return redirects as they are. */
  maxRedirects: number
  captureBytes: number
  signal: AbortSignal
}

export interface HttpReply {
  status: number
  statusText: string
  headers: Record<string, string>
  body: Buffer
  truncated: boolean
  /** The URL that answered (after redirects). */
  url: string
  redirects: number
}

/** A request that got no HTTP answer; `retryable` is false for certificate problems, which a retry does not fix. */
export class HttpNetworkError extends StepFailure {
  constructor(
    message: string,
    readonly retryable: boolean,
    opts?: { cause?: unknown },
  ) {
    super(message, undefined, opts)
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308])
// What the fetch standard strips on a cross-origin redirect, plus cookies (which we never manage).
const CROSS_ORIGIN_DROPPED = new Set(['authorization', 'proxy-authorization', 'cookie'])
const BODY_HEADERS = new Set(['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location'])

const withoutHeaders = (headers: Record<string, string>, names: Set<string>) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !names.has(name.toLowerCase())))

/** Case-insensitive merge: a name in `over` replaces the same name in `base`, whatever its case. */
export function mergeHeaders(base: Record<string, string>, over: Record<string, string>): Record<string, string> {
  return { ...withoutHeaders(base, new Set(Object.keys(over).map((n) => n.toLowerCase()))), ...over }
}

/** One request, following redirects itself so that credentials never leave the first origin. */
export async function sendHttp(call: HttpCall): Promise<HttpReply> {
  const agent = new Agent({
    connect: { rejectUnauthorized: call.tlsVerify, ...(call.caPem !== undefined ? { ca: call.caPem } : {}) },
    // The step's signal is the one deadline; undici's own 300 s timers would cut long steps short.
    headersTimeout: 0,
    bodyTimeout: 0,
  })
  try {
    const origin = new URL(call.url).origin
    let url = new URL(call.url)
    let method = call.method
    let body = call.body
    let headers = call.headers
    for (let redirects = 0; ; redirects++) {
      const sameOrigin = url.origin === origin
      const sent = sameOrigin ? mergeHeaders(headers, call.authHeaders ?? {}) : withoutHeaders(headers, CROSS_ORIGIN_DROPPED)
      const res = await request(url, { method: method as 'GET', headers: sent, body: body ?? null, dispatcher: agent, signal: call.signal }).catch((err: unknown) => {
        throw networkError(err, url)
      })
      const location = res.headers.location
      if (call.maxRedirects > 0 && REDIRECTS.has(res.statusCode) && typeof location === 'string') {
        await res.body.dump().catch(() => {})
        if (redirects >= call.maxRedirects) throw new StepFailure(`too many redirects (more than ${call.maxRedirects})`)
        const next = parseLocation(location, url)
        // 303, and 301/302 after a POST, turn into a GET without a body (as browsers and fetch do).
        if ((res.statusCode === 303 && method !== 'HEAD') || ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST')) {
          method = 'GET'
          body = undefined
          headers = withoutHeaders(headers, BODY_HEADERS)
        }
        url = next
        continue
      }
      const { bytes, truncated } = await readCapped(res.body, call.captureBytes).catch((err: unknown) => {
        throw networkError(err, url)
      })
      return {
        status: res.statusCode,
        statusText: res.statusText || STATUS_CODES[res.statusCode] || '',
        headers: flattenHeaders(res.headers),
        body: bytes,
        truncated,
        url: url.toString(),
        redirects,
      }
    }
  } finally {
    await agent.destroy().catch(() => {})
  }
}

function parseLocation(location: string, base: URL): URL {
  let next: URL
  try {
    next = new URL(location, base)
  } catch {
    throw new StepFailure(`redirect to an invalid location: ${oneLine(location).slice(0, 200)}`)
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new StepFailure(`redirect to a non-HTTP location (${next.protocol})`)
  return next
}

async function readCapped(body: AsyncIterable<Buffer> & { destroy(): void }, cap: number): Promise<{ bytes: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = []
  let size = 0
  let truncated = false
  for await (const chunk of body) {
    const room = cap - size
    if (chunk.length > room) {
      chunks.push(chunk.subarray(0, room))
      size = cap
      truncated = true
      break
    }
    chunks.push(chunk)
    size += chunk.length
  }
  // Leaving the loop early destroys the stream; the connection is not reused after that.
  return { bytes: Buffer.concat(chunks, size), truncated }
}

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value
  return out
}

/** JSON when the response says so and parses, else text (UTF-8). */
export function decodeBody(reply: Pick<HttpReply, 'headers' | 'body' | 'truncated'>): unknown {
  const text = reply.body.toString('utf8')
  if (!reply.truncated && /[/+]json\b/i.test(reply.headers['content-type'] ?? '')) {
    try {
      return JSON.parse(text) as unknown
    } catch {
      return text
    }
  }
  return text
}

/** One line for an error that got no HTTP answer (refused, DNS, TLS, reset); never a stack. */
export function networkError(err: unknown, url: URL): HttpNetworkError {
  if (err instanceof HttpNetworkError) return err
  const { message, retryable } = connectionError(err, url.host, url.hostname)
  return new HttpNetworkError(message, retryable, { cause: err })
}

/** The status line and the captured body, as the step's stdout. */
export function writeReply(output: StepOutputSink, method: string, reply: HttpReply, ms: number): void {
  const hops = reply.redirects > 0 ? `, ${reply.redirects} redirect${reply.redirects > 1 ? 's' : ''}` : ''
  output.write('stdout', `${method} ${reply.url} → HTTP ${reply.status} ${reply.statusText} (${ms} ms${hops})\n`)
  if (reply.body.length > 0) {
    output.write('stdout', reply.body)
    if (reply.body[reply.body.length - 1] !== 0x0a) output.write('stdout', '\n')
  }
  if (reply.truncated) output.write('stderr', `[response body truncated at ${reply.body.length} bytes]\n`)
}
