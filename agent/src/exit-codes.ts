// Exit codes are an interface: the systemd unit stops restarting on 2 and 3 (RestartPreventExitStatus=2 3),
// WinSW restarts on anything non-zero. Keep this table, `--help` and README.md's Agents section in step.
export const EXIT = {
  /** Stopped on request (SIGTERM/SIGINT) after journalling in-flight work; or the command did what was asked. */
  ok: 0,
  /** Unexpected failure: worth a restart. An unreachable controller is not one (run retries it forever). */
  failure: 1,
  /** Configuration error: not enrolled, unreadable or damaged state, bad flags. A restart will not help. */
  config: 2,
  /** The controller refused this agent's identity (revoked or deleted). Enrol again. */
  refused: 3,
  /** status only: enrolled, but no agent process is running. */
  notRunning: 4,
  /** status only: the agent runs but has no session with the controller (it keeps retrying). */
  disconnected: 5,
} as const
export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

export const EXIT_CODES_HELP = `
Exit codes (for service supervisors and scripts):
  0  stopped on request (SIGTERM/SIGINT) after in-flight work was journalled; or success
  1  unexpected failure: restart it (an unreachable controller is not an exit: run keeps retrying)
  2  configuration error: not enrolled, unreadable or damaged state, bad flags: do not restart
  3  the controller refused this agent's identity (revoked or deleted): enrol it again
  4  status: enrolled, but the agent is not running
  5  status: the agent is running but not connected to the controller`

/** A mistake in how the command was called (or what it was told): exit 2. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** A refusal the operator can act on, exit 1 (e.g. unenroll while the agent runs). */
export class RefusalError extends Error {
  override name = 'RefusalError'
}

/** Errors whose message is meant for the operator (no stack trace). */
export const OPERATOR_ERRORS = ['EnrollError', 'PinError', 'StateError', 'JournalError', 'SpoolError', 'UsageError', 'RefusalError']
// Permission and file-system errors on the state dir are configuration, not crashes.
const STATE_ERRNOS = ['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EISDIR']

export function isOperatorError(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException
  return OPERATOR_ERRORS.includes(e?.name) || STATE_ERRNOS.includes(e?.code ?? '')
}

export function exitCodeFor(err: unknown): ExitCode {
  const e = err as NodeJS.ErrnoException
  if (['StateError', 'JournalError', 'SpoolError', 'UsageError'].includes(e?.name) || STATE_ERRNOS.includes(e?.code ?? '')) return EXIT.config
  return EXIT.failure
}
