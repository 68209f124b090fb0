import { z } from 'zod'
import { factsOf, SEVERITY_LABEL, truncate } from './format.ts'
import { postToIncomingWebhook } from './http-post.ts'
import { TimeoutMs, type ChannelSpec } from './spec.ts'
import type { ChannelDriver, Message } from './types.ts'

/*
 * Slack incoming webhooks (https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks):
 * POST a JSON message to the hook URL (the secret). `text` is the notification fallback, `blocks`
 * the Block Kit layout: a header (plain_text, ≤ 150 chars), a section with the body (mrkdwn,
 * ≤ 3000), sections of fields (≤ 10 per section, ≤ 2000 each), an actions block with a link button
 * (label ≤ 75, url ≤ 3000) and a context line. Slack answers 200 "ok", or 400 invalid_payload,
 * 403 action_prohibited, 404 channel_not_found, 410 channel_is_archived, 429 with Retry-After.
 */

export const SlackConfig = z.object({ timeout_ms: TimeoutMs }).strict()

export const slackSpec: ChannelSpec = { config: SlackConfig, requiredSecrets: ['url'], allowedSecrets: ['url'] }

const EMOJI: Record<Message['severity'], string> = {
  critical: ':rotating_light:',
  error: ':x:',
  warning: ':warning:',
  info: ':information_source:',
  success: ':white_check_mark:',
}

// Slack's limits (Block Kit reference): header 150, section text 3000, field 2000, 10 fields per
// section, 50 blocks per message, button label 75, button url 3000.
const HEADER_MAX = 150
const SECTION_MAX = 3000
const FIELD_MAX = 2000
const FIELDS_PER_SECTION = 10
const MAX_FACT_SECTIONS = 4
const URL_MAX = 3000

/** mrkdwn needs &, < and > escaped; everything else is shown as written. */
export const escapeMrkdwn = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

const mrkdwn = (text: string) => ({ type: 'mrkdwn', text })
const plain = (text: string) => ({ type: 'plain_text', text, emoji: true })

export function slackPayload(m: Message): Record<string, unknown> {
  const blocks: Record<string, unknown>[] = [{ type: 'header', text: plain(truncate(`${EMOJI[m.severity]} ${m.subject}`, HEADER_MAX)) }]
  const body = m.text.trim()
  if (body) blocks.push({ type: 'section', text: mrkdwn(truncate(escapeMrkdwn(body), SECTION_MAX)) })
  const facts = factsOf(m)
  for (let i = 0; i < facts.length && i < FIELDS_PER_SECTION * MAX_FACT_SECTIONS; i += FIELDS_PER_SECTION) {
    const fields = facts.slice(i, i + FIELDS_PER_SECTION).map((f) => mrkdwn(truncate(`*${escapeMrkdwn(f.label)}*\n${escapeMrkdwn(f.value || '—')}`, FIELD_MAX)))
    blocks.push({ type: 'section', fields })
  }
  if (m.link && m.link.length <= URL_MAX) {
    blocks.push({ type: 'actions', elements: [{ type: 'button', text: plain('Open in OpsConductor'), url: m.link, action_id: 'opsc_open' }] })
  }
  blocks.push({ type: 'context', elements: [mrkdwn(escapeMrkdwn(`OpsConductor · ${m.event} · ${SEVERITY_LABEL[m.severity]}`))] })
  // The fallback shows in notifications and where blocks cannot be rendered.
  const fallback = `[${SEVERITY_LABEL[m.severity]}] ${m.subject}${body ? ` — ${body.split('\n', 1)[0]}` : ''}`
  return { text: truncate(escapeMrkdwn(fallback), SECTION_MAX), blocks }
}

export const slackDriver: ChannelDriver = {
  type: 'slack',
  render: (_channel, message) => ({ subject: message.subject, payload: slackPayload(message) }),
  deliver: (channel, secret, payload, signal) => postToIncomingWebhook(channel, secret, payload, signal),
}
