import { TLS_VERIFY_CODES } from '../outcome.ts'

/*
 * Every way a WinRM conversation fails, as one kind and one line an operator can act on. The
 * password never appears in a message.
 */

export type WinrmErrorKind = 'dns' | 'refused' | 'timeout' | 'auth_failed' | 'tls' | 'protocol' | 'config' | 'credential' | 'lost' | 'aborted'

export class WinrmError extends Error {
  constructor(
    readonly kind: WinrmErrorKind,
    message: string,
    opts?: { cause?: unknown },
  ) {
    super(message, opts)
    this.name = new.target.name
  }

  /** Worth another attempt later (a network blip), as opposed to a wrong password or certificate. */
  get retryable(): boolean {
    return this.kind === 'dns' || this.kind === 'refused' || this.kind === 'timeout' || this.kind === 'lost'
  }
}

/** A WS-Management fault the server returned (a SOAP Fault with its WSManFault code, when any). */
export class WsmanFault extends WinrmError {
  constructor(
    readonly code: string | undefined,
    readonly subcode: string | undefined,
    readonly reason: string,
    readonly wsmanCode: number | undefined,
  ) {
    super('protocol', `WinRM fault${wsmanCode !== undefined ? ` ${wsmanCode}` : ''}${subcode ? ` (${subcode.replace(/^.*:/, '')})` : ''}: ${reason}`)
  }
}

/** A socket or TLS error while talking to `where` (host:port), classified. */
export function networkError(err: unknown, where: string, host: string): WinrmError {
  if (err instanceof WinrmError) return err
  const e = err as { code?: unknown; message?: unknown }
  const code = typeof e?.code === 'string' ? e.code : undefined
  const detail = typeof e?.message === 'string' ? e.message.split('\n', 1)[0]! : String(err)
  const make = (kind: WinrmErrorKind, message: string) => new WinrmError(kind, message, { cause: err })
  if (code && (TLS_VERIFY_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_'))) {
    return make('tls', `TLS certificate of ${where} not accepted: ${detail} (set the target's tls_ca to the CA that issued it)`)
  }
  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return make('dns', `could not resolve host ${host}`)
    case 'ECONNREFUSED':
      return make('refused', `connection refused by ${where} (is the WinRM listener enabled on that port?)`)
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return make('refused', `${where} is unreachable`)
    case 'ETIMEDOUT':
      return make('timeout', `timed out connecting to ${where}`)
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ERR_STREAM_PREMATURE_CLOSE':
      return make('lost', `connection to ${where} closed unexpectedly`)
    case 'ABORT_ERR':
      return make('aborted', `request to ${where} aborted`)
    default:
      return make('lost', `connection to ${where} failed: ${detail}`)
  }
}
