import type { RunStatus } from './runs.sql.ts'

/*
 * Decides what a run does next from the state of its step runs: which may start (order, run_if,
 * fan-out limit, failure threshold), which are skipped, which get another attempt, and whether
 * the run is over. Pure, so every rule is tested without a database; the coordinator applies it.
 */

export interface PlannedStep {
  index: number
  runIf: 'success' | 'failure' | 'always'
  continueOnError: boolean
  retries: number
  retryBackoffSec: number
}

export interface Attempt {
  id: string
  stepIndex: number
  /** null: the lane of a run without targets. */
  targetId: string | null
  attempt: number
  status: RunStatus
  ready: boolean
  finishedAt: Date | null
}

export interface RunPolicy {
  strategy: 'per_target' | 'step_by_step'
  maxParallel: number
  failureCount?: number | undefined
  failurePercent?: number | undefined
  backoffMultiplier: number
  /** Stop: queued work ends with this status (cancel → cancelled, run deadline → timed_out). */
  stopping?: 'cancelled' | 'timed_out' | undefined
  /** Targets the run may not start on yet (another run holds their target lock). */
  blocked?: ReadonlySet<string> | undefined
}

export interface Decision {
  ready: string[]
  /** Queued step runs that end without running, with the status and the reason. */
  end: { id: string; status: RunStatus; reason: string }[]
  retry: { stepIndex: number; targetId: string | null; attempt: number; availableAt: Date }[]
  /** Set when the run changes status. */
  runStatus?: RunStatus
}

export const FAILURE_STATUSES: readonly RunStatus[] = ['failed', 'timed_out', 'cancelled', 'agent_lost', 'interrupted', 'system_error']
const FINAL: readonly RunStatus[] = ['succeeded', 'skipped', ...FAILURE_STATUSES]
export const isFinal = (s: RunStatus) => FINAL.includes(s)

interface Lane {
  key: string
  targetId: string | null
  position: number
  /** Latest attempt per step index (ascending). */
  steps: Map<number, Attempt>
}

