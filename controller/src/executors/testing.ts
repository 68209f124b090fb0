import { sql } from 'drizzle-orm'
import { z } from 'zod'
import type { AppContext } from '../context.ts'
import { credential } from '../credentials/credentials.sql.ts'
import { openCredential, type OpenedCredential } from '../credentials/service.ts'
import { NotFoundError, ValidationError } from '../errors.ts'
import type { AbortReason, ExecutionContext } from './types.ts'

/*
 * An ExecutionContext for executor tests: output collected in memory, credentials resolved by
 * name or id through the real credential service (stored encrypted, opened as the engine does).
 */

export interface TestExecution extends ExecutionContext {
  stdout(): string
  stderr(): string
  /** Aborts `signal` as the engine would on a cancel or a step timeout. */
  abort(reason: AbortReason): void
}

/** The same lookup the engine makes: an id, else a case-insensitive name; unknown → ValidationError. */
export async function resolveCredential(ctx: AppContext, ref: string): Promise<OpenedCredential> {
  let id = ref
  if (!z.uuid().safeParse(ref).success) {
    const [row] = await ctx.db.select({ id: credential.id }).from(credential).where(sql`lower(${credential.name}) = lower(${ref})`)
    if (!row) throw new ValidationError(`credential "${ref}" does not exist`)
    id = row.id
  }
  try {
    return await openCredential(ctx, id)
  } catch (err) {
    if (err instanceof NotFoundError) throw new ValidationError(`credential "${ref}" does not exist`)
    throw err
  }
}

export function executionContext(ctx: AppContext, overrides: Partial<ExecutionContext> = {}): TestExecution {
  const chunks = { stdout: [] as Buffer[], stderr: [] as Buffer[] }
  const controller = new AbortController()
  return {
    ctx,
    log: ctx.log,
    signal: controller.signal,
    timeoutMs: 30_000,
    target: null,
    output: { write: (stream, data) => chunks[stream].push(Buffer.isBuffer(data) ? data : Buffer.from(data)) },
    credential: (ref) => resolveCredential(ctx, ref),
    ...overrides,
    stdout: () => Buffer.concat(chunks.stdout).toString('utf8'),
    stderr: () => Buffer.concat(chunks.stderr).toString('utf8'),
    abort: (reason) => controller.abort(reason),
  }
}
