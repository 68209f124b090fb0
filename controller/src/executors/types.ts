import type { z } from 'zod'
import type { AppContext } from '../context.ts'
import type { OpenedCredential } from '../credentials/service.ts'
import type { Logger } from '../log.ts'
import type { TargetRow } from '../targets/targets.sql.ts'

/*
 * The one interface every step type plugs into the job engine through. The engine renders the
 * step's templates, validates the result against `input`, and calls `run` on the controller that
 * claimed the step run. Agent-executed steps go through the agent dispatcher instead (engine-side).
 */

export type OutputStream = 'stdout' | 'stderr'

/** Where a step writes what it produces; the engine masks secrets, caps, numbers and stores it. */
export interface StepOutputSink {
  write(stream: OutputStream, data: Buffer | string): void
}

/** `interrupted` and `agent_lost` come from the engine and agent transport; executors use the others. */
export type StepStatus = 'succeeded' | 'failed' | 'timed_out' | 'cancelled' | 'system_error' | 'interrupted' | 'agent_lost'

export interface StepOutcome {
  status: StepStatus
  exitCode?: number | null
  signal?: string | null
  /** One line for the operator: why it failed (never a secret, never a stack trace). */
  error?: string | null
  /** Captured structured result (HTTP response, SQL rows, SNMP varbinds…), JSON-serialisable, kept small. */
  result?: unknown
}

/** Why the signal aborted: `cancelled` (operator or run cancel) or `timed_out` (step timeout). */
export type AbortReason = 'cancelled' | 'timed_out'

export interface ExecutionContext {
  ctx: AppContext
  log: Logger
  /** Aborted on cancel or timeout; `signal.reason` is an AbortReason. Executors stop promptly and clean up remote work. */
  signal: AbortSignal
  /** The step's timeout in ms (the engine aborts with `timed_out` when it passes; executors may pass it to clients). */
  timeoutMs: number
  output: StepOutputSink
  /** The frozen target this step run is for, or null for a run without targets. */
  target: TargetRow | null
  /**
   * A credential by id or name, secrets included. The engine records every secret value it returns
   * so that it is masked in output. Throws a ValidationError (→ step `failed`) when it does not exist.
   */
  credential(ref: string): Promise<OpenedCredential>
  /** Records a remote handle (e.g. SSH process group id) so a controller that takes over can clean up. */
  remember?(handle: Record<string, unknown>): void
}

export interface StepExecutor<I = unknown> {
  /** Step type names this executor serves, e.g. ['http.get', 'http.post', …]. */
  types: readonly string[]
  /**
   * The step's own fields (besides the common ones: id, name, type, target, timeout_sec, retries,
   * retry_backoff_sec, continue_on_error, run_if), as a zod object in snake_case. String fields may
   * hold templates (`{{ … }}`); they are rendered before the input is validated again and `run` is called.
   */
  input: z.ZodType<I>
  /** True when the step cannot run without a target (snmp, ssh, winrm, exec…). */
  needsTarget: boolean
  run(type: string, input: I, x: ExecutionContext): Promise<StepOutcome>
}
