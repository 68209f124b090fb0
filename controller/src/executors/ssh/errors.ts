/*
 * How reaching or using an SSH target fails: one precise class (what a connection test reports)
 * and one line an operator can act on.
 */

/** What went wrong, precisely enough for a connection test to tell an operator what to fix. */
export type SshFailure =
  | 'dns'
  | 'refused'
  | 'timeout'
  | 'auth_failed'
  | 'host_key_mismatch'
  | 'host_key_unknown'
  | 'tls'
  | 'protocol'
  | 'config'
  | 'credential'
  | 'unreachable'
  | 'lost'
  | 'aborted'

/** The coarse classes the executors and older callers use. */
export type SshErrorKind = 'config' | 'credential' | 'auth' | 'host_key' | 'refused' | 'timeout' | 'unreachable' | 'lost' | 'aborted'

const KIND: Record<SshFailure, SshErrorKind> = {
  dns: 'unreachable',
  refused: 'refused',
  timeout: 'timeout',
  auth_failed: 'auth',
  host_key_mismatch: 'host_key',
  host_key_unknown: 'host_key',
  tls: 'unreachable',
  protocol: 'unreachable',
  config: 'config',
  credential: 'credential',
  unreachable: 'unreachable',
  lost: 'lost',
  aborted: 'aborted',
}

/** A failure to reach or use a target: the target's problem (step `failed`), never ours. */
export class SshError extends Error {
  /** Dropped before the server said anything (sshd's MaxStartups, a reset): worth an immediate retry. */
  readonly transient: boolean
  constructor(
    readonly failure: SshFailure,
    message: string,
    opts?: { cause?: unknown; transient?: boolean },
  ) {
    super(message, opts)
    this.name = new.target.name
    this.transient = opts?.transient ?? false
  }
  get kind(): SshErrorKind {
    return KIND[this.failure]
  }
  /** Worth another attempt later (a network blip), as opposed to a wrong password or key. */
  get retryable(): boolean {
    return this.failure === 'refused' || this.failure === 'timeout' || this.failure === 'unreachable' || this.failure === 'lost' || this.failure === 'dns'
  }
}

export function abortedError(signal: AbortSignal): SshError {
  return new SshError('aborted', `connection attempt ${signal.reason === 'timed_out' ? 'timed out' : 'cancelled'}`)
}
