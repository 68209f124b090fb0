import { pino, type Logger, type LevelWithSilent } from 'pino'

export type { Logger }

/** Paths pino censors wherever they appear in a log record; secrets never reach the log. */
export const REDACT_PATHS = [
  'authorization',
  'cookie',
  '*.authorization',
  '*.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  'password',
  '*.password',
  'passphrase',
  '*.passphrase',
  'privateKey',
  '*.privateKey',
  'token',
  '*.token',
  '*.accessToken',
  '*.refreshToken',
  '*.access_token',
  '*.refresh_token',
  'secret',
  '*.secret',
  'masterKey',
  '*.masterKey',
  'databaseUrl',
  '*.databaseUrl',
]

export interface LoggerOptions {
  level: LevelWithSilent
  /** Human-readable output (used when stdout is a terminal). */
  pretty?: boolean
  destination?: NodeJS.WritableStream
}

export function createLogger(opts: LoggerOptions): Logger {
  const base = {
    level: opts.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  }
  if (opts.pretty) {
    return pino({
      ...base,
      formatters: {},
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
    })
  }
  return opts.destination ? pino(base, opts.destination as pino.DestinationStream) : pino(base)
}

/** Hides the password in a connection URL before it is logged or shown. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return '[unparseable url]'
  }
}
