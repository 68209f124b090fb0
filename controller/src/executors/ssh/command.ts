import type { ExecInput, Shell } from '../exec-input.ts'
import { encodedCommandLine, psScript, type PsExe } from '../powershell.ts'

/*
 * The command lines the SSH executor sends. Every value from the step (command, env values, cwd,
 * user) reaches the remote shell inside single quotes or as a positional parameter, never as
 * shell syntax.
 *
 * Process group: sshd starts each exec channel's command in a new session (setsid), so the
 * command's whole tree shares one process group whose id is the pid of the first process. The
 * wrapper `exec`s into /bin/sh (the login shell is replaced, not forked) and prints `$$`, which is
 * that pid, on stderr before anything else runs; the executor reads it and strips the line from
 * the output. Cancel then kills the group from a second channel: `kill -- -<pgid>`.
 */

export const POSIX_SHELLS: readonly Shell[] = ['sh', 'bash', 'zsh']

/** POSIX single-quoting: safe for any byte string except NUL. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

export const markerPrefix = (nonce: string) => `OPSC-PGID-${nonce}=`

/** The script that sets up env and cwd, then replaces itself with `$1 -c "$2"`. */
function jobScript(input: ExecInput): string {
  const lines = Object.entries(input.env).map(([name, value]) => `export ${name}=${shQuote(value)}`)
  if (input.cwd !== undefined) lines.push(`cd -- ${shQuote(input.cwd)} || exit 1`)
  lines.push(`command -v "$1" >/dev/null 2>&1 || { printf 'opsconductor: shell %s is not installed on this host\\n' "$1" >&2; exit 127; }`)
  lines.push('exec "$1" -c "$2"')
  return lines.join('\n')
}

/** The exec request for a POSIX target: wrapper, marker, then the user's command in `shell`. */
export function posixCommand(input: ExecInput, shell: Shell, nonce: string): string {
  const marker = `printf '${markerPrefix(nonce)}%s\\n' "$$" >&2`
  const job = jobScript(input)
  // run_as: sudo resets the environment, so env and cwd are applied by a shell sudo starts.
  const body = input.run_as !== undefined ? `exec sudo -n -u ${shQuote(input.run_as)} -- /bin/sh -c ${shQuote(job)} opsc-job "$1" "$2"` : job
  return `exec /bin/sh -c ${shQuote(`${marker}\n${body}`)} opsc-job ${shQuote(shell)} ${shQuote(input.command)}`
}

/**
 * TERM to the group, up to 2 s for it to go, then KILL. Under run_as the group's processes belong
 * to another user, so the signals are also sent through `sudo -n -u <user>`.
 */
export function killCommand(pgid: number, runAs?: string): string {
  const sudo = runAs !== undefined ? `; sudo -n -u ${shQuote(runAs)} -- kill -s "$1" -- "-$g" 2>/dev/null` : ''
  const script = [
    'g=$1',
    `sig() { kill -s "$1" -- "-$g" 2>/dev/null || kill -s "$1" "$g" 2>/dev/null${sudo}; }`,
    // Killed members linger as zombies until init reaps them; only live ones (per ps) count.
    'if ps -A -o pgid= -o stat= >/dev/null 2>&1; then',
    `  alive() { ps -A -o pgid= -o stat= | awk -v g="$g" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'; }`,
    'else',
    '  alive() { kill -s 0 -- "-$g" 2>/dev/null; }',
    'fi',
    'sig TERM',
    'i=0',
    'while [ $i -lt 20 ] && alive; do sleep 0.1 2>/dev/null || sleep 1; i=$((i+1)); done',
    'sig KILL',
    'exit 0',
  ].join('\n')
  return `exec /bin/sh -c ${shQuote(script)} opsc-kill ${pgid}`
}

/** PowerShell's -EncodedCommand: base64 of the UTF-16LE script (no quoting to get wrong). */
export function powershellCommand(input: ExecInput, exe: PsExe): string {
  return encodedCommandLine(psScript(input), exe)
}

/**
 * Finds the marker line at the start of one stream (bytes before it, e.g. a noisy rc file, pass
 * through) and strips it. After `limit` bytes without a marker, it gives up and passes everything.
 */
export class MarkerScanner {
  private buffered: Buffer[] = []
  private size = 0
  private done = false
  pgid: number | undefined

  constructor(
    private readonly nonce: string,
    private readonly limit = 64 * 1024,
  ) {}

  get settled(): boolean {
    return this.done
  }

  /** Returns the bytes to pass on (possibly empty). */
  feed(chunk: Buffer): Buffer {
    if (this.done) return chunk
    this.buffered.push(chunk)
    this.size += chunk.length
    const all = Buffer.concat(this.buffered)
    const text = all.toString('latin1')
    const re = new RegExp(`${markerPrefix(this.nonce)}(\\d+)\\r?\\n`)
    const m = re.exec(text)
    if (m) {
      this.done = true
      this.buffered = []
      this.pgid = Number(m[1])
      return Buffer.concat([all.subarray(0, m.index), all.subarray(m.index + m[0].length)])
    }
    if (this.size > this.limit) return this.flush()
    return Buffer.alloc(0)
  }

  /** Ends the scan; returns what was held back. */
  flush(): Buffer {
    this.done = true
    const rest = Buffer.concat(this.buffered)
    this.buffered = []
    return rest
  }
}
