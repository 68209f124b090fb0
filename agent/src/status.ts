// `opsconductor-agent status`: what the state dir says about this host's agent, read-only and offline.
import path from 'node:path'
import { VERSION } from '../../proto/src/product-version.ts'
import { PROTOCOL_VERSION } from '../../proto/src/version.ts'
import { EXIT, isOperatorError, type ExitCode } from './exit-codes.ts'
import { inspectSpool, type SpoolUsage } from './spool.ts'
import { isEnrolled, readIdentity, STATE_PATHS } from './state.ts'
import { pidAlive, readStatusFile, STATUS_STALE_MS } from './status-file.ts'

export type AgentState = 'connected' | 'disconnected' | 'not_running' | 'refused' | 'not_enrolled' | 'state_error'

export interface StatusReport {
  status: AgentState
  exit_code: ExitCode
  state_dir: string
  enrolled: boolean
  agent_id: string | null
  controllers: string[]
  ca_fingerprint: string | null
  enrolled_at: string | null
  running: boolean
  pid: number | null
  connected: boolean
  /** The controller of the live session, or the one last tried. */
  controller: string | null
  /** When the agent last connected or lost its connection. */
  since: string | null
  last_error: string | null
  /** When the agent last wrote its status; a running agent rewrites it every 10 s. */
  updated_at: string | null
  /** A live pid whose status is older than 30 s: the agent is hung, or the pid now belongs to another process. */
  stale: boolean
  version: string
  protocol: string
  /** The version of the running (or last run) agent, which may predate an upgrade. */
  running_version: string | null
  spool: SpoolUsage | null
  /** Why the state could not be read (status `state_error`). */
  error?: string
}

export function agentStatus(stateDir: string, now = Date.now()): StatusReport {
  const base: StatusReport = {
    status: 'not_enrolled', exit_code: EXIT.config, state_dir: stateDir, enrolled: false, agent_id: null, controllers: [], ca_fingerprint: null, enrolled_at: null,
    running: false, pid: null, connected: false, controller: null, since: null, last_error: null, updated_at: null, stale: false,
    version: VERSION, protocol: `${PROTOCOL_VERSION.major}.${PROTOCOL_VERSION.minor}`, running_version: null, spool: null,
  }
  try {
    if (!isEnrolled(stateDir)) return base
    const { identity, caFingerprint } = readIdentity(stateDir)
    const report: StatusReport = { ...base, enrolled: true, agent_id: identity.agent_id, controllers: identity.controllers, ca_fingerprint: caFingerprint, enrolled_at: identity.enrolled_at }
    const published = readStatusFile(stateDir)
    const running = published !== undefined && published.state !== 'stopped' && published.state !== 'refused' && pidAlive(published.pid)
    if (published) {
      Object.assign(report, { pid: published.pid, controller: published.controller, since: published.since, last_error: published.last_error, updated_at: published.updated_at, running_version: published.version })
    }
    report.running = running
    report.stale = running && now - Date.parse(published!.updated_at) > STATUS_STALE_MS
    report.connected = running && !report.stale && published!.connected
    // A running agent's own count is exact; otherwise the files are read (never opened for writing).
    report.spool = running ? published!.spool : inspectSpool(path.join(stateDir, STATE_PATHS.spool))
    const [status, code]: [AgentState, ExitCode] = report.connected
      ? ['connected', EXIT.ok]
      : running
        ? ['disconnected', EXIT.disconnected]
        : published?.state === 'refused'
          ? ['refused', EXIT.refused]
          : ['not_running', EXIT.notRunning]
    return { ...report, status, exit_code: code }
  } catch (err) {
    if (!isOperatorError(err)) throw err
    return { ...base, enrolled: isEnrolled(stateDir), status: 'state_error', error: (err as Error).message }
  }
}

function size(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB']
  let n = bytes
  let i = 0
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024
    i++
  }
  return i === 0 ? `${bytes} bytes` : `${n.toFixed(1)} ${units[i]}`
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`

/** Aligned `key  value` lines for people; `--json` prints the report itself. */
export function formatStatus(r: StatusReport): string {
  const lines: [string, string][] = []
  const verdict: Record<AgentState, string> = {
    connected: `connected to ${r.controller} since ${r.since}`,
    disconnected: `running, not connected${r.controller ? ` (retrying ${r.controller})` : ''}${r.since ? ` since ${r.since}` : ''}`,
    not_running: 'not running',
    refused: `the controller refused this agent's identity${r.updated_at ? ` at ${r.updated_at}` : ''}: enrol it again`,
    not_enrolled: 'not enrolled: run `opsconductor-agent enroll` first',
    state_error: `cannot read the agent's state: ${r.error}`,
  }
  lines.push(['status', verdict[r.status]])
  if (r.enrolled && r.agent_id) {
    lines.push(['agent id', r.agent_id], ['controller', r.controllers.join(', ')], ['ca fingerprint', r.ca_fingerprint ?? '-'], ['enrolled at', r.enrolled_at ?? '-'])
    const proc = r.running ? `running, pid ${r.pid}` : r.pid ? `not running (last pid ${r.pid}, last update ${r.updated_at})` : 'not running (never started)'
    lines.push(['process', r.stale ? `${proc}; no status update since ${r.updated_at}: hung, or the pid is another process now` : proc])
    if (r.last_error) lines.push(['last error', r.last_error])
  }
  const running = r.running_version && r.running_version !== r.version ? `; the agent that ran: ${r.running_version}` : ''
  lines.push(['version', `${r.version} (protocol ${r.protocol})${running}`])
  if (r.spool) lines.push(['spool', `${size(r.spool.bytes)} in ${plural(r.spool.segments, 'segment', 'segments')}, ${plural(r.spool.entries, 'entry', 'entries')} not yet acknowledged`])
  lines.push(['state dir', r.state_dir])
  const width = Math.max(...lines.map(([k]) => k.length)) + 2
  return lines.map(([k, v]) => k.padEnd(width) + v).join('\n') + '\n'
}
