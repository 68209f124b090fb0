import type { TargetRow } from '../../targets/targets.sql.ts'
import { targetLabel, transportOptionsFor, type WinrmDeps } from './connect.ts'
import { WinrmError } from './errors.ts'
import { collectWinrmFacts } from './facts.ts'
import { HostPool } from './pool.ts'

/*
 * The WinRM half of a target's connection test: authenticate, open a shell (latency = until the
 * shell exists), run the facts script, delete the shell. It uses a pool of its own so that a test
 * always proves a fresh connection and leaves nothing behind.
 */

const PROBE_TIMEOUT_MS = 30_000

export async function probeWinrm(target: TargetRow, deps: WinrmDeps): Promise<{ latencyMs: number; facts: Record<string, unknown> }> {
  const signal = deps.signal ? AbortSignal.any([deps.signal, AbortSignal.timeout(PROBE_TIMEOUT_MS)]) : AbortSignal.timeout(PROBE_TIMEOUT_MS)
  const opts = await transportOptionsFor(target, { ...deps, signal })
  const pool = new HostPool({ ...opts, requestTimeoutMs: PROBE_TIMEOUT_MS }, 1, PROBE_TIMEOUT_MS)
  const started = performance.now()
  try {
    const shell = await pool.acquire(signal)
    const latencyMs = performance.now() - started
    pool.release(shell)
    return { latencyMs, facts: await collectWinrmFacts(pool, signal) }
  } catch (err) {
    if (signal.aborted && !(err instanceof WinrmError && err.kind !== 'aborted')) {
      throw new WinrmError(deps.signal?.aborted ? 'aborted' : 'timeout', `${targetLabel(target)} did not complete the WinRM test within ${PROBE_TIMEOUT_MS / 1000} s`, { cause: err })
    }
    throw err
  } finally {
    await pool.close()
  }
}
