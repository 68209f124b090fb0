import { z } from 'zod'
import type { CredentialType } from './credentials.sql.ts'
import { inspectCertificate, inspectSshKey, parseCertificates } from './key-material.ts'

/*
 * One schema per credential type. Each type's fields are either public (stored in `metadata`,
 * shown in responses) or secret (sealed together in `secret`, never shown; responses say
 * `has_<field>`). `derive` parses keys and certificates at save time and adds what it learns
 * (key type, fingerprint, expiry) to the metadata.
 */

const Text = (max: number) => z.string().trim().min(1).max(max)
// Secrets are kept exactly as given: leading or trailing spaces can be part of a password.
const Secret = (max = 4096) => z.string().min(1, 'must not be empty').max(max)
const Pem = z.string().min(1).max(64 * 1024)
const Username = Text(256)
const Host = Text(253).regex(/^[^\s/]+$/, 'a host name or IP address')
const Port = z.number().int().min(1).max(65535)
// RFC 9110 token characters; values must not break the header line.
const HeaderName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/, 'not a valid HTTP header name')
const HeaderValue = z.string().min(1).max(8192).regex(/^[^\r\n\0]*$/, 'must not contain line breaks')

type Refine = (value: Record<string, unknown>, ctx: z.RefinementCtx) => void

/** Reports `fields` that must (or must not) be present, naming each one. */
function requireFields(value: Record<string, unknown>, ctx: z.RefinementCtx, fields: readonly string[], why: string): void {
  for (const f of fields) if (value[f] === undefined) ctx.addIssue({ code: 'custom', path: [f], message: `required ${why}` })
}
function forbidFields(value: Record<string, unknown>, ctx: z.RefinementCtx, fields: readonly string[], why: string): void {
  for (const f of fields) if (value[f] !== undefined) ctx.addIssue({ code: 'custom', path: [f], message: `not used ${why}` })
}

const HTTP_SCHEMES = { basic: ['username', 'password'], bearer: ['token'], api_key: ['header_name', 'api_key'], headers: ['headers'] } as const
const HTTP_FIELDS = ['username', 'password', 'token', 'header_name', 'api_key', 'headers'] as const

const shapes = {
  ssh_password: { username: Username, password: Secret() },
  ssh_key: { username: Username, private_key: Secret(64 * 1024), passphrase: Secret(1024).optional() },
  winrm: {
    username: Username,
    password: Secret(),
    domain: Text(255).optional(),
    auth: z.enum(['basic', 'ntlm']).default('ntlm'),
    transport: z.enum(['https', 'http']).default('https'),
  },
  http_auth: {
    scheme: z.enum(['basic', 'bearer', 'api_key', 'headers']),
    username: Username.optional(),
    password: Secret().optional(),
    token: Secret(8192).optional(),
    header_name: HeaderName.optional(),
    api_key: Secret(8192).optional(),
    /** Custom headers sent with every request; their values are secret, their names are shown. */
    headers: z
      .record(HeaderName, HeaderValue)
      .refine((h) => Object.keys(h).length > 0 && Object.keys(h).length <= 50, 'give 1 to 50 headers')
      .optional(),
  },
  database: {
    driver: z.enum(['postgres', 'mysql']),
    host: Host,
    /** Defaults to the driver's port (5432, 3306). */
    port: Port.optional(),
    database: Text(128),
    username: Username,
    password: Secret(),
    tls_mode: z.enum(['disable', 'require', 'verify_ca', 'verify_full']).default('verify_full'),
    /** PEM CA certificate(s) to verify the server with, instead of the system store. */
    tls_ca: Pem.optional(),
  },
  snmp: {
    version: z.enum(['v2c', 'v3']),
    community: Secret(255).optional(),
    username: Text(32).optional(),
    auth_protocol: z.enum(['md5', 'sha']).optional(),
    auth_password: Secret(255).min(8, 'SNMPv3 passwords have at least 8 characters').optional(),
    priv_protocol: z.enum(['des', 'aes']).optional(),
    priv_password: Secret(255).min(8, 'SNMPv3 passwords have at least 8 characters').optional(),
  },
  certificate: {
    /** PEM: the client certificate first, then any intermediates. */
    certificate: Pem,
    private_key: Secret(64 * 1024),
    passphrase: Secret(1024).optional(),
    ca: Pem.optional(),
  },
} satisfies Record<CredentialType, z.ZodRawShape>

const refines: Partial<Record<CredentialType, Refine>> = {
  winrm: (v, ctx) => {
    if (v.auth === 'basic' && v.transport === 'http') {
      ctx.addIssue({ code: 'custom', path: ['transport'], message: 'basic authentication over http would send the password in the clear; use https or ntlm' })
    }
  },
  http_auth: (v, ctx) => {
    const needed = HTTP_SCHEMES[v.scheme as keyof typeof HTTP_SCHEMES]
    requireFields(v, ctx, needed, `for scheme ${String(v.scheme)}`)
    forbidFields(v, ctx, HTTP_FIELDS.filter((f) => !(needed as readonly string[]).includes(f)), `with scheme ${String(v.scheme)}`)
  },
  snmp: (v, ctx) => {
    if (v.version === 'v2c') {
      requireFields(v, ctx, ['community'], 'for SNMP v2c')
      forbidFields(v, ctx, ['username', 'auth_protocol', 'auth_password', 'priv_protocol', 'priv_password'], 'with SNMP v2c')
      return
    }
    forbidFields(v, ctx, ['community'], 'with SNMP v3 (give username and auth/priv settings)')
    requireFields(v, ctx, ['username'], 'for SNMP v3')
    if ((v.auth_protocol === undefined) !== (v.auth_password === undefined)) requireFields(v, ctx, ['auth_protocol', 'auth_password'], 'together')
    if ((v.priv_protocol === undefined) !== (v.priv_password === undefined)) requireFields(v, ctx, ['priv_protocol', 'priv_password'], 'together')
    if (v.priv_protocol !== undefined && v.auth_protocol === undefined) requireFields(v, ctx, ['auth_protocol'], 'for privacy (authPriv)')
  },
  database: (v, ctx) => {
    if (v.tls_ca !== undefined && v.tls_mode === 'disable') ctx.addIssue({ code: 'custom', path: ['tls_ca'], message: 'not used with tls_mode disable' })
  },
}

