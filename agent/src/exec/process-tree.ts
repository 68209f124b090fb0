import { execFile } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

// Every run is a process group led by the spawned process (detached: true, or the pty's
// session), so signals go to -pid and reach the grandchildren too. Processes that call
// setsid() themselves leave the group and are out of reach; catching those needs cgroups.
// Windows has no groups: taskkill /T walks the parent links instead (a Job Object would be
// tighter; this path is not tested here).

const POLL_MS = 50
/** After SIGKILL, how long to wait for the group to disappear before giving up on it. */
const KILL_SETTLE_MS = 2000

const isWindows = process.platform === 'win32'

/** Sends `signal` to the whole group led by `pid`; a group that is already gone is fine. */
export function signalGroup(pid: number, signal: 'SIGTERM' | 'SIGKILL'): void {
  if (isWindows) {
    const args = signal === 'SIGKILL' ? ['/T', '/F', '/PID', String(pid)] : ['/T', '/PID', String(pid)]
    execFile('taskkill', args, { windowsHide: true }, () => {})
    return
  }
  try {
    process.kill(-pid, signal)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
  }
}

/**
 * Whether any process of the group still runs. On Linux /proc is read so that zombies do not
 * count: an init that does not reap orphans would otherwise keep a dead group "alive" forever.
 */
export function groupAlive(pgid: number): boolean {
  if (process.platform === 'linux') return linuxGroupHasLiveMember(pgid)
  try {
    // Windows has no group to ask about; the leader stands in for its tree there.
    process.kill(isWindows ? pgid : -pgid, 0)
    return true
  } catch {
    return false
  }
}

function linuxGroupHasLiveMember(pgid: number): boolean {
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return false
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8')
    } catch {
      continue // exited while we looked
    }
    // "pid (comm) state ppid pgrp …"; comm may hold spaces and parentheses, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (fields[2] === String(pgid) && fields[0] !== 'Z' && fields[0] !== 'X') return true
  }
  return false
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Ends a process group politely, then by force: SIGTERM now, SIGKILL once `graceMs` passed
 * and something still runs. `terminate()` may be called any number of times; `done` settles
 * when the group is gone (or did not go within a short wait after SIGKILL).
 */
export class GroupTerminator {
  private started?: Promise<void>

  constructor(
    private readonly pid: number,
    private readonly graceMs: number,
  ) {}

  terminate(): Promise<void> {
    this.started ??= this.run()
    return this.started
  }

  private async run(): Promise<void> {
    if (!groupAlive(this.pid)) return
    signalGroup(this.pid, 'SIGTERM')
    if (await this.waitGone(this.graceMs)) return
    signalGroup(this.pid, 'SIGKILL')
    await this.waitGone(KILL_SETTLE_MS)
  }

  private async waitGone(ms: number): Promise<boolean> {
    const until = Date.now() + ms
    while (Date.now() < until) {
      if (!groupAlive(this.pid)) return true
      await delay(Math.min(POLL_MS, Math.max(0, until - Date.now())))
    }
    return !groupAlive(this.pid)
  }
}