export function planRun(steps: PlannedStep[], attempts: Attempt[], positions: Map<string, number>, policy: RunPolicy, now: Date, currentStatus: RunStatus): Decision {
  const decision: Decision = { ready: [], end: [], retry: [] }
  const stepByIndex = new Map(steps.map((s) => [s.index, s]))
  const lanes = buildLanes(attempts, positions)
  // A local view of statuses as this decision changes them.
  const status = new Map(attempts.map((a) => [a.id, a.status]))
  const ready = new Set(attempts.filter((a) => a.ready).map((a) => a.id))
  const retrying = new Set<string>() // lane:step keys with a new attempt coming

  const end = (a: Attempt, s: RunStatus, reason: string) => {
    decision.end.push({ id: a.id, status: s, reason })
    status.set(a.id, s)
  }

  // Failed attempts with retries left get another attempt (unless the run is stopping).
  for (const lane of lanes) {
    for (const a of lane.steps.values()) {
      const step = stepByIndex.get(a.stepIndex)
      if (!step || policy.stopping || !FAILURE_STATUSES.includes(a.status) || a.status === 'cancelled') continue
      if (a.attempt > step.retries) continue
      const delayMs = step.retryBackoffSec * 1000 * Math.pow(policy.backoffMultiplier, a.attempt - 1)
      const from = a.finishedAt ?? now
      decision.retry.push({ stepIndex: a.stepIndex, targetId: a.targetId, attempt: a.attempt + 1, availableAt: new Date(from.getTime() + delayMs) })
      retrying.add(`${lane.key}:${a.stepIndex}`)
    }
  }

  const stepDone = (lane: Lane, a: Attempt) => isFinal(status.get(a.id)!) && !retrying.has(`${lane.key}:${a.stepIndex}`)
  const laneFailedBefore = (lane: Lane, index: number) => {
    for (const a of lane.steps.values()) {
      if (a.stepIndex >= index) break
      const s = status.get(a.id)!
      if (stepDone(lane, a) && FAILURE_STATUSES.includes(s) && !stepByIndex.get(a.stepIndex)?.continueOnError) return true
    }
    return false
  }
  const laneFailed = (lane: Lane) => laneFailedBefore(lane, Number.POSITIVE_INFINITY)
  const laneDone = (lane: Lane) => [...lane.steps.values()].every((a) => stepDone(lane, a))
  const laneStarted = (lane: Lane) => [...lane.steps.values()].some((a) => status.get(a.id) !== 'queued' || ready.has(a.id) || retrying.has(`${lane.key}:${a.stepIndex}`))
  const waiting = (a: Attempt) => status.get(a.id) === 'queued' && !ready.has(a.id)
  const isBlocked = (lane: Lane) => lane.targetId !== null && policy.blocked?.has(lane.targetId) === true

  /** Starts the lane's next step, skipping those whose run_if says no; false when nothing is left to start. */
  const advanceLane = (lane: Lane): void => {
    for (const a of lane.steps.values()) {
      if (stepDone(lane, a)) continue
      if (!waiting(a)) return // running, ready, or a retry is coming
      const step = stepByIndex.get(a.stepIndex)!
      const failedBefore = laneFailedBefore(lane, a.stepIndex)
      const run = step.runIf === 'always' || (step.runIf === 'success' ? !failedBefore : failedBefore)
      if (run) {
        decision.ready.push(a.id)
        ready.add(a.id)
        return
      }
      end(a, 'skipped', step.runIf === 'success' ? 'an earlier step failed' : 'no earlier step failed')
    }
  }

  if (policy.stopping) {
    for (const a of attempts) if (status.get(a.id) === 'queued') end(a, policy.stopping, policy.stopping === 'cancelled' ? 'the run was cancelled' : 'the run timed out')
  } else {
    const realLanes = lanes.filter((l) => l.targetId !== null)
    // Counted once: below, steps only start or end `skipped`, so no lane fails meanwhile (once per lane
    // made a 10,000-target fan-out quadratic: seconds of planning before its first step).
    let failed: number | undefined
    const thresholdReached = () => {
      failed ??= realLanes.filter(laneFailed).length
      if (policy.failureCount !== undefined && failed >= policy.failureCount) return true
      if (policy.failurePercent !== undefined && realLanes.length > 0 && (failed * 100) / realLanes.length >= policy.failurePercent) return true
      return false
    }
    if (policy.strategy === 'per_target') {
      let active = 0
      for (const lane of lanes) {
        if (laneStarted(lane) && !laneDone(lane)) {
          advanceLane(lane)
          if (!laneDone(lane)) active++
        }
      }
      for (const lane of lanes) {
        if (laneStarted(lane)) continue
        if (thresholdReached()) {
          for (const a of lane.steps.values()) if (waiting(a)) end(a, 'skipped', 'the failure threshold was reached')
          continue
        }
        if (active >= policy.maxParallel) break
        if (isBlocked(lane)) continue
        advanceLane(lane)
        if (!laneDone(lane)) active++
      }
    } else {
      for (const step of steps) {
        const here = lanes.map((l) => ({ lane: l, a: l.steps.get(step.index) })).filter((x): x is { lane: Lane; a: Attempt } => x.a !== undefined)
        if (here.every(({ lane, a }) => stepDone(lane, a))) continue
        if (thresholdReached()) {
          for (const lane of lanes) for (const a of lane.steps.values()) if (waiting(a)) end(a, 'skipped', 'the failure threshold was reached')
          break
        }
        let inFlight = here.filter(({ lane, a }) => !stepDone(lane, a) && !waiting(a)).length
        for (const { lane, a } of here) {
          if (!waiting(a)) continue
          const failedBefore = laneFailedBefore(lane, step.index)
          const run = step.runIf === 'always' || (step.runIf === 'success' ? !failedBefore : failedBefore)
          if (!run) {
            end(a, 'skipped', step.runIf === 'success' ? 'an earlier step failed' : 'no earlier step failed')
            continue
          }
          if (inFlight >= policy.maxParallel || isBlocked(lane)) continue
          decision.ready.push(a.id)
          ready.add(a.id)
          inFlight++
        }
        // The next step waits until this one is over on every target.
        if (!here.every(({ lane, a }) => stepDone(lane, a))) break
      }
    }
  }

  const allDone = lanes.every(laneDone)
  if (allDone) {
    decision.runStatus = finalStatus(lanes, status, stepByIndex, policy)
  } else if (currentStatus === 'queued' && (decision.ready.length > 0 || attempts.some((a) => a.status === 'running'))) {
    decision.runStatus = 'running'
  }
  if (decision.runStatus === currentStatus) delete decision.runStatus
  return decision
}

function finalStatus(lanes: Lane[], status: Map<string, RunStatus>, steps: Map<number, PlannedStep>, policy: RunPolicy): RunStatus {
  if (policy.stopping) return policy.stopping
  const failures: RunStatus[] = []
  for (const lane of lanes) {
    for (const a of lane.steps.values()) {
      const s = status.get(a.id)!
      if (FAILURE_STATUSES.includes(s) && !steps.get(a.stepIndex)?.continueOnError) failures.push(s)
    }
  }
  if (failures.length === 0) return 'succeeded'
  if (failures.every((s) => s === 'system_error')) return 'system_error'
  return 'failed'
}

function buildLanes(attempts: Attempt[], positions: Map<string, number>): Lane[] {
  const lanes = new Map<string, Lane>()
  for (const a of [...attempts].sort((x, y) => x.stepIndex - y.stepIndex || x.attempt - y.attempt)) {
    const key = a.targetId ?? ''
    let lane = lanes.get(key)
    if (!lane) lanes.set(key, (lane = { key, targetId: a.targetId, position: a.targetId === null ? -1 : (positions.get(a.targetId) ?? 0), steps: new Map() }))
    lane.steps.set(a.stepIndex, a) // later attempts replace earlier ones
  }
  return [...lanes.values()].sort((x, y) => x.position - y.position)
}

/** A lane's outcome for one target: what the run view and retry look at. */
export function laneStatus(latest: RunStatus[]): RunStatus {
  if (latest.some((s) => s === 'running')) return 'running'
  if (latest.some((s) => s === 'queued')) return 'queued'
  const failure = latest.find((s) => FAILURE_STATUSES.includes(s))
  if (failure) return failure
  if (latest.every((s) => s === 'skipped')) return 'skipped'
  return 'succeeded'
}
