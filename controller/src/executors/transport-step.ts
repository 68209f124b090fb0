import type { TargetRow } from '../targets/targets.sql.ts'
import type { ExecutionContext, StepExecutor, StepOutcome } from './types.ts'

const LABEL = { ssh: 'SSH', winrm: 'WinRM' } as const

/** A step type of one agentless transport: run on the step's target once that target is known to use it. */
export function transportStep<I>(
  transport: keyof typeof LABEL,
  types: string[],
  input: StepExecutor<I>['input'],
  run: (target: TargetRow, input: I, x: ExecutionContext) => Promise<StepOutcome>,
): StepExecutor<I> {
  return {
    types,
    input,
    needsTarget: true,
    run(_type, value, x) {
      if (!x.target) return Promise.resolve({ status: 'failed', error: 'this step needs a target' })
      const type = x.target.connection.type
      if (type !== transport) return Promise.resolve({ status: 'failed', error: `target ${x.target.name} is not reached over ${LABEL[transport]} (its connection is ${type})` })
      return run(x.target, value, x)
    },
  }
}
