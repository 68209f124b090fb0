import { readFileSync } from 'node:fs'
import path from 'node:path'
import { z } from 'zod'
import { VERSION } from '../../proto/src/product-version.ts'

const port = (name: string, fallback: number) =>
  z
    .string()
    .default(String(fallback))
    .transform((raw, ctx) => {
      const value = Number(raw)
      if (!/^\d+$/.test(raw.trim()) || value > 65535) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a port number from 0 to 65535 (got "${raw}")` })
        return z.NEVER
      }
      return value
    })

/** A whole number of milliseconds (or bytes) within [min, max], from an environment string. */
const bounded = (name: string, fallback: number, min: number, max: number, unit = 'ms') =>
  z
    .string()
    .default(String(fallback))
    .transform((raw, ctx) => {
      const value = Number(raw)
      if (!/^\d+$/.test(raw.trim()) || value < min || value > max) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a whole number of ${unit} from ${min} to ${max} (got "${raw}")` })
        return z.NEVER
      }
      return value
    })

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** The oldest agent a controller supports by default: its own release line, `major.minor.0`. */
export const DEFAULT_AGENT_MIN_VERSION = /^(\d+)\.(\d+)\./.exec(VERSION)?.slice(1, 3).concat('0').join('.') ?? '0.0.0'

