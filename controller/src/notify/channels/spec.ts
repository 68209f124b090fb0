import { z } from 'zod'

/**
 * What the API checks for a channel type: its config (shown to admins) and which secret fields it
 * takes (sealed, never shown). Secret header values are stored under `header:<Name>` keys.
 */
export interface ChannelSpec {
  config: z.ZodType<Record<string, unknown>>
  /** Secret fields that must be set once the channel is saved. */
  requiredSecrets: readonly SecretField[]
  /** Secret fields the type uses at all; others are refused with a 400. */
  allowedSecrets: readonly SecretField[]
  /** Checks across config and secret (which fields are set, never their values); problems name the field. */
  check?: (config: Record<string, unknown>, secretFields: readonly string[]) => { path: string; message: string }[]
}

export const SECRET_FIELDS = ['url', 'hmac_secret', 'password', 'headers'] as const
export type SecretField = (typeof SECRET_FIELDS)[number]

export const SECRET_HEADER_PREFIX = 'header:'

/** How long one delivery may take, connect to last byte. */
export const TimeoutMs = z.number().int().min(1000).max(60_000).default(10_000)
