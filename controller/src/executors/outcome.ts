import type { CredentialType } from '../credentials/credentials.sql.ts'
import type { OpenedCredential } from '../credentials/service.ts'
import { AppError } from '../errors.ts'
import type { ExecutionContext, StepOutcome } from './types.ts'

/*
 * What the controller-side executors (http, webhook, sql, snmp, wait) share: turning their own
 * failures into `failed` outcomes, an abort into `cancelled`/`timed_out`, and checking that a
 * credential has the type the step needs.
 */

/** A failure of the step's work (refused connection, unexpected status, server error): `failed` with this one line. */
export class StepFailure extends Error {
  constructor(
    message: string,
    readonly result?: unknown,
    opts?: { cause?: unknown },
  ) {
    super(message, opts)
    this.name = new.target.name
  }
}

export type CredentialOf<T extends CredentialType> = Extract<OpenedCredential, { type: T }>

/** The credential `ref` (name or id), which must be of `type`. */
export async function useCredential<T extends CredentialType>(x: ExecutionContext, ref: string, type: T): Promise<CredentialOf<T>> {
  const cred = await x.credential(ref)
  if (cred.type !== type) throw new StepFailure(`credential "${ref}" is a ${cred.type} credential, expected ${type}`)
  return cred as CredentialOf<T>
}

// AbortSignal.timeout takes at most a 32-bit millisecond count.
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * `x.signal` joined with the step's own deadline, so that a client never outlives the step even
 * when the engine's abort comes late. Its reason is not an AbortReason: ask `abortOutcome`.
 */
export function stepSignal(x: ExecutionContext): AbortSignal {
  if (!(x.timeoutMs > 0 && x.timeoutMs <= MAX_TIMER_MS)) return x.signal
  return AbortSignal.any([x.signal, AbortSignal.timeout(Math.ceil(x.timeoutMs))])
}

/** The outcome of an aborted step: `cancelled` only when the engine says so, else our own deadline passed. */
export function abortOutcome(x: ExecutionContext): StepOutcome {
  return { status: x.signal.aborted && x.signal.reason !== 'timed_out' ? 'cancelled' : 'timed_out' }
}

/**
 * Runs a step's body with `stepSignal(x)`. An abort wins over whatever error it caused; a
 * StepFailure or a validation error (an unknown credential) becomes `failed`; anything else is
 * our bug and propagates (→ system_error).
 */
export async function runStep(x: ExecutionContext, body: (signal: AbortSignal) => Promise<StepOutcome>): Promise<StepOutcome> {
  const signal = stepSignal(x)
  if (signal.aborted) return abortOutcome(x)
  try {
    return await body(signal)
  } catch (err) {
    if (signal.aborted) return abortOutcome(x)
    if (err instanceof StepFailure) return { status: 'failed', error: err.message, ...(err.result !== undefined ? { result: err.result } : {}) }
    if (err instanceof AppError && (err.code === 'VALIDATION' || err.code === 'NOT_FOUND')) return { status: 'failed', error: err.message }
    throw err
  }
}

/** Resolves when the signal aborts (never rejects): for racing against clients that take no signal. */
export function aborted(signal: AbortSignal): { promise: Promise<void>; dispose(): void } {
  let dispose = () => {}
  const promise = new Promise<void>((resolve) => {
    if (signal.aborted) return resolve()
    const onAbort = () => resolve()
    signal.addEventListener('abort', onAbort, { once: true })
    dispose = () => signal.removeEventListener('abort', onAbort)
  })
  return { promise, dispose }
}

/** Waits `ms`, or less when the signal aborts (resolves either way; check `signal.aborted`). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}

/** The first line of an error message, without a stack, at most 500 characters. */
export function oneLine(message: string): string {
  const line = message.split(/\r?\n/, 1)[0]!.trim()
  return line.length > 500 ? `${line.slice(0, 497)}…` : line
}

/** Node's codes for a certificate that failed verification (a retry does not fix these). */
export const TLS_VERIFY_CODES: ReadonlySet<string> = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
])

/** The innermost error that has a code (clients wrap socket and TLS errors). */
function rootCause(err: unknown): { code?: string; message: string } {
  let current: unknown = err
  let best: { code?: string; message: string } = { message: err instanceof Error ? err.message : String(err) }
  for (let depth = 0; current instanceof Error && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === 'string') best = { code, message: current.message }
    current = current.cause
  }
  return best
}

/**
 * One line for a connection that failed below the protocol (refused, DNS, TLS, reset), naming
 * `where` (host:port); `retryable` is false for certificate problems, which a retry does not fix.
 */
export function connectionError(err: unknown, where: string, hostname: string): { message: string; retryable: boolean } {
  const { code, message } = rootCause(err)
  if (code !== undefined && TLS_VERIFY_CODES.has(code)) return { message: `certificate verify failed: ${oneLine(message)}`, retryable: false }
  switch (code) {
    case 'ECONNREFUSED':
      return { message: `connection refused by ${where}`, retryable: true }
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { message: `could not resolve host ${hostname}`, retryable: true }
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
      return { message: `connection to ${where} closed unexpectedly`, retryable: true }
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return { message: `timed out connecting to ${where}`, retryable: true }
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return { message: `${where} is unreachable`, retryable: true }
    default:
      if (code?.startsWith('ERR_SSL_') || code?.startsWith('ERR_TLS_')) return { message: `TLS error with ${where}: ${oneLine(message)}`, retryable: false }
      return { message: `connection to ${where} failed: ${oneLine(message)}`, retryable: true }
  }
}
