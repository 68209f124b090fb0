import { and, asc, desc, eq, getTableColumns, gt, gte, like, lt, or, sql, type SQL } from 'drizzle-orm'
import { z } from 'zod'
import type { Actor } from '../auth/principal.ts'
import type { Db } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'
import { decodeCursor, pageOf, type Page } from '../http/pagination.ts'
import { auditLog, type AuditOutcome } from './audit.sql.ts'
import { CHAIN_BREAK_MESSAGE, checkRow, rowHash, type AuditContent, type ChainBreak } from './chain.ts'
import { cleanString, redactSummary, type Json } from './redact.ts'
import { escapeLike } from '../db/text-search.ts'
import { LOCK } from '../db/locks.ts'

export interface AuditEntry {
  actor: Actor
  action: string
  resourceType?: string | null
  resourceId?: string | null
  clientAddress?: string | null
  requestId?: string | null
  outcome: AuditOutcome
  summary?: Record<string, unknown>
}

/** One audit row as the API returns it. */
export interface AuditEvent {
  id: number
  at: string
  actor: { type: Actor['type']; id: string | null; name: string | null }
  action: string
  resource: { type: string | null; id: string | null }
  client_address: string | null
  request_id: string | null
  outcome: AuditOutcome
  summary: Record<string, Json>
  prev_hash: string | null
  hash: string
}

const TEXT_MAX = 500

/**
 * Appends one row to the chain. The advisory lock serialises writers across connections and
 * controller processes, so "read the last hash, take the next id, insert" cannot interleave.
 * Called with a transaction, the row commits (or not) with the caller's change, and the lock is
 * held until that transaction ends.
 */
