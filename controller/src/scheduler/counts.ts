/*
 * What one pass of the scheduler decided, summed over the batches of a tick.
 */

export interface FireCounts {
  fired: number
  missed: number
  skipped: number
  queued: number
  /** Occurrences deferred to the end of a maintenance window. */
  deferred: number
  failed: number
  /** Occurrences already recorded (by a previous leader, or a concurrent tick): nothing launched. */
  duplicate: number
  /** Largest lateness of an occurrence launched in this pass. */
  maxLagMs: number
  /** Runs launched but not started with their launch (see ScheduledLaunches.write): the caller advances them after commit. */
  toStart: string[]
  /** Schedules that queued an occurrence in this pass (the tick keeps a set of them). */
  queuedSchedules: string[]
  /** Schedules whose queue launchQueued emptied. */
  drainedSchedules: string[]
}

export const emptyCounts = (): FireCounts => ({ fired: 0, missed: 0, skipped: 0, queued: 0, deferred: 0, failed: 0, duplicate: 0, maxLagMs: 0, toStart: [], queuedSchedules: [], drainedSchedules: [] })

export function addCounts(into: FireCounts, from: FireCounts): void {
  for (const k of ['fired', 'missed', 'skipped', 'queued', 'deferred', 'failed', 'duplicate'] as const) into[k] += from[k]
  into.maxLagMs = Math.max(into.maxLagMs, from.maxLagMs)
  into.toStart.push(...from.toStart)
  into.queuedSchedules.push(...from.queuedSchedules)
  into.drainedSchedules.push(...from.drainedSchedules)
}

export interface FireOptions {
  /** The controller deciding (recorded on every fire row). */
  node: string
  /** How late a `skip`-policy occurrence may be and still count as on time. */
  graceMs: number
}
