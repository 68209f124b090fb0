import { createSecureContext } from 'node:tls'
import { z } from 'zod'
import { HeaderMap, mergeHeaders } from '../../executors/http-client.ts'
import { signPayload } from '../../executors/webhook.ts'
import { checkTemplate, renderTemplate, TemplateError, TemplateRenderError, type TemplateScope } from '../../jobs/template.ts'
import { secretValues, timeoutOf, urlSecrets } from './format.ts'
import { deliverHttp } from './http-post.ts'
import { SECRET_HEADER_PREFIX, TimeoutMs, type ChannelSpec } from './spec.ts'
import type { ChannelDriver, Message } from './types.ts'

/*
 * Generic webhooks: POST (or PUT) to a URL kept in the secret (URLs often carry tokens), with
 * headers from the config plus secret headers, and a body that is either the default JSON
 *   { event, severity, subject, text, link, facts, data }
 * or the channel's body template rendered with the jobs template engine. The template sees the
 * message's fields as names: {{ subject }}, {{ data.run.id }}, {{ facts | json }}; inside a JSON
 * body write {{ text | json }} (a quoted, escaped JSON string), never "{{ text }}".
 *
 * Signing (when the channel has an hmac_secret), fresh on every attempt:
 *   X-OpsConductor-Timestamp: <unix seconds>
 *   X-OpsConductor-Signature: sha256=<hex HMAC-SHA256(hmac_secret, "<timestamp>.<raw body>")>
 * A receiver recomputes the HMAC over the exact bytes it received, compares it in constant time
 * (crypto.timingSafeEqual), and rejects the request when the timestamp is more than 5 minutes
 * from its clock — a captured request cannot be replayed later, and the timestamp cannot be
 * changed without breaking the signature. See README.md in this folder for a receiver example.
 *
 * Every request also carries
 *   X-OpsConductor-Delivery: <notification id>
 * the same on every attempt of one message, including a redelivery after a controller died
 * mid-send (delivery is at least once): a receiver that must not act twice de-duplicates on it.
 */

export const WEBHOOK_TEMPLATE_NAMES = ['event', 'severity', 'subject', 'text', 'link', 'facts', 'data'] as const

