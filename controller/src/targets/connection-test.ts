import { eq } from 'drizzle-orm'
import { z } from 'zod'
import type { AppContext } from '../context.ts'
import { openCredential } from '../credentials/service.ts'
import { ValidationError } from '../errors.ts'
import { collectSshFacts, connectSsh, SshError } from '../executors/ssh/index.ts'
import { probeWinrm, WinrmError } from '../executors/winrm/index.ts'
import { listHostKeys, type HostKeyDto } from './host-keys.ts'
import { getTargetRow } from './service.ts'
import { target as targetTable, type TargetRow } from './targets.sql.ts'

/*
 * "Test connection": reach a target the way a step would, with its own settings and host-key /
 * certificate policy, collect its facts into the target, and say precisely what failed when it
 * does. A test that ran answers 200 whatever its outcome; only a bad request is an error.
 */

export const ConnectionTestInput = z
  .object({
    /** The whole test (connect, authenticate, collect facts). */
    timeout_sec: z.number().int().min(1).max(120).default(20),
  })
  .strict()
export type ConnectionTestInput = z.output<typeof ConnectionTestInput>

export const FAILURE_CLASSES = ['dns', 'refused', 'timeout', 'auth_failed', 'host_key_mismatch', 'host_key_unknown', 'tls', 'protocol', 'unreachable', 'config'] as const
export type FailureClass = (typeof FAILURE_CLASSES)[number]

export type ConnectionTestResult =
  | { ok: true; transport: 'ssh' | 'winrm'; latency_ms: number; facts: Record<string, unknown>; tested_at: string }
  | { ok: false; transport: 'ssh' | 'winrm'; failure: FailureClass; message: string; latency_ms: number; tested_at: string; pending_host_keys?: HostKeyDto[] }

type Transport = 'ssh' | 'winrm'

/** What each transport's own error kinds mean to an operator looking at a connection test. */
function failureOf(err: unknown): { failure: FailureClass; message: string } | undefined {
  if (err instanceof SshError || err instanceof WinrmError) {
    const kind: string = err instanceof SshError ? err.failure : err.kind
    const failure: FailureClass =
      (FAILURE_CLASSES as readonly string[]).includes(kind) ? (kind as FailureClass)
      : kind === 'aborted' ? 'timeout'
      : kind === 'lost' ? 'protocol'
      : kind === 'credential' ? 'config'
      : 'unreachable'
    return { failure, message: err.message }
  }
  return undefined
}

async function probe(ctx: AppContext, row: TargetRow, transport: Transport, signal: AbortSignal, timeoutMs: number): Promise<{ latencyMs: number; facts: Record<string, unknown> }> {
  const deps = { ctx, log: ctx.log, credential: (ref: string) => openCredential(ctx, ref), signal }
  if (transport === 'winrm') return probeWinrm(row, deps)
  const started = performance.now()
  const conn = await connectSsh(row, deps, { readyTimeoutMs: timeoutMs })
  const latencyMs = performance.now() - started
  // Closing the connection on abort ends a facts command that hangs.
  const onAbort = () => conn.close()
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    return { latencyMs, facts: await collectSshFacts(conn) }
  } finally {
    signal.removeEventListener('abort', onAbort)
    conn.close()
  }
}

export async function testConnection(ctx: AppContext, targetId: string, transport: Transport, input: ConnectionTestInput): Promise<ConnectionTestResult> {
  const row = await getTargetRow(ctx.db, targetId)
  if (row.connection.type !== transport) {
    const hint = row.connection.type === 'agent' ? ' (an agent target is checked through its agent)' : `; use test-${row.connection.type}`
    throw new ValidationError(`target ${row.name} is reached over ${row.connection.type}, not ${transport === 'ssh' ? 'SSH' : 'WinRM'}${hint}`, [{ path: 'connection.type', message: `is ${row.connection.type}` }])
  }
  const timeoutMs = input.timeout_sec * 1000
  const signal = AbortSignal.timeout(timeoutMs)
  const started = performance.now()
  const testedAt = () => ctx.clock().toISOString()
  try {
    const { latencyMs, facts } = await probe(ctx, row, transport, signal, timeoutMs)
    const now = ctx.clock()
    await ctx.db.update(targetTable).set({ facts, factsUpdatedAt: now, lastSeenAt: now }).where(eq(targetTable.id, row.id))
    return { ok: true, transport, latency_ms: Math.round(latencyMs), facts, tested_at: now.toISOString() }
  } catch (err) {
    const latency_ms = Math.round(performance.now() - started)
    const known = failureOf(err) ?? (signal.aborted ? { failure: 'timeout' as const, message: `no answer from ${row.name} within ${input.timeout_sec} s` } : undefined)
    if (!known) throw err
    const result: ConnectionTestResult = { ok: false, transport, ...known, latency_ms, tested_at: testedAt() }
    if (known.failure === 'host_key_unknown' || known.failure === 'host_key_mismatch') {
      result.pending_host_keys = (await listHostKeys(ctx, row.id)).filter((k) => k.status === 'pending')
    }
    return result
  }
}
