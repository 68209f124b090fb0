import { HttpNetworkError, sendHttp, type HttpReply } from '../../executors/http-client.ts'
import { oneLine } from '../../executors/outcome.ts'
import { timeoutOf, urlSecrets } from './format.ts'
import type { SendResult } from './types.ts'

/*
 * One HTTP delivery for the Slack, Teams and webhook channels: a single request (no retry, no
 * sleep, no redirect), with a deadline, and the receiver's answer classified for the outbox:
 *   2xx                   ok
 *   408, 429, 5xx         retry (429/503 usually carry Retry-After: seconds or an HTTP date)
 *   other 4xx, 3xx        permanent (a retry sends the same request and gets the same answer)
 *   no answer             retry, except certificate failures (permanent until the config changes)
 * The response body is kept to 2 KiB, and any secret value is masked out of it and of errors.
 */

export const RESPONSE_LIMIT_BYTES = 2048
export const DEFAULT_TIMEOUT_MS = 10_000
// A receiver asking us to wait longer than a day is treated as asking for a day.
const MAX_RETRY_AFTER_MS = 86_400_000

export interface HttpDelivery {
  url: string
  method?: 'POST' | 'PUT'
  headers: Record<string, string>
  body: string
  timeoutMs?: number
  /** Extra CA certificates (PEM) trusted for this receiver, on top of none: they replace the system store. */
  caPem?: string | undefined
  signal: AbortSignal
  /** Values masked out of the recorded response and error (URL tokens, keys). */
  secrets?: readonly string[]
  /** A receiver-specific reading of a 2xx body (Teams' legacy connectors answer 200 to a throttled post). */
  inspect?: (reply: { status: number; body: string }) => Partial<SendResult> | undefined
}

export async function deliverHttp(d: HttpDelivery): Promise<SendResult> {
  const started = Date.now()
  const timeoutMs = d.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const timeout = AbortSignal.timeout(timeoutMs)
  const signal = AbortSignal.any([d.signal, timeout])
  const mask = masker(d.secrets ?? [])
  const elapsed = () => Date.now() - started
  let reply: HttpReply
  try {
    reply = await sendHttp({
      method: d.method ?? 'POST',
      url: d.url,
      headers: d.headers,
      body: Buffer.from(d.body, 'utf8'),
      tlsVerify: true,
      caPem: d.caPem,
      maxRedirects: 0,
      captureBytes: RESPONSE_LIMIT_BYTES,
      signal,
    })
  } catch (err) {
    if (d.signal.aborted) return { ok: false, error: 'delivery cancelled (controller stopping)', durationMs: elapsed() }
    if (timeout.aborted) return { ok: false, error: `no answer within ${timeoutMs} ms`, durationMs: elapsed() }
    const retryable = err instanceof HttpNetworkError ? err.retryable : true
    const message = err instanceof Error ? oneLine(err.message) : String(err)
    return { ok: false, error: mask(message), ...(retryable ? {} : { permanent: true }), durationMs: elapsed() }
  }
  const body = mask(decodeUtf8(reply.body) + (reply.truncated ? '…' : ''))
  const base: SendResult = { ok: false, httpStatus: reply.status, response: body, durationMs: elapsed() }
  const classified = classifyStatus(reply.status)
  if (classified === 'ok') {
    const special = d.inspect?.({ status: reply.status, body })
    return { ...base, ok: true, ...special }
  }
  const retryAfter = parseRetryAfter(reply.headers['retry-after'], Date.now())
  const error = classified === 'redirect' ? `HTTP ${reply.status}: the receiver moved (redirects are not followed); update the URL` : `HTTP ${reply.status}`
  return {
    ...base,
    error,
    ...(retryAfter !== undefined ? { retryAfterMs: retryAfter } : {}),
    ...(classified === 'retry' ? {} : { permanent: true }),
  }
}

export function classifyStatus(status: number): 'ok' | 'retry' | 'permanent' | 'redirect' {
  if (status >= 200 && status < 300) return 'ok'
  if (status === 408 || status === 429 || status >= 500) return 'retry'
  if (status >= 300 && status < 400) return 'redirect'
  return 'permanent'
}

/** Retry-After as milliseconds from `now`: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  const v = value?.trim()
  if (!v) return undefined
  const ms = /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v) - now
  if (!Number.isFinite(ms)) return undefined
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms))
}

/** Replaces every secret (and its URL-encoded form) with "***"; secrets shorter than 4 characters are left alone. */
export function masker(secrets: readonly string[]): (text: string) => string {
  const forms = [...new Set(secrets.filter((s) => s.length >= 4).flatMap((s) => [s, encodeURIComponent(s), JSON.stringify(s).slice(1, -1)]))]
  forms.sort((a, b) => b.length - a.length)
  return (text) => forms.reduce((out, form) => out.split(form).join('***'), text)
}

/** UTF-8 text of a capped body; a character cut at the cap is dropped, not shown as garbage. */
function decodeUtf8(bytes: Buffer): string {
  return new TextDecoder('utf-8', { fatal: false }).decode(bytes).replace(/\uFFFD$/, '')
}

/** Posts a JSON payload to an incoming-webhook URL held in the channel's secret (Slack, Teams). */
export function postToIncomingWebhook(
  channel: { config: Record<string, unknown> },
  secret: { url?: string },
  payload: Record<string, unknown>,
  signal: AbortSignal,
  inspect?: HttpDelivery['inspect'],
): Promise<SendResult> {
  if (!secret.url) return Promise.resolve({ ok: false, permanent: true, error: 'the channel has no webhook URL', durationMs: 0 })
  return deliverHttp({
    url: secret.url,
    headers: { 'content-type': 'application/json; charset=utf-8', 'user-agent': 'OpsConductor-Notifier' },
    body: JSON.stringify(payload),
    timeoutMs: timeoutOf(channel.config),
    signal,
    secrets: urlSecrets(secret.url),
    ...(inspect ? { inspect } : {}),
  })
}
