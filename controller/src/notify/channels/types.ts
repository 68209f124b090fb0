import type { ChannelType, NotificationChannelRow } from '../notify.sql.ts'

/*
 * The contract between the outbox (what to send, when, how often) and the channel types (how to
 * render a message for a receiver and hand it over). Channel code never retries or sleeps: it
 * reports what the receiver said, and the outbox worker decides.
 */

/** A notification before it is shaped for a channel: what every channel type renders from. */
export interface Message {
  event: string
  /** critical | error | warning | info | success */
  severity: 'critical' | 'error' | 'warning' | 'info' | 'success'
  subject: string
  /** Plain text body (already rendered from the template, secrets masked). */
  text: string
  /** Optional link to the thing the message is about (a run in the web UI). */
  link?: string
  /** Short label → value facts (job, status, duration, failed targets…) for cards and tables. */
  facts?: { label: string; value: string }[]
  /** Event data for webhook bodies and templates (no secrets). */
  data?: Record<string, unknown>
}

/** What the receiver answered to one delivery attempt. */
export interface SendResult {
  ok: boolean
  httpStatus?: number
  /** The receiver's answer, truncated (never containing our secrets). */
  response?: string
  /** From Retry-After (seconds or HTTP date) or the receiver's own hint. */
  retryAfterMs?: number
  /** True when retrying cannot help (4xx other than 408/429, a refused recipient). */
  permanent?: boolean
  error?: string
  durationMs: number
}

/** The channel's sealed secret, opened only for the delivery (webhook URL, HMAC key, SMTP password). */
export type ChannelSecret = Record<string, string>

/** About the delivery rather than the message. */
export interface DeliveryMeta {
  /**
   * The notification's id: the same on every attempt and redelivery of one message (a retry, a
   * lease taken over after a crash), so a receiver can de-duplicate on it. Webhooks send it as
   * `X-OpsConductor-Delivery`, email as the `Message-ID` `<id@opsconductor>`.
   */
  id: string
}

export interface ChannelDriver {
  type: ChannelType
  /** Renders a message into the payload stored in the outbox row (JSON-serialisable). */
  render(channel: NotificationChannelRow, message: Message): { subject: string; payload: Record<string, unknown> }
  /** Hands a stored payload to the receiver once. */
  deliver(channel: NotificationChannelRow, secret: ChannelSecret, payload: Record<string, unknown>, signal: AbortSignal, meta: DeliveryMeta): Promise<SendResult>
}
