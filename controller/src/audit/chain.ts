import { createHash } from 'node:crypto'
import type { ActorType, AuditOutcome } from './audit.sql.ts'

/** Everything a row's hash covers: all columns except `prev_hash` (hashed separately) and `hash`. */
export interface AuditContent {
  id: number
  at: Date
  actorType: ActorType
  actorId: string | null
  actorName: string | null
  action: string
  resourceType: string | null
  resourceId: string | null
  clientAddress: string | null
  requestId: string | null
  outcome: AuditOutcome
  summary: Record<string, unknown>
}

/**
 * The canonical form is JSON with every object's keys sorted (summary included) and the time as an
 * ISO string with millisecond precision. The keys are the column names, so the chain can be checked
 * from SQL alone. Changing this function invalidates every existing chain: don't.
 */
export function canonicalContent(content: AuditContent): string {
  return stableStringify({
    action: content.action,
    actor_id: content.actorId,
    actor_name: content.actorName,
    actor_type: content.actorType,
    at: content.at.toISOString(),
    client_address: content.clientAddress,
    id: content.id,
    outcome: content.outcome,
    request_id: content.requestId,
    resource_id: content.resourceId,
    resource_type: content.resourceType,
    summary: content.summary,
  })
}

/** hex SHA-256 of the previous row's hash (empty for the first row) followed by this row's canonical content. */
export function rowHash(prevHash: string | null, content: AuditContent): string {
  return createHash('sha256')
    .update(prevHash ?? '')
    .update(canonicalContent(content))
    .digest('hex')
}

/** JSON.stringify with object keys in sorted order at every depth (jsonb does not keep key order). */
export function stableStringify(value: unknown): string {
  return JSON.stringify(sortKeys(value)) ?? 'null'
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (value === null || typeof value !== 'object' || value instanceof Date) return value
  const sorted: Record<string, unknown> = {}
  for (const key of Object.keys(value).sort()) sorted[key] = sortKeys((value as Record<string, unknown>)[key])
  return sorted
}

export type ChainBreak = 'content_mismatch' | 'link_broken'

export interface StoredAuditRow extends AuditContent {
  prevHash: string | null
  hash: string
}

/**
 * Checks one row against the hash of the row before it (null for the first row). A deleted row shows
 * up as a broken link on the row after it; an edited row as a content mismatch on itself.
 */
export function checkRow(row: StoredAuditRow, previousHash: string | null): ChainBreak | null {
  if (rowHash(row.prevHash, row) !== row.hash) return 'content_mismatch'
  if (row.prevHash !== previousHash) return 'link_broken'
  return null
}

export const CHAIN_BREAK_MESSAGE: Record<ChainBreak, string> = {
  content_mismatch: 'content does not match its hash',
  link_broken: 'does not link to the row before it (a row was deleted or altered)',
}
