import { isIP } from 'node:net'
import { createTransport } from 'nodemailer'
import type { NodemailerError } from 'nodemailer/lib/errors'
import { z } from 'zod'
import { TLS_VERIFY_CODES } from '../../executors/outcome.ts'
import type { SmtpTransportSettings } from '../smtp-settings.ts'
import { escapeHtml, factsOf, plainText, SEVERITY_LABEL } from './format.ts'
import { masker } from './http-post.ts'
import type { ChannelSpec } from './spec.ts'
import type { ChannelDriver, Message, SendResult } from './types.ts'

/*
 * Email through the installation's SMTP server (nodemailer; settings and sealed password from
 * /notification/smtp/settings). One connection per message: notifications are few, and a fresh
 * connection never inherits a half-broken session. How SMTP answers map to the outbox:
 *   250 accepted                            ok (recipients the server refused are named in `error`)
 *   5xx (not 503), every recipient refused  permanent
 *   4xx, 503, connection/timeout errors     retry
 *   certificate not trusted                 permanent until the settings change
 * Every attempt of one notification carries the same `Message-ID: <notification id@opsconductor>`,
 * so a redelivery (at least once: a controller that died mid-send) is one message to mail
 * clients and to servers that de-duplicate on it.
 */

const MAX_RECIPIENTS = 100

export const EmailConfig = z
  .object({
    to: z.array(z.email('an email address')).min(1, 'at least one recipient').max(MAX_RECIPIENTS),
    /** Put before every subject, e.g. "[ops-prod]". */
    subject_prefix: z.string().trim().min(1).max(100).optional(),
  })
  .strict()

export const emailSpec: ChannelSpec = { config: EmailConfig, requiredSecrets: [], allowedSecrets: [] }

export interface EmailPayload {
  to: string[]
  subject: string
  text: string
  html: string
}

export function renderEmail(config: Record<string, unknown>, m: Message): EmailPayload {
  const prefix = typeof config.subject_prefix === 'string' ? `${config.subject_prefix} ` : ''
  const to = Array.isArray(config.to) ? config.to.filter((t): t is string => typeof t === 'string') : []
  const subject = `${prefix}${m.subject}`.replace(/[\r\n]+/g, ' ')
  return { to, subject, text: `${plainText(m)}\n\n-- \nOpsConductor · ${m.event} · ${SEVERITY_LABEL[m.severity]}\n`, html: emailHtml(m) }
}

const COLOR: Record<Message['severity'], string> = { critical: '#b00020', error: '#d32f2f', warning: '#ed6c02', info: '#0277bd', success: '#2e7d32' }

/** A plain table layout with inline styles: what mail clients render consistently. */
function emailHtml(m: Message): string {
  const facts = factsOf(m)
  const rows = facts.map((f) => `<tr><th align="left" style="padding:4px 12px 4px 0;color:#555;font-weight:600;vertical-align:top">${escapeHtml(f.label)}</th><td style="padding:4px 0">${escapeHtml(f.value)}</td></tr>`).join('')
  const link = m.link ? `<p style="margin:20px 0"><a href="${escapeHtml(m.link)}" style="background:${COLOR[m.severity]};color:#fff;padding:8px 16px;border-radius:4px;text-decoration:none">Open in OpsConductor</a></p>` : ''
  return [
    '<!doctype html><html><body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;color:#222;margin:0;padding:16px">',
    `<div style="border-left:4px solid ${COLOR[m.severity]};padding-left:12px">`,
    `<div style="font-size:12px;color:${COLOR[m.severity]};font-weight:700">${SEVERITY_LABEL[m.severity]}</div>`,
    `<h2 style="margin:4px 0 12px;font-size:18px">${escapeHtml(m.subject)}</h2>`,
    m.text.trim() ? `<pre style="white-space:pre-wrap;font-family:inherit;margin:0 0 12px">${escapeHtml(m.text.trim())}</pre>` : '',
    rows ? `<table cellspacing="0" cellpadding="0" style="border-collapse:collapse;margin:0 0 12px">${rows}</table>` : '',
    link,
    `</div><p style="font-size:12px;color:#888;margin-top:24px">OpsConductor · ${escapeHtml(m.event)}</p>`,
    '</body></html>',
  ].join('')
}

/** The Message-ID of a notification's email: stable across attempts, so receivers can de-duplicate. */
export const emailMessageId = (notificationId: string) => `<${notificationId}@opsconductor>`