const MediaType = z
  .string()
  .trim()
  .max(200)
  .regex(/^[\w.+-]+\/[\w.+-]+(\s*;\s*[\w.+-]+=("[^"\r\n]*"|[\w.+-]+))*$/, 'a media type such as application/json')

export const WebhookConfig = z
  .object({
    method: z.enum(['POST', 'PUT']).default('POST'),
    /** Headers that are not secret; secret ones (tokens, keys) go in `secret.headers`. */
    headers: HeaderMap.default({}),
    content_type: MediaType.default('application/json'),
    /** Rendered with the jobs template engine; absent = the default JSON body. */
    body_template: z.string().min(1).max(64 * 1024).optional(),
    /** HTTP basic auth user; the password is `secret.password`. */
    username: z.string().min(1).max(200).regex(/^[^:\r\n]*$/, 'must not contain ":" or line breaks').optional(),
    timeout_ms: TimeoutMs,
    /** PEM CA certificate(s) that replace the system store for this receiver (an internal CA). */
    ca_pem: z.string().min(1).max(64 * 1024).optional(),
  })
  .strict()
export type WebhookConfig = z.output<typeof WebhookConfig>

/** Set by us on every request: neither config nor secret headers may carry them. */
const RESERVED_HEADERS = new Set([
  'content-type',
  'content-length',
  'host',
  'transfer-encoding',
  'connection',
  'user-agent',
  'x-opsconductor-timestamp',
  'x-opsconductor-signature',
  'x-opsconductor-event',
  'x-opsconductor-delivery',
])
const RESERVED_HINT: Record<string, string> = { 'content-type': 'set config.content_type instead' }
/** Header names and values that are credentials: refused in the config, which admins and the audit see. */
export const SECRET_LOOKING_HEADER = /auth|token|secret|passw|api[-_]?key|signature|cookie|session|credential|private|\bkey\b/i
const SECRET_LOOKING_VALUE = /^(bearer|basic|token|digest|apikey|api-key)\s+\S/i

export const webhookSpec: ChannelSpec = {
  config: WebhookConfig,
  requiredSecrets: ['url'],
  allowedSecrets: ['url', 'hmac_secret', 'password', 'headers'],
  check: checkWebhook,
}

function checkWebhook(raw: Record<string, unknown>, secretFields: readonly string[]): { path: string; message: string }[] {
  const config = raw as WebhookConfig
  const problems: { path: string; message: string }[] = []
  const configHeaders = new Set(Object.keys(config.headers).map((h) => h.toLowerCase()))
  for (const name of Object.keys(config.headers)) {
    const lower = name.toLowerCase()
    if (RESERVED_HEADERS.has(lower)) problems.push({ path: `config.headers.${name}`, message: `set by OpsConductor${RESERVED_HINT[lower] ? `; ${RESERVED_HINT[lower]}` : ''}` })
    else if (SECRET_LOOKING_HEADER.test(name) || SECRET_LOOKING_VALUE.test(config.headers[name]!)) problems.push({ path: `config.headers.${name}`, message: 'looks like a secret: send it in secret.headers, which is sealed and never shown' })
  }
  const secretHeaders = secretFields.filter((f) => f.startsWith(SECRET_HEADER_PREFIX)).map((f) => f.slice(SECRET_HEADER_PREFIX.length))
  for (const name of secretHeaders) {
    const lower = name.toLowerCase()
    if (RESERVED_HEADERS.has(lower)) problems.push({ path: `secret.headers.${name}`, message: `set by OpsConductor${RESERVED_HINT[lower] ? `; ${RESERVED_HINT[lower]}` : ''}` })
    else if (configHeaders.has(lower)) problems.push({ path: `secret.headers.${name}`, message: 'also set in config.headers; keep one' })
  }
  const hasPassword = secretFields.includes('password')
  const hasAuthorization = secretHeaders.some((h) => h.toLowerCase() === 'authorization')
  if (hasPassword && config.username === undefined) problems.push({ path: 'config.username', message: 'required with secret.password (HTTP basic auth)' })
  if (!hasPassword && config.username !== undefined) problems.push({ path: 'secret.password', message: 'required with config.username (HTTP basic auth)' })
  if (hasPassword && hasAuthorization) problems.push({ path: 'secret.headers.Authorization', message: 'conflicts with basic auth (config.username + secret.password); keep one' })
  if (config.body_template !== undefined) problems.push(...checkBodyTemplate(config.body_template, config.content_type).map((message) => ({ path: 'config.body_template', message })))
  if (config.ca_pem !== undefined && !validCa(config.ca_pem)) problems.push({ path: 'config.ca_pem', message: 'not a PEM CA certificate' })
  return problems
}

function validCa(pem: string): boolean {
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) return false
  try {
    createSecureContext({ ca: pem })
    return true
  } catch {
    return false
  }
}

const SAMPLE: Message = {
  event: 'run.failed',
  severity: 'error',
  subject: 'Job "backup" failed',
  text: 'Run 42 of "backup" failed on 1 of 3 targets.\nLast line: "disk full"',
  link: 'https://opsconductor.example/runs/42',
  facts: [{ label: 'Job', value: 'backup' }],
  data: {},
}

/** Template problems, plus "renders invalid JSON" when a JSON body fails to parse for a sample message. */
function checkBodyTemplate(source: string, contentType: string): string[] {
  const problems = checkTemplate(source, { params: new Set(WEBHOOK_TEMPLATE_NAMES), earlierSteps: new Set(), steps: new Set(), credentials: new Set(), noTarget: true })
  if (problems.length || !/[/+]json\b/i.test(contentType)) return problems
  let rendered: string
  try {
    rendered = renderTemplate(source, scopeOf(SAMPLE))
  } catch {
    // Paths into `data` depend on the event; only a template that renders can be checked further.
    return []
  }
  try {
    JSON.parse(rendered)
    return []
  } catch (err) {
    return [`renders invalid JSON for a sample message (${err instanceof Error ? err.message : 'parse error'}); inside JSON write {{ text | json }}, not "{{ text }}"`]
  }
}

function scopeOf(m: Message): TemplateScope {
  return {
    params: { event: m.event, severity: m.severity, subject: m.subject, text: m.text, link: m.link ?? '', facts: m.facts ?? [], data: m.data ?? {} },
    target: null,
    steps: {},
    secrets: {},
  }
}

export function defaultWebhookBody(m: Message): Record<string, unknown> {
  return { event: m.event, severity: m.severity, subject: m.subject, text: m.text, link: m.link ?? null, facts: m.facts ?? [], data: m.data ?? {} }
}

/**
 * The stored payload: the body exactly as it will be sent (and signed), its content type, and the
 * event. A template that cannot render for this message (a `data` path the event lacks) falls back
 * to the default JSON body with `template_error`, so the notification is not lost.
 */
export function renderWebhook(config: Record<string, unknown>, m: Message): Record<string, unknown> {
  const template = typeof config.body_template === 'string' ? config.body_template : undefined
  const contentType = typeof config.content_type === 'string' ? config.content_type : 'application/json'
  if (template !== undefined) {
    try {
      return { event: m.event, content_type: contentType, body: renderTemplate(template, scopeOf(m)) }
    } catch (err) {
      if (!(err instanceof TemplateRenderError || err instanceof TemplateError)) throw err
      return { event: m.event, content_type: 'application/json', body: JSON.stringify({ ...defaultWebhookBody(m), template_error: err.message }), template_error: err.message }
    }
  }
  return { event: m.event, content_type: 'application/json', body: JSON.stringify(defaultWebhookBody(m)) }
}

/** Request headers for one attempt: config headers, secret headers, auth, then ours (signature last). */
export function webhookHeaders(
  config: Record<string, unknown>,
  secret: Record<string, string>,
  payload: Record<string, unknown>,
  body: string,
  deliveryId: string,
  now = Date.now(),
): Record<string, string> {
  const plainHeaders = HeaderMap.safeParse(config.headers).data ?? {}
  const secretHeaders = Object.fromEntries(Object.entries(secret).filter(([k]) => k.startsWith(SECRET_HEADER_PREFIX)).map(([k, v]) => [k.slice(SECRET_HEADER_PREFIX.length), v]))
  let headers = mergeHeaders(plainHeaders, secretHeaders)
  const username = typeof config.username === 'string' ? config.username : undefined
  if (username !== undefined && secret.password !== undefined) headers = mergeHeaders(headers, { authorization: `Basic ${Buffer.from(`${username}:${secret.password}`).toString('base64')}` })
  const ours: Record<string, string> = {
    'content-type': typeof payload.content_type === 'string' ? payload.content_type : 'application/json',
    'user-agent': 'OpsConductor-Notifier',
  }
  if (typeof payload.event === 'string') ours['x-opsconductor-event'] = payload.event
  ours['x-opsconductor-delivery'] = deliveryId
  if (secret.hmac_secret) {
    const timestamp = Math.floor(now / 1000)
    ours['x-opsconductor-timestamp'] = String(timestamp)
    ours['x-opsconductor-signature'] = signPayload(secret.hmac_secret, timestamp, body)
  }
  return mergeHeaders(headers, ours)
}

export const webhookDriver: ChannelDriver = {
  type: 'webhook',
  render: (channel, message) => ({ subject: message.subject, payload: renderWebhook(channel.config, message) }),
  async deliver(channel, secret, payload, signal, meta) {
    if (!secret.url) return { ok: false, permanent: true, error: 'the channel has no URL', durationMs: 0 }
    const body = typeof payload.body === 'string' ? payload.body : JSON.stringify(payload.body ?? null)
    const method = channel.config.method === 'PUT' ? 'PUT' : 'POST'
    return deliverHttp({
      url: secret.url,
      method,
      headers: webhookHeaders(channel.config, secret, payload, body, meta.id),
      body,
      timeoutMs: timeoutOf(channel.config),
      caPem: typeof channel.config.ca_pem === 'string' ? channel.config.ca_pem : undefined,
      signal,
      secrets: [...urlSecrets(secret.url), ...secretValues(secret)],
    })
  },
}