export async function appendAudit(db: Db, entry: AuditEntry, now: Date): Promise<AuditEvent> {
  if (Number.isNaN(now.getTime())) throw new Error('appendAudit: invalid time')
  const fields = storableFields(entry)
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${LOCK.audit})`)
    const [last] = await tx.select({ hash: auditLog.hash }).from(auditLog).orderBy(desc(auditLog.id)).limit(1)
    const [next] = rowsOf<{ id: string | number | bigint }>(
      await tx.execute(sql`select nextval(pg_get_serial_sequence('audit_log', 'id')) as id`),
    )
    // The stored timestamptz must give back exactly the instant that was hashed: whole milliseconds.
    const content: AuditContent = { ...fields, id: Number(next!.id), at: new Date(now.getTime()) }
    const prevHash = last?.hash ?? null
    const hash = rowHash(prevHash, content)
    await tx.insert(auditLog).values({ ...content, prevHash, hash })
    return toEvent({ ...content, prevHash, hash })
  })
}

/**
 * What a text column gives back exactly as it was hashed: PGlite decodes each text value with a
 * TextDecoder, which drops a leading byte-order mark, so a stored leading U+FEFF would read back
 * without it and break the row's hash.
 */
function columnText(s: string): string {
  return cleanString(s, TEXT_MAX).replace(/^\uFEFF+/, '')
}

function storableFields(entry: AuditEntry): Omit<AuditContent, 'id' | 'at'> {
  const text = (s: string | null | undefined) => (s == null ? null : columnText(s))
  return {
    actorType: entry.actor.type,
    actorId: text(entry.actor.id),
    actorName: text(entry.actor.name),
    action: columnText(entry.action),
    resourceType: text(entry.resourceType),
    resourceId: text(entry.resourceId),
    clientAddress: text(entry.clientAddress),
    requestId: text(entry.requestId),
    outcome: entry.outcome,
    summary: redactSummary(entry.summary),
  }
}

export interface AuditFilters {
  /** Matches the actor's id or name. */
  actor?: string
  /** Exact, or a prefix when it ends in `*` (`auth.*`). */
  action?: string
  resourceType?: string
  resourceId?: string
  /** Inclusive. */
  from?: Date
  /** Exclusive. */
  to?: Date
  outcome?: AuditOutcome
}

const AuditCursor = z.object({ id: z.number().int().positive() })

/** Newest first, keyset-paginated by id (the chain order). */
export async function listAudit(db: Db, filters: AuditFilters, page: { limit: number; cursor?: string }): Promise<Page<AuditEvent>> {
  const where: (SQL | undefined)[] = []
  if (page.cursor !== undefined) where.push(lt(auditLog.id, decodeCursor(page.cursor, AuditCursor).id))
  if (filters.actor !== undefined) where.push(or(eq(auditLog.actorId, filters.actor), eq(auditLog.actorName, filters.actor)))
  if (filters.action !== undefined) {
    where.push(
      filters.action.endsWith('*')
        ? like(auditLog.action, `${escapeLike(filters.action.slice(0, -1))}%`)
        : eq(auditLog.action, filters.action),
    )
  }
  if (filters.resourceType !== undefined) where.push(eq(auditLog.resourceType, filters.resourceType))
  if (filters.resourceId !== undefined) where.push(eq(auditLog.resourceId, filters.resourceId))
  if (filters.from !== undefined) where.push(gte(auditLog.at, filters.from))
  if (filters.to !== undefined) where.push(lt(auditLog.at, filters.to))
  if (filters.outcome !== undefined) where.push(eq(auditLog.outcome, filters.outcome))
  const rows = await db
    .select()
    .from(auditLog)
    .where(and(...where))
    .orderBy(desc(auditLog.id))
    .limit(page.limit + 1)
  return pageOf(rows, page.limit, toEvent, (row) => ({ id: row.id }))
}

export type VerifyResult =
  | { ok: true; rows: number; head: string | null }
  /** `rows` counts the rows that checked out before the break. */
  | { ok: false; rows: number; brokenAt: { id: number; reason: ChainBreak; message: string } }

const VERIFY_BATCH = 1000

/** Walks the whole chain in id order, a batch at a time, and stops at the first row that does not check out. */
export async function verifyAuditChain(db: Db): Promise<VerifyResult> {
  let previousHash: string | null = null
  let afterId = 0
  let rows = 0
  for (;;) {
    const batch = await db
      .select({ ...getTableColumns(auditLog), atExact: sql<boolean>`${auditLog.at} = date_trunc('milliseconds', ${auditLog.at})` })
      .from(auditLog)
      .where(gt(auditLog.id, afterId))
      .orderBy(asc(auditLog.id))
      .limit(VERIFY_BATCH)
    for (const row of batch) {
      // JS dates stop at milliseconds, so an edit below that would hash the same; no row is written with one.
      const reason = row.atExact ? checkRow(row, previousHash) : 'content_mismatch'
      if (reason) return { ok: false, rows, brokenAt: { id: row.id, reason, message: CHAIN_BREAK_MESSAGE[reason] } }
      previousHash = row.hash
      rows++
    }
    if (batch.length < VERIFY_BATCH) return { ok: true, rows, head: previousHash }
    afterId = batch.at(-1)!.id
  }
}

/** One row by id, as the API returns it (null when there is none). */
export async function getAuditEvent(db: Db, id: number): Promise<AuditEvent | null> {
  const [row] = await db.select().from(auditLog).where(eq(auditLog.id, id))
  return row ? toEvent(row) : null
}

type AuditRow = AuditContent & { prevHash: string | null; hash: string }

function toEvent(row: AuditRow): AuditEvent {
  return {
    id: row.id,
    at: row.at.toISOString(),
    actor: { type: row.actorType, id: row.actorId, name: row.actorName },
    action: row.action,
    resource: { type: row.resourceType, id: row.resourceId },
    client_address: row.clientAddress,
    request_id: row.requestId,
    outcome: row.outcome,
    summary: row.summary as Record<string, Json>,
    prev_hash: row.prevHash,
    hash: row.hash,
  }
}