/** Sends one message and reports the server's answer; never throws. Without `messageId` nodemailer makes a random one. */
export async function sendEmail(smtp: SmtpTransportSettings, mail: EmailPayload, signal: AbortSignal, opts: { messageId?: string } = {}): Promise<SendResult> {
  const started = Date.now()
  const mask = masker(smtp.password ? [smtp.password] : [])
  const transport = createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.security === 'tls',
    requireTLS: smtp.security === 'starttls',
    ignoreTLS: smtp.security === 'none',
    ...(smtp.username && smtp.password ? { auth: { user: smtp.username, pass: smtp.password } } : {}),
    tls: {
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      ...(isIP(smtp.host.replace(/^\[|\]$/g, '')) ? {} : { servername: smtp.host }),
      ...(smtp.caPem ? { ca: smtp.caPem } : {}),
    },
    connectionTimeout: smtp.timeoutMs,
    greetingTimeout: smtp.timeoutMs,
    socketTimeout: smtp.timeoutMs * 2,
    logger: false,
    debug: false,
  })
  try {
    const info = await transport.sendMail({
      from: smtp.from.name ? { name: smtp.from.name, address: smtp.from.address } : smtp.from.address,
      to: mail.to,
      subject: mail.subject,
      text: mail.text,
      html: mail.html,
      ...(opts.messageId ? { messageId: opts.messageId } : {}),
      signal,
    })
    const rejected = (info.rejected ?? []).map(String)
    return {
      ok: true,
      response: mask(String(info.response ?? '')).slice(0, 2048),
      ...(rejected.length ? { error: `refused by the server: ${rejected.join(', ')}` } : {}),
      durationMs: Date.now() - started,
    }
  } catch (err) {
    return { ...smtpFailure(err as NodemailerError, signal, mask), durationMs: Date.now() - started }
  } finally {
    transport.close()
  }
}

function smtpFailure(err: NodemailerError, signal: AbortSignal, mask: (s: string) => string): Omit<SendResult, 'durationMs'> {
  if (signal.aborted) return { ok: false, error: 'delivery cancelled (controller stopping)' }
  const code = err.responseCode
  const rootCode = err.originalCode ?? err.code
  const tls = rootCode !== undefined && (TLS_VERIFY_CODES.has(rootCode) || /^ERR_(SSL|TLS)_/.test(rootCode))
  const permanent = tls || err.permanent === true || (err.permanent === undefined && code !== undefined && code >= 500 && code !== 503)
  const refused = err.rejectedErrors?.length ? ` (refused: ${err.rejectedErrors.map((e) => `${e.recipient ?? '?'} ${e.responseCode ?? ''}`.trim()).join(', ')})` : ''
  const message = `${err.message.split(/\r?\n/, 1)[0]}${refused}`
  return {
    ok: false,
    error: mask(tls ? `certificate verify failed: ${message}` : message).slice(0, 1024),
    ...(err.response ? { response: mask(err.response).slice(0, 2048) } : {}),
    ...(permanent ? { permanent: true } : {}),
  }
}

/** The email channel type, reading the SMTP settings at each delivery (they may change between attempts). */
export function emailDriver(loadSmtp: () => Promise<SmtpTransportSettings | null>): ChannelDriver {
  return {
    type: 'email',
    render: (channel, message) => {
      const payload = renderEmail(channel.config, message)
      return { subject: payload.subject, payload: { ...payload } }
    },
    async deliver(_channel, _secret, payload, signal, meta) {
      let smtp: SmtpTransportSettings | null
      try {
        smtp = await loadSmtp()
      } catch (err) {
        return { ok: false, error: `cannot read the SMTP settings: ${err instanceof Error ? err.message : String(err)}`, durationMs: 0 }
      }
      // Not permanent: the message waits (with backoff) for an admin to configure SMTP.
      if (!smtp) return { ok: false, error: 'SMTP is not configured (POST /api/v1/notification/smtp/settings)', durationMs: 0 }
      const mail = EmailPayloadShape.safeParse(payload)
      if (!mail.success) return { ok: false, permanent: true, error: 'not an email payload', durationMs: 0 }
      return sendEmail(smtp, mail.data, signal, { messageId: emailMessageId(meta.id) })
    },
  }
}

const EmailPayloadShape = z.object({ to: z.array(z.string()).min(1), subject: z.string(), text: z.string(), html: z.string() })
