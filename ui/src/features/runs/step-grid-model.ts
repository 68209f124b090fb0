import type { StepStatusEvent } from '../../../../controller/src/runs/events.ts'
import type { RunStatus } from './status.ts'

/*
 * The step × target grid of a run, fed by the live `step` events (a replay from the start of the
 * stream rebuilds it): columns are steps in their order, rows are targets, each cell the latest
 * attempt of that step on that target. No Solid, no DOM: node:test covers it.
 */

export interface StepCell {
  stepRunId: string
  stepId: string
  /** null: a step that runs on no target (on the controller). */
  target: string | null
  attempt: number
  status: RunStatus
  exitCode: number | null
  error: string | null
}

export const NO_TARGET = '\u0000controller'
const key = (target: string | null, stepId: string) => `${target ?? NO_TARGET}\u0000${stepId}`

export class StepGridModel {
  /** Step ids, in step order (step runs are created in step order, so first seen is first). */
  readonly steps: string[] = []
  /** Row keys: target names in the run's order, NO_TARGET for steps without a target. */
  readonly targets: string[] = []
  readonly byId = new Map<string, StepCell>()
  private readonly latest = new Map<string, StepCell>()
  private readonly targetSet = new Set<string>()

  /** The run's targets in its own order (GET /runs/:id), before any event arrives. */
  setTargets(names: readonly string[]): void {
    for (const n of names) this.addTarget(n)
  }

  private addTarget(name: string): void {
    if (this.targetSet.has(name)) return
    this.targetSet.add(name)
    this.targets.push(name)
  }

  /** Applies one step event; false when it changed nothing the grid shows. */
  apply(e: StepStatusEvent): boolean {
    if (!e.step_run_id || !e.status || !e.step_id) return false
    let cell = this.byId.get(e.step_run_id)
    if (!cell) {
      cell = { stepRunId: e.step_run_id, stepId: e.step_id, target: e.target_name, attempt: e.attempt ?? 1, status: e.status, exitCode: e.exit_code, error: e.error }
      this.byId.set(cell.stepRunId, cell)
      if (!this.steps.includes(cell.stepId)) this.steps.push(cell.stepId)
      this.addTarget(cell.target ?? NO_TARGET)
    } else {
      cell.status = e.status
      cell.exitCode = e.exit_code
      cell.error = e.error
    }
    const k = key(cell.target, cell.stepId)
    const shown = this.latest.get(k)
    if (!shown || shown.attempt <= cell.attempt) this.latest.set(k, cell)
    return true
  }

  cell(target: string, stepId: string): StepCell | undefined {
    return this.latest.get(key(target === NO_TARGET ? null : target, stepId))
  }

  /** Every attempt of a step on a target, oldest first. */
  attempts(target: string | null, stepId: string): StepCell[] {
    return [...this.byId.values()].filter((c) => c.target === target && c.stepId === stepId).sort((a, b) => a.attempt - b.attempt)
  }

  /** Step runs of one target (for the output filter). */
  stepRunsOf(target: string): Set<string> {
    const t = target === NO_TARGET ? null : target
    return new Set([...this.byId.values()].filter((c) => c.target === t).map((c) => c.stepRunId))
  }

  /** The label of a target row. */
  static targetLabel(target: string): string {
    return target === NO_TARGET ? 'controller' : target
  }
}
