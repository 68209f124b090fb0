import { isIP } from 'node:net'
import { z } from 'zod'
import { OS_TYPES } from './targets.sql.ts'

export const TAG_KEY = /^[A-Za-z0-9_.\/-]{1,64}$/
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@:-]{0,254}$/
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/

export const TargetName = z.string().trim().regex(NAME, 'letters, digits and . _ @ : - only, starting with a letter or digit (max 255)')
export const Address = z
  .string()
  .trim()
  .refine((v) => isIP(v) !== 0 || HOSTNAME.test(v), 'must be a host name or an IP address')

export const Tags = z
  .record(z.string().regex(TAG_KEY, 'tag keys: letters, digits and _ . / - (max 64)'), z.string().max(256))
  .refine((t) => Object.keys(t).length <= 50, 'at most 50 tags')

const Port = z.number().int().min(1).max(65535)
const CredentialRef = z.uuid().nullable().default(null)

export const SshConnection = z
  .object({
    type: z.literal('ssh'),
    port: Port.default(22),
    credential_id: CredentialRef,
    host_key_policy: z.enum(['strict', 'tofu', 'off']).default('tofu'),
    jump: z
      .array(z.object({ target_id: z.uuid(), credential_id: CredentialRef }).strict())
      .max(5, 'at most 5 jump hosts')
      .default([]),
  })
  .strict()

export const WinrmConnection = z
  .object({
    type: z.literal('winrm'),
    https: z.boolean().default(true),
    port: Port.optional(),
    credential_id: CredentialRef,
    verify_tls: z.boolean().default(true),
    /** PEM CA certificate(s) to verify the host's HTTPS certificate with, instead of the system store. */
    tls_ca: z.string().max(64 * 1024).regex(/-----BEGIN CERTIFICATE-----/, 'a PEM certificate').optional(),
  })
  .strict()
  .transform((c) => ({ ...c, port: c.port ?? (c.https ? 5986 : 5985) }))

export const AgentConnection = z.object({ type: z.literal('agent'), agent_id: z.uuid().nullable().default(null) }).strict()

export const ConnectionInput = z.discriminatedUnion('type', [SshConnection, WinrmConnection, AgentConnection])
export type ConnectionInput = z.output<typeof ConnectionInput>

export const TargetInput = z
  .object({
    name: TargetName,
    address: Address,
    os_type: z.enum(OS_TYPES).default('linux'),
    description: z.string().trim().max(2000).nullish(),
    enabled: z.boolean().default(true),
    tags: Tags.default({}),
    connection: ConnectionInput,
  })
  .strict()
export type TargetInput = z.output<typeof TargetInput>

/** PUT: every field optional; given fields replace stored ones (tags and connection as a whole). */
export const TargetPatch = z
  .object({
    name: TargetName.optional(),
    address: Address.optional(),
    os_type: z.enum(OS_TYPES).optional(),
    description: z.string().trim().max(2000).nullish(),
    enabled: z.boolean().optional(),
    tags: Tags.optional(),
    connection: ConnectionInput.optional(),
  })
  .strict()
export type TargetPatch = z.output<typeof TargetPatch>
