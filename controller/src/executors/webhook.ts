import { createHmac } from 'node:crypto'
import { z } from 'zod'
import { credentialHeaders, decodeBody, HttpCommonFields, HttpNetworkError, mergeHeaders, sendHttp, statusMatches, unexpectedStatus, writeReply, type HttpReply } from './http-client.ts'
import { abortOutcome, runStep, sleep, StepFailure, useCredential } from './outcome.ts'
import type { StepExecutor, StepOutcome } from './types.ts'

/*
 * `webhook.call`: a JSON POST, optionally signed, retried with exponential backoff on what a retry
 * can fix (no answer, 5xx, 429). Redirects are not followed: a webhook endpoint that moved is a
 * configuration problem to surface, not to paper over.
 *
 * Signature, for receivers: `X-OpsConductor-Signature: sha256=<hex HMAC-SHA256(secret, "<ts>.<body>")>`
 * where `<ts>` is `X-OpsConductor-Timestamp` (unix seconds, fresh on every attempt) and `<body>`
 * the raw request body. Receivers should compare in constant time and reject old timestamps.
 */

export const WebhookInput = z
  .object({
    ...HttpCommonFields,
    /** Any JSON value, sent as the request body. */
    payload: z.json(),
    /** Signs each attempt (see above). */
    signing_secret: z.string().min(1).max(4096).optional(),
    /** Name or id of an http_auth credential (sent to the URL's origin). */
    credential: z.string().min(1).max(200).optional(),
    attempts: z.number().int().min(1).max(10).default(3),
    /** First retry delay; doubles each time, with jitter. */
    backoff_ms: z.number().int().min(0).max(600_000).default(1000),
  })
  .strict()
export type WebhookInput = z.output<typeof WebhookInput>

const CAPTURE_BYTES = 64 * 1024
const MAX_DELAY_MS = 5 * 60_000
// A Retry-After beyond this is cut to it: a step should not sleep for an hour on a server's word.
const MAX_RETRY_AFTER_MS = 60_000

export function signPayload(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`
}

/** Exponential backoff with "equal jitter": half fixed, half random, so retries of many runs spread out. */
function backoffDelay(baseMs: number, attempt: number): number {
  const delay = Math.min(MAX_DELAY_MS, baseMs * 2 ** (attempt - 1))
  return Math.round(delay / 2 + (Math.random() * delay) / 2)
}

/** Retry-After as milliseconds (seconds or an HTTP date), capped; undefined when absent or unreadable. */
function retryAfterMs(reply: HttpReply, now: number): number | undefined {
  const value = reply.headers['retry-after']?.trim()
  if (!value) return undefined
  const ms = /^\d+$/.test(value) ? Number(value) * 1000 : Date.parse(value) - now
  return Number.isFinite(ms) ? Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms)) : undefined
}

const retryableStatus = (status: number) => status >= 500 || status === 429
const afterAttempts = (n: number) => (n > 1 ? ` after ${n} attempts` : '')

export const webhookExecutor: StepExecutor<WebhookInput> = {
  types: ['webhook.call'],
  input: WebhookInput,
  needsTarget: false,
  run(_type, input, x) {
    return runStep(x, async (signal): Promise<StepOutcome> => {
      const authHeaders = input.credential !== undefined ? credentialHeaders(await useCredential(x, input.credential, 'http_auth')) : {}
      const body = JSON.stringify(input.payload)
      const base = Object.keys(input.headers).some((h) => h.toLowerCase() === 'content-type') ? input.headers : { ...input.headers, 'content-type': 'application/json' }
      for (let attempt = 1; ; attempt++) {
        const timestamp = Math.floor(Date.now() / 1000)
        const signing: Record<string, string> =
          input.signing_secret !== undefined ? { 'x-opsconductor-timestamp': String(timestamp), 'x-opsconductor-signature': signPayload(input.signing_secret, timestamp, body) } : {}
        const started = Date.now()
        let reply: HttpReply
        try {
          reply = await sendHttp({
            method: 'POST',
            url: input.url,
            headers: mergeHeaders(base, signing),
            authHeaders,
            body: Buffer.from(body),
            tlsVerify: input.tls_verify,
            caPem: input.ca_pem,
            maxRedirects: 0,
            captureBytes: CAPTURE_BYTES,
            signal,
          })
        } catch (err) {
          if (signal.aborted || !(err instanceof HttpNetworkError) || !err.retryable || attempt >= input.attempts) {
            if (err instanceof StepFailure && !signal.aborted) throw new StepFailure(`${err.message}${afterAttempts(attempt)}`, { attempts: attempt }, { cause: err })
            throw err
          }
          const delay = backoffDelay(input.backoff_ms, attempt)
          x.output.write('stderr', `attempt ${attempt} of ${input.attempts}: ${err.message}; retrying in ${(delay / 1000).toFixed(1)} s\n`)
          await sleep(delay, signal)
          if (signal.aborted) return abortOutcome(x)
          continue
        }
        writeReply(x.output, 'POST', reply, Date.now() - started)
        const result = { status: reply.status, attempts: attempt, body: decodeBody(reply) }
        if (statusMatches(reply.status, input.expected_status)) return { status: 'succeeded', result }
        if (!retryableStatus(reply.status) || attempt >= input.attempts) {
          return { status: 'failed', error: `${unexpectedStatus(reply.status, input.expected_status)}${afterAttempts(attempt)}`, result }
        }
        const delay = retryAfterMs(reply, Date.now()) ?? backoffDelay(input.backoff_ms, attempt)
        x.output.write('stderr', `attempt ${attempt} of ${input.attempts}: HTTP ${reply.status}; retrying in ${(delay / 1000).toFixed(1)} s\n`)
        await sleep(delay, signal)
        if (signal.aborted) return abortOutcome(x)
      }
    })
  },
}
