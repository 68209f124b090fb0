import { z } from 'zod'
import { factsOf, SEVERITY_LABEL, truncate } from './format.ts'
import { postToIncomingWebhook } from './http-post.ts'
import { TimeoutMs, type ChannelSpec } from './spec.ts'
import type { ChannelDriver, Message } from './types.ts'

/*
 * Microsoft Teams incoming webhooks and the Workflows app's "When a Teams webhook request is
 * received" trigger take the same body: a message whose one attachment is an Adaptive Card
 * (https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using,
 * "Send Adaptive Cards using an Incoming Webhook"):
 *   { type: 'message', attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive',
 *     contentUrl: null, content: { $schema, type: 'AdaptiveCard', version, body, actions } }] }
 * Version 1.4 renders on every Teams client (desktop, web, mobile); Action.OpenUrl is supported,
 * Action.Submit is not. Workflows answer 202, legacy connectors 200 with "1" — or 200 with
 * "Microsoft Teams endpoint returned HTTP error 429" when throttled, which must be retried.
 */

export const TeamsConfig = z.object({ timeout_ms: TimeoutMs }).strict()

export const teamsSpec: ChannelSpec = { config: TeamsConfig, requiredSecrets: ['url'], allowedSecrets: ['url'] }

export const ADAPTIVE_CARD_CONTENT_TYPE = 'application/vnd.microsoft.card.adaptive'
export const ADAPTIVE_CARD_SCHEMA = 'http://adaptivecards.io/schemas/adaptive-card.json'

const COLOR: Record<Message['severity'], string> = {
  critical: 'Attention',
  error: 'Attention',
  warning: 'Warning',
  info: 'Accent',
  success: 'Good',
}

const MAX_FACTS = 40
const TEXT_MAX = 8000

export function teamsPayload(m: Message): Record<string, unknown> {
  const body: Record<string, unknown>[] = [
    { type: 'TextBlock', text: truncate(m.subject, 500), size: 'Large', weight: 'Bolder', color: COLOR[m.severity], wrap: true },
  ]
  const text = m.text.trim()
  if (text) body.push({ type: 'TextBlock', text: truncate(text, TEXT_MAX), wrap: true })
  const facts = factsOf(m).slice(0, MAX_FACTS)
  if (facts.length) body.push({ type: 'FactSet', facts: facts.map((f) => ({ title: truncate(f.label, 200), value: truncate(f.value || '—', 2000) })) })
  body.push({ type: 'TextBlock', text: `OpsConductor · ${m.event} · ${SEVERITY_LABEL[m.severity]}`, isSubtle: true, size: 'Small', wrap: true })
  const card: Record<string, unknown> = { $schema: ADAPTIVE_CARD_SCHEMA, type: 'AdaptiveCard', version: '1.4', body, msteams: { width: 'Full' } }
  if (m.link) card.actions = [{ type: 'Action.OpenUrl', title: 'Open in OpsConductor', url: m.link }]
  return { type: 'message', attachments: [{ contentType: ADAPTIVE_CARD_CONTENT_TYPE, contentUrl: null, content: card }] }
}

export const teamsDriver: ChannelDriver = {
  type: 'teams',
  render: (_channel, message) => ({ subject: message.subject, payload: teamsPayload(message) }),
  deliver: (channel, secret, payload, signal) =>
    postToIncomingWebhook(channel, secret, payload, signal, ({ body }) =>
      // Legacy connectors report throttling in a 200 body instead of a 429 status.
      /HTTP error 429/i.test(body) ? { ok: false, error: 'throttled by Teams (HTTP error 429 in a 200 answer)' } : undefined,
    ),
}
