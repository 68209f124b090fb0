// `opsconductor-agent unenroll`: forget this host's enrollment. The protocol has no call for an agent to
// deregister itself, so the controller keeps its record until an admin revokes or deletes it.
import path from 'node:path'
import { RefusalError } from './exit-codes.ts'
import { inspectSpool, type SpoolUsage } from './spool.ts'
import { isEnrolled, readIdentity, removeEnrollment, STATE_PATHS, StateError } from './state.ts'
import { pidAlive, readStatusFile, STATUS_STALE_MS } from './status-file.ts'

export interface UnenrollPlan {
  /** null when agent.json is damaged: it is removed all the same. */
  agentId: string | null
  /** Output and results the controller never acknowledged: lost with the spool. */
  spool: SpoolUsage
}

/** Refuses while an agent process uses the state dir: removing its files under it would lose work silently. */
function assertNotRunning(stateDir: string, now = Date.now()): void {
  const published = readStatusFile(stateDir)
  if (!published || published.state === 'stopped' || published.state === 'refused' || !pidAlive(published.pid)) return
  const stale = now - Date.parse(published.updated_at) > STATUS_STALE_MS
  throw new RefusalError(
    stale
      ? `process ${published.pid} recorded in ${path.join(stateDir, STATE_PATHS.status)} is alive but has not updated it since ${published.updated_at}; stop the agent, or delete that file if the process is not the agent, then unenroll again`
      : `the agent is running (pid ${published.pid}); stop the agent service first, then unenroll again`,
  )
}

/** Checks that unenroll may go ahead and says what it would remove. */
export function planUnenroll(stateDir: string): UnenrollPlan {
  if (!isEnrolled(stateDir)) throw new StateError(`${stateDir} holds no enrolled agent; nothing to unenroll`)
  assertNotRunning(stateDir)
  let agentId: string | null = null
  try {
    agentId = readIdentity(stateDir).identity.agent_id
  } catch (err) {
    if (!(err instanceof StateError)) throw err
  }
  let spool: SpoolUsage = { bytes: 0, segments: 0, entries: 0 }
  try {
    spool = inspectSpool(path.join(stateDir, STATE_PATHS.spool))
  } catch {
    // A damaged spool is removed all the same; there is nothing to count.
  }
  return { agentId, spool }
}

/** Removes the identity, journal, spool and status file (not the directory); returns the names removed. */
export function unenroll(stateDir: string): string[] {
  assertNotRunning(stateDir) // again: the agent may have started while the operator was asked
  return removeEnrollment(stateDir)
}

/** What an admin still has to do on the controller. */
export function revokeHint(agentId: string | null): string {
  if (!agentId) return 'The controller still lists this agent: an admin revokes or deletes it on the Agents page.\n'
  return (
    `The controller still lists agent ${agentId}: an admin revokes it on the Agents page or with\n` +
    `  POST /api/v1/agents/${agentId}/revoke   (DELETE /api/v1/agents/${agentId} removes it and unbinds its target)\n`
  )
}