function fieldsSchema<T extends CredentialType>(type: T) {
  const schema = z.object(shapes[type]).strict()
  const refine = refines[type]
  return refine ? schema.superRefine((v, ctx) => refine(v as Record<string, unknown>, ctx)) : schema
}

/** A type's own fields (no name, description or type): what updates are validated against after merging. */
export const CREDENTIAL_FIELDS = {
  ssh_password: fieldsSchema('ssh_password'),
  ssh_key: fieldsSchema('ssh_key'),
  winrm: fieldsSchema('winrm'),
  http_auth: fieldsSchema('http_auth'),
  database: fieldsSchema('database'),
  snmp: fieldsSchema('snmp'),
  certificate: fieldsSchema('certificate'),
}

export const SECRET_FIELDS: Record<CredentialType, readonly string[]> = {
  ssh_password: ['password'],
  ssh_key: ['private_key', 'passphrase'],
  winrm: ['password'],
  http_auth: ['password', 'token', 'api_key', 'headers'],
  database: ['password'],
  snmp: ['community', 'auth_password', 'priv_password'],
  certificate: ['private_key', 'passphrase'],
}

/**
 * The field whose change switches a type to another set of fields (http_auth basic → bearer):
 * an update that changes it starts from nothing instead of merging the stored fields.
 */
export const VARIANT_FIELD: Partial<Record<CredentialType, string>> = { http_auth: 'scheme', snmp: 'version' }

export const publicFields = (type: CredentialType): string[] => Object.keys(shapes[type]).filter((f) => !SECRET_FIELDS[type].includes(f))

const Common = {
  name: Text(100),
  description: z.string().trim().max(1000).nullish(),
}

function createSchema<T extends CredentialType>(type: T) {
  const schema = z.object({ type: z.literal(type), ...Common, ...shapes[type] }).strict()
  const refine = refines[type]
  return refine ? schema.superRefine((v, ctx) => refine(v as Record<string, unknown>, ctx)) : schema
}

/** `POST /api/v1/credentials`: `{ name, type, description?, …fields of that type }`. */
export const CreateCredentialInput = z.discriminatedUnion('type', [
  createSchema('ssh_password'),
  createSchema('ssh_key'),
  createSchema('winrm'),
  createSchema('http_auth'),
  createSchema('database'),
  createSchema('snmp'),
  createSchema('certificate'),
])
export type CreateCredentialInput = z.infer<typeof CreateCredentialInput>

/** A credential with every field, secrets included: only for executors inside the controller. */
export type CredentialFields = CreateCredentialInput

/**
 * `PUT /api/v1/credentials/:id`: name and description, plus any of the type's fields. Omitted
 * fields keep their stored values; `null` clears an optional one. The merged result is validated
 * against the type's schema in the service, which knows the stored type.
 */
export const UpdateCredentialInput = z
  .object({
    name: Text(100).optional(),
    description: z.string().trim().max(1000).nullish(),
    type: z.string().optional(),
  })
  .catchall(z.unknown())
export type UpdateCredentialInput = z.infer<typeof UpdateCredentialInput>

/** What is learnt from the fields at save time (parsing keys and certificates); throws a 400 naming the field. */
export async function deriveMetadata(type: CredentialType, fields: Record<string, unknown>): Promise<Record<string, unknown>> {
  switch (type) {
    case 'ssh_key':
      return { ...(await inspectSshKey(fields.private_key as string, fields.passphrase as string | undefined)) }
    case 'certificate':
      return { ...inspectCertificate(fields as { certificate: string; private_key: string; passphrase?: string; ca?: string }) }
    case 'database':
      if (fields.tls_ca !== undefined) parseCertificates(fields.tls_ca as string, 'tls_ca')
      return {}
    case 'http_auth':
      return fields.headers ? { header_names: Object.keys(fields.headers as Record<string, string>) } : {}
    case 'snmp':
      return fields.version === 'v3' ? { security_level: fields.priv_protocol ? 'authPriv' : fields.auth_protocol ? 'authNoPriv' : 'noAuthNoPriv' } : {}
    case 'ssh_password':
    case 'winrm':
      return {}
    default: {
      const unknown: never = type
      throw new Error(`unknown credential type ${String(unknown)}`)
    }
  }
}

/** Public fields, derived facts and `has_<secret>` flags (→ metadata); secret fields (→ sealed). */
export async function splitFields(type: CredentialType, fields: Record<string, unknown>): Promise<{ metadata: Record<string, unknown>; secrets: Record<string, unknown> }> {
  const metadata: Record<string, unknown> = {}
  for (const f of publicFields(type)) if (fields[f] !== undefined) metadata[f] = fields[f]
  Object.assign(metadata, await deriveMetadata(type, fields))
  const secrets: Record<string, unknown> = {}
  for (const f of SECRET_FIELDS[type]) {
    metadata[`has_${f}`] = fields[f] !== undefined
    if (fields[f] !== undefined) secrets[f] = fields[f]
  }
  return { metadata, secrets }
}
