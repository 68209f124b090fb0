import { z } from 'zod'
import { abortOutcome, runStep, sleep } from './outcome.ts'
import type { StepExecutor } from './types.ts'

/** `wait`: a pause between steps (after a reboot, before a health check). */
export const WaitInput = z
  .object({
    seconds: z.number().positive().max(86_400),
  })
  .strict()
export type WaitInput = z.output<typeof WaitInput>

export const waitExecutor: StepExecutor<WaitInput> = {
  types: ['wait'],
  input: WaitInput,
  needsTarget: false,
  run(_type, input, x) {
    return runStep(x, async (signal) => {
      await sleep(Math.ceil(input.seconds * 1000), signal)
      if (signal.aborted) return abortOutcome(x)
      x.output.write('stdout', `waited ${input.seconds} s\n`)
      return { status: 'succeeded' }
    })
  },
}
