import type { AppContext } from '../../context.ts'
import { CHANNEL_TYPES, type ChannelType } from '../notify.sql.ts'
import { loadSmtpTransport } from '../smtp-settings.ts'
import { emailDriver, emailSpec } from './email.ts'
import { slackDriver, slackSpec } from './slack.ts'
import type { ChannelSpec } from './spec.ts'
import { teamsDriver, teamsSpec } from './teams.ts'
import type { ChannelDriver } from './types.ts'
import { webhookDriver, webhookSpec } from './webhook.ts'

/** What the API checks per channel type (config schema, secret fields). */
export const CHANNEL_SPECS: Record<ChannelType, ChannelSpec> = {
  email: emailSpec,
  slack: slackSpec,
  teams: teamsSpec,
  webhook: webhookSpec,
}

/**
 * The drivers, type → driver. Email reads the SMTP settings (and opens their password) from the
 * database at each delivery, hence the context; the HTTP types need nothing but the channel.
 */
export function channelDrivers(ctx: Pick<AppContext, 'db' | 'keyring'>): Record<ChannelType, ChannelDriver> {
  return {
    email: emailDriver(() => loadSmtpTransport(ctx)),
    slack: slackDriver,
    teams: teamsDriver,
    webhook: webhookDriver,
  }
}

export function channelDriver(ctx: Pick<AppContext, 'db' | 'keyring'>, type: ChannelType): ChannelDriver {
  if (!CHANNEL_TYPES.includes(type)) throw new Error(`unknown notification channel type ${String(type)}`)
  return channelDrivers(ctx)[type]
}

// Without a context the email driver can render but not send (it cannot read the SMTP settings):
// its deliver answers a retryable error, so nothing is lost while the caller is fixed.
const NO_CONTEXT: Record<ChannelType, ChannelDriver> = {
  email: emailDriver(() => Promise.reject(new Error('the email driver was looked up without the controller context: use driverFor(type, ctx)'))),
  slack: slackDriver,
  teams: teamsDriver,
  webhook: webhookDriver,
}

/**
 * The driver for a type, undefined for an unknown one. Pass `ctx` wherever messages are delivered
 * (the outbox worker: `(type) => driverFor(type, ctx)`); rendering alone needs none.
 */
export function driverFor(type: ChannelType, ctx?: Pick<AppContext, 'db' | 'keyring'>): ChannelDriver | undefined {
  if (!CHANNEL_TYPES.includes(type)) return undefined
  return ctx ? channelDrivers(ctx)[type] : NO_CONTEXT[type]
}

export type { ChannelDriver, ChannelSecret, Message, SendResult } from './types.ts'
