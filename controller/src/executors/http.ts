import { z } from 'zod'
import { credentialHeaders, decodeBody, HttpCommonFields, MAX_CAPTURE_BYTES, mergeHeaders, sendHttp, statusMatches, unexpectedStatus, writeReply } from './http-client.ts'
import { runStep, StepFailure, useCredential } from './outcome.ts'
import type { StepExecutor } from './types.ts'

/*
 * `http.get|post|put|delete|patch`: one request from the controller, with an optional http_auth
 * credential (sent only to the URL's own origin, never after a redirect to another one).
 */

const METHODS = { 'http.get': 'GET', 'http.post': 'POST', 'http.put': 'PUT', 'http.delete': 'DELETE', 'http.patch': 'PATCH' } as const

const MAX_BODY = 16 * 1024 * 1024

export const HttpBody = z.union([
  z.object({ json: z.json() }).strict(),
  z.object({ text: z.string().max(MAX_BODY) }).strict(),
  z.object({ form: z.record(z.string().min(1).max(1024), z.string().max(MAX_BODY)) }).strict(),
])
export type HttpBody = z.output<typeof HttpBody>

export const HttpInput = z
  .object({
    ...HttpCommonFields,
    /** Not for http.get. Sets Content-Type unless `headers` has one. */
    body: HttpBody.optional(),
    /** Name or id of an http_auth credential. */
    credential: z.string().min(1).max(200).optional(),
    /** Up to 10 hops. */
    follow_redirects: z.boolean().default(true),
    /** How much of the response body is kept (output and result); the rest is not read. */
    capture_body_bytes: z.number().int().min(0).max(MAX_CAPTURE_BYTES).default(1024 * 1024),
  })
  .strict()
export type HttpInput = z.output<typeof HttpInput>

const MAX_REDIRECTS = 10

function encodeBody(body: HttpBody | undefined): { bytes?: Buffer; contentType?: string } {
  if (body === undefined) return {}
  if ('json' in body) return { bytes: Buffer.from(JSON.stringify(body.json)), contentType: 'application/json' }
  if ('text' in body) return { bytes: Buffer.from(body.text), contentType: 'text/plain; charset=utf-8' }
  return { bytes: Buffer.from(new URLSearchParams(body.form).toString()), contentType: 'application/x-www-form-urlencoded' }
}

const hasHeader = (headers: Record<string, string>, name: string) => Object.keys(headers).some((h) => h.toLowerCase() === name)

export const httpExecutor: StepExecutor<HttpInput> = {
  types: Object.keys(METHODS),
  input: HttpInput,
  needsTarget: false,
  run(type, input, x) {
    return runStep(x, async (signal) => {
      const method = METHODS[type as keyof typeof METHODS]
      if (method === undefined) throw new Error(`httpExecutor cannot run ${type}`)
      if (method === 'GET' && input.body !== undefined) throw new StepFailure('http.get takes no body')
      const authHeaders = input.credential !== undefined ? credentialHeaders(await useCredential(x, input.credential, 'http_auth')) : {}
      const { bytes, contentType } = encodeBody(input.body)
      const headers = contentType !== undefined && !hasHeader(input.headers, 'content-type') ? mergeHeaders(input.headers, { 'content-type': contentType }) : input.headers
      const started = Date.now()
      const reply = await sendHttp({
        method,
        url: input.url,
        headers,
        authHeaders,
        ...(bytes !== undefined ? { body: bytes } : {}),
        tlsVerify: input.tls_verify,
        caPem: input.ca_pem,
        maxRedirects: input.follow_redirects ? MAX_REDIRECTS : 0,
        captureBytes: input.capture_body_bytes,
        signal,
      })
      writeReply(x.output, method, reply, Date.now() - started)
      const result = { status: reply.status, headers: reply.headers, body: decodeBody(reply), truncated: reply.truncated, url: reply.url, redirects: reply.redirects }
      if (!statusMatches(reply.status, input.expected_status)) return { status: 'failed', error: unexpectedStatus(reply.status, input.expected_status), result }
      return { status: 'succeeded', result }
    })
  },
}