export const ControllerConfig = z
  .object({
    OPSC_HTTP_PORT: port('OPSC_HTTP_PORT', 8443),
    OPSC_GRPC_PORT: port('OPSC_GRPC_PORT', 8444),
    /** Where operators reach the web UI (links in notifications); default: https://<host name>:<port>. */
    OPSC_PUBLIC_URL: z.url({ protocol: /^https?$/, message: 'OPSC_PUBLIC_URL must be an http(s) URL' }).optional(),
    OPSC_BIND: z
      .string()
      .default('0.0.0.0')
      .refine((v) => v.length > 0 && !/\s/.test(v), { message: 'OPSC_BIND must be an IP address or host name' }),
    OPSC_DATA_DIR: z
      .string()
      .default('./data')
      .refine((v) => v.length > 0, { message: 'OPSC_DATA_DIR must not be empty' })
      .transform((v) => path.resolve(v)),
    /** Postgres connections one controller opens at most (plus one for LISTEN); ignored for the embedded database. */
    OPSC_DB_POOL_SIZE: bounded('OPSC_DB_POOL_SIZE', 10, 1, 1000, 'connections'),
    DATABASE_URL: z
      .string()
      .optional()
      .transform((v) => (v === '' ? undefined : v))
      .refine((v) => v === undefined || /^postgres(ql)?:\/\/.+/.test(v), {
        message: 'DATABASE_URL must be a postgres:// or postgresql:// URL (unset it to use the embedded database)',
      }),
    /** One base64 key, or several comma-separated during a rotation (`new,old`): the first is current. */
    OPSC_MASTER_KEY: z
      .string()
      .optional()
      .refine((v) => v === undefined || v.split(',').every((k) => Buffer.from(k.trim(), 'base64').length === 32), {
        message: 'OPSC_MASTER_KEY must be 32 bytes encoded as base64 (several keys: comma-separated, the current one first)',
      })
      .refine((v) => v === undefined || new Set(v.split(',').map((k) => Buffer.from(k.trim(), 'base64').toString('hex'))).size === v.split(',').length, {
        message: 'OPSC_MASTER_KEY lists the same key twice',
      }),
    /** Password for the initial `admin` on an empty database (unattended installs); otherwise one is generated. */
    OPSC_ADMIN_PASSWORD: z.string().optional(),
    OPSC_TLS_CERT: z.string().optional(),
    OPSC_TLS_KEY: z.string().optional(),
    OPSC_TLS_SANS: z
      .string()
      .default('')
      .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean)),
    OPSC_LOG_LEVEL: z.enum(LOG_LEVELS, {
      message: `OPSC_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`,
    }).default('info'),
    /** Where the built web UI lives; defaults to ui/dist of this checkout (packages set it). */
    OPSC_UI_DIR: z.string().optional(),
    /** How often controller and agents exchange heartbeats; silence for 3 intervals ends a session. */
    /** The agent gateway cuts a TLS handshake not finished in this time. */
    OPSC_GRPC_HANDSHAKE_TIMEOUT_MS: bounded('OPSC_GRPC_HANDSHAKE_TIMEOUT_MS', 10_000, 100, 120_000),
    /** The agent gateway closes a connection that carries no call for this long. */
    OPSC_GRPC_IDLE_CONNECTION_MS: bounded('OPSC_GRPC_IDLE_CONNECTION_MS', 60_000, 100, 3_600_000),
    /** Connections the agent gateway holds at most; more are closed at once. */
    OPSC_GRPC_MAX_CONNECTIONS: bounded('OPSC_GRPC_MAX_CONNECTIONS', 50_000, 1, 1_000_000, 'connections'),
    OPSC_AGENT_HEARTBEAT_MS: bounded('OPSC_AGENT_HEARTBEAT_MS', 15_000, 200, 15_000),
    /** How long an assignment on a disconnected agent waits for it to come back before it is `agent_lost`. */
    OPSC_AGENT_LOST_GRACE_MS: bounded('OPSC_AGENT_LOST_GRACE_MS', 120_000, 1_000, 86_400_000),
    /** Agents told to drain reconnect at a random moment within this window (no reconnect storm). */
    OPSC_AGENT_DRAIN_WINDOW_MS: bounded('OPSC_AGENT_DRAIN_WINDOW_MS', 30_000, 0, 600_000),
    /** Agents older than this (semver) are flagged `version_supported: false` and counted as outdated. */
    OPSC_AGENT_MIN_VERSION: z
      .string()
      .default(DEFAULT_AGENT_MIN_VERSION)
      .transform((raw, ctx) => {
        if (/^\d{1,9}\.\d{1,9}\.\d{1,9}$/.test(raw.trim())) return raw.trim()
        ctx.addIssue({ code: 'custom', message: `OPSC_AGENT_MIN_VERSION must be a version MAJOR.MINOR.PATCH such as ${DEFAULT_AGENT_MIN_VERSION} (got "${raw}")` })
        return z.NEVER
      }),
    /** Output kept per step run; beyond it the output is marked truncated. */
    OPSC_OUTPUT_CAP_BYTES: bounded('OPSC_OUTPUT_CAP_BYTES', 64 * 1024 * 1024, 1024, 4 * 1024 * 1024 * 1024, 'bytes'),
    /** A claimed step run's lease: a controller that stops renewing it for this long loses it to another. */
    OPSC_WORK_LEASE_MS: bounded('OPSC_WORK_LEASE_MS', 30_000, 1_000, 600_000),
    /** Steps a controller runs itself at once (SSH, HTTP, SQL…); agent steps have their own, larger limit. */
    OPSC_ENGINE_LOCAL_CAPACITY: bounded('OPSC_ENGINE_LOCAL_CAPACITY', 256, 1, 10_000, 'steps'),
    OPSC_ENGINE_AGENT_CAPACITY: bounded('OPSC_ENGINE_AGENT_CAPACITY', 20_000, 1, 1_000_000, 'steps'),
    /** Finished runs (with their output) older than this are deleted; 0 keeps them forever. */
    OPSC_RUN_RETENTION_DAYS: bounded('OPSC_RUN_RETENTION_DAYS', 90, 0, 36_500, 'days'),
    /** Output of finished runs older than this is deleted (the run record stays); 0 keeps it as long as the run. */
    OPSC_OUTPUT_RETENTION_DAYS: bounded('OPSC_OUTPUT_RETENTION_DAYS', 30, 0, 36_500, 'days'),
    /** When stored output exceeds this, the oldest finished runs' output goes first; 0 means no size limit. */
    OPSC_OUTPUT_RETENTION_BYTES: bounded('OPSC_OUTPUT_RETENTION_BYTES', 0, 0, Number.MAX_SAFE_INTEGER, 'bytes'),
    /** SSH handshakes in progress at once across all targets, so a wide fan-out does not trip every host's MaxStartups. */
    OPSC_SSH_MAX_HANDSHAKES: bounded('OPSC_SSH_MAX_HANDSHAKES', 64, 1, 10_000, 'handshakes'),
    /** How long an SSH handshake (TCP connect to authenticated) may take. */
    OPSC_SSH_HANDSHAKE_TIMEOUT_MS: bounded('OPSC_SSH_HANDSHAKE_TIMEOUT_MS', 15_000, 500, 300_000),
    /** Extra handshake attempts after the server dropped the connection before its banner (MaxStartups, reset). */
    OPSC_SSH_HANDSHAKE_RETRIES: bounded('OPSC_SSH_HANDSHAKE_RETRIES', 3, 0, 10, 'attempts'),
    /** Channels (commands, SFTP sessions) per pooled SSH connection; kept below sshd's default MaxSessions 10. */
    OPSC_SSH_CHANNELS_PER_CONNECTION: bounded('OPSC_SSH_CHANNELS_PER_CONNECTION', 8, 1, 64, 'channels'),
    /** Pooled SSH connections to one target at once; further steps wait for a free channel. */
    OPSC_SSH_CONNECTIONS_PER_TARGET: bounded('OPSC_SSH_CONNECTIONS_PER_TARGET', 4, 1, 64, 'connections'),
    /** An SSH connection with nothing running is closed after this long; 0 closes it as soon as its step ends (no reuse). */
    OPSC_SSH_IDLE_MS: bounded('OPSC_SSH_IDLE_MS', 30_000, 0, 3_600_000),
    /** How often the scheduler's leader looks for due schedules (the fire lag is at most about this). */
    OPSC_SCHEDULER_TICK_MS: bounded('OPSC_SCHEDULER_TICK_MS', 1_000, 100, 60_000),
    /** How often a controller that does not lead the scheduler tries to take over (a dead leader's lock frees at once). */
    OPSC_SCHEDULER_LEADER_RETRY_MS: bounded('OPSC_SCHEDULER_LEADER_RETRY_MS', 3_000, 100, 60_000),
    /** How late a `skip`-misfire occurrence may fire and still count as on time. */
    OPSC_SCHEDULER_GRACE_MS: bounded('OPSC_SCHEDULER_GRACE_MS', 5_000, 0, 3_600_000),
    /** Notifications one controller delivers at once (each channel's rate limit still applies across controllers). */
    OPSC_NOTIFY_CONCURRENCY: bounded('OPSC_NOTIFY_CONCURRENCY', 8, 1, 1_000, 'deliveries'),
    /** A failed delivery waits this long before its second attempt, doubling each time (±20 % jitter) up to the cap. */
    OPSC_NOTIFY_BACKOFF_BASE_MS: bounded('OPSC_NOTIFY_BACKOFF_BASE_MS', 5_000, 100, 3_600_000),
    /** The longest wait between two attempts of one notification (a receiver's Retry-After may ask for longer, up to an hour). */
    OPSC_NOTIFY_BACKOFF_CAP_MS: bounded('OPSC_NOTIFY_BACKOFF_CAP_MS', 15 * 60_000, 100, 86_400_000),
    /** Attempts per notification before it becomes a dead letter (12 with the default backoff: about an hour). */
    OPSC_NOTIFY_MAX_ATTEMPTS: bounded('OPSC_NOTIFY_MAX_ATTEMPTS', 12, 1, 100, 'attempts'),
    /** Finished notifications (and their attempts) older than this are deleted; 0 keeps them. */
    OPSC_NOTIFY_RETENTION_DAYS: bounded('OPSC_NOTIFY_RETENTION_DAYS', 90, 0, 36_500, 'days'),
    /** A claimed notification's lease: a send is aborted at half of it; a controller that died holding one loses it when it lapses. */
    OPSC_NOTIFY_LEASE_MS: bounded('OPSC_NOTIFY_LEASE_MS', 60_000, 2_000, 3_600_000),
    /** Largest request body an API route takes (413 beyond); target and job imports take up to 32 MiB (or this, if larger). */
    OPSC_HTTP_MAX_BODY_BYTES: bounded('OPSC_HTTP_MAX_BODY_BYTES', 1024 * 1024, 1024, 1024 * 1024 * 1024, 'bytes'),
    /** Sustained API requests per second per client (signed-in principal, else IP), per controller; 0 disables the limit. */
    OPSC_HTTP_RATE_LIMIT_RPS: bounded('OPSC_HTTP_RATE_LIMIT_RPS', 50, 0, 1_000_000, 'requests per second'),
    /** API requests a client may make at once before the sustained rate applies. */
    OPSC_HTTP_RATE_LIMIT_BURST: bounded('OPSC_HTTP_RATE_LIMIT_BURST', 200, 1, 10_000_000, 'requests'),
    /** The directory `sftp.sync` steps sync from and to (`local`); default `<OPSC_DATA_DIR>/files`. */
    OPSC_FILES_DIR: z
      .string()
      .optional()
      .transform((v) => (v === undefined || v === '' ? undefined : path.resolve(v))),
  })
  .superRefine((cfg, ctx) => {
    if ((cfg.OPSC_TLS_CERT === undefined) !== (cfg.OPSC_TLS_KEY === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['OPSC_TLS_CERT'],
        message: 'OPSC_TLS_CERT and OPSC_TLS_KEY must be set together (or neither, to use the generated CA)',
      })
    }
    if (cfg.OPSC_NOTIFY_BACKOFF_CAP_MS < cfg.OPSC_NOTIFY_BACKOFF_BASE_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['OPSC_NOTIFY_BACKOFF_CAP_MS'],
        message: `OPSC_NOTIFY_BACKOFF_CAP_MS must not be below OPSC_NOTIFY_BACKOFF_BASE_MS (${cfg.OPSC_NOTIFY_BACKOFF_BASE_MS})`,
      })
    }
    if (cfg.OPSC_HTTP_PORT !== 0 && cfg.OPSC_HTTP_PORT === cfg.OPSC_GRPC_PORT) {
      ctx.addIssue({
        code: 'custom',
        path: ['OPSC_GRPC_PORT'],
        message: 'OPSC_HTTP_PORT and OPSC_GRPC_PORT must differ',
      })
    }
  })
export type ControllerConfig = z.output<typeof ControllerConfig>

/** The files root of `sftp.sync` (and other steps that read controller-side files). */
export const filesDir = (config: ControllerConfig): string => config.OPSC_FILES_DIR ?? path.join(config.OPSC_DATA_DIR, 'files')

/** A configuration problem the operator must fix; printed as one line, exit code 2. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

const KEYS = Object.keys(ControllerConfig.shape) as (keyof typeof ControllerConfig.shape)[]

/** Reads `NAME_FILE` variants so secrets can come from files (e.g. container secrets). */
function withFileSecrets(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const out = { ...env }
  for (const key of ['OPSC_MASTER_KEY', 'DATABASE_URL', 'OPSC_ADMIN_PASSWORD'] as const) {
    const file = env[`${key}_FILE`]
    if (file && out[key] === undefined) {
      try {
        out[key] = readFileSync(file, 'utf8').trim()
      } catch (err) {
        throw new ConfigError(`${key}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
      }
    }
  }
  return out
}

/** Optional JSON config file with the same keys as the environment; the environment wins. */
function readConfigFile(file: string | undefined): Record<string, string> {
  if (!file) return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    const why = err instanceof SyntaxError ? 'not valid JSON' : ((err as NodeJS.ErrnoException).code ?? 'unreadable')
    throw new ConfigError(`OPSC_CONFIG_FILE: cannot read ${file} (${why})`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`OPSC_CONFIG_FILE: ${file} must hold a JSON object of settings`)
  }
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(parsed)) {
    if (!(KEYS as string[]).includes(key)) throw new ConfigError(`OPSC_CONFIG_FILE: unknown setting ${key} in ${file}`)
    out[key] = String(value)
  }
  return out
}

/** Validates the whole configuration once; the first problem becomes a ConfigError naming the variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env, file = env.OPSC_CONFIG_FILE): ControllerConfig {
  const merged: Record<string, string | undefined> = { ...readConfigFile(file) }
  for (const [key, value] of Object.entries(withFileSecrets(env))) {
    if (value !== undefined) merged[key] = value
  }
  const picked = Object.fromEntries(KEYS.map((k) => [k, merged[k]]))
  const result = ControllerConfig.safeParse(picked)
  if (result.success) return result.data
  const issue = result.error.issues[0]!
  const name = String(issue.path[0] ?? 'configuration')
  const message = issue.message.startsWith(name) ? issue.message : `${name}: ${issue.message}`
  throw new ConfigError(message)
}
