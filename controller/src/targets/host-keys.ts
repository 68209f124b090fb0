import { createHash } from 'node:crypto'
import { and, asc, eq } from 'drizzle-orm'
import type { AppContext } from '../context.ts'
import { isUuid, type Db } from '../db/client.ts'
import { AppError, NotFoundError } from '../errors.ts'
import { getTargetRow } from './service.ts'
import { targetHostKey } from './targets.sql.ts'

export type HostKeyPolicy = 'strict' | 'tofu' | 'off'
export type HostKeyStatus = 'trusted' | 'pending' | 'revoked'

/** OpenSSH's `SHA256:` fingerprint of a public key blob (base64 without padding). */
export function openSshFingerprint(publicKey: Buffer): string {
  return `SHA256:${createHash('sha256').update(publicKey).digest('base64').replace(/=+$/, '')}`
}

export interface PresentedKey {
  keyType: string
  publicKey: Buffer
}

export type HostKeyDecision =
  | { accept: true; record: 'none' | 'trust' }
  | { accept: false; reason: 'unknown_key' | 'changed_key' | 'revoked_key'; record: 'pending' | 'none' }

/**
 * What to do with the key a host presents, given the policy and what the trust store holds.
 * strict: only approved keys. tofu: the first key is trusted, any other refused. off: anything.
 */
export function decideHostKey(policy: HostKeyPolicy, known: { fingerprint: string; status: HostKeyStatus }[], presentedFingerprint: string): HostKeyDecision {
  if (policy === 'off') return { accept: true, record: 'none' }
  const match = known.find((k) => k.fingerprint === presentedFingerprint)
  if (match?.status === 'trusted') return { accept: true, record: 'none' }
  if (match?.status === 'revoked') return { accept: false, reason: 'revoked_key', record: 'none' }
  const anyTrusted = known.some((k) => k.status === 'trusted')
  if (policy === 'tofu' && !anyTrusted && !match) return { accept: true, record: 'trust' }
  return { accept: false, reason: anyTrusted ? 'changed_key' : 'unknown_key', record: match ? 'none' : 'pending' }
}

export interface HostKeyDto {
  id: string
  target_id: string
  key_type: string
  fingerprint: string
  status: HostKeyStatus
  first_seen_at: string
  decided_at: string | null
  decided_by: string | null
}

function dto(row: typeof targetHostKey.$inferSelect): HostKeyDto {
  return {
    id: row.id,
    target_id: row.targetId,
    key_type: row.keyType,
    fingerprint: row.fingerprint,
    status: row.status,
    first_seen_at: row.firstSeenAt.toISOString(),
    decided_at: row.decidedAt?.toISOString() ?? null,
    decided_by: row.decidedBy,
  }
}

/**
 * Checks a presented key against the store and records the outcome (trust on first use, or a
 * pending key an operator can approve). Used by the SSH executor and connection tests.
 */
export async function checkHostKey(db: Db, targetId: string, policy: HostKeyPolicy, key: PresentedKey, now: Date): Promise<HostKeyDecision & { fingerprint: string }> {
  const fingerprint = openSshFingerprint(key.publicKey)
  const known = await db.select({ fingerprint: targetHostKey.fingerprint, status: targetHostKey.status }).from(targetHostKey).where(eq(targetHostKey.targetId, targetId))
  const decision = decideHostKey(policy, known, fingerprint)
  if (decision.record !== 'none') {
    const trusted = decision.record === 'trust'
    await db
      .insert(targetHostKey)
      .values({
        targetId,
        keyType: key.keyType,
        fingerprint,
        publicKey: key.publicKey.toString('base64'),
        status: trusted ? 'trusted' : 'pending',
        firstSeenAt: now,
        decidedAt: trusted ? now : null,
        decidedBy: trusted ? 'trust on first use' : null,
      })
      .onConflictDoNothing()
  }
  return { ...decision, fingerprint }
}

export async function listHostKeys(ctx: AppContext, targetId: string): Promise<HostKeyDto[]> {
  await getTargetRow(ctx.db, targetId)
  const rows = await ctx.db.select().from(targetHostKey).where(eq(targetHostKey.targetId, targetId)).orderBy(asc(targetHostKey.firstSeenAt))
  return rows.map(dto)
}

/** Approve (trust) or revoke a key. Approving a new key for a host revokes the keys it replaces. */
export async function decideStoredHostKey(ctx: AppContext, targetId: string, keyId: string, status: 'trusted' | 'revoked', by: string): Promise<HostKeyDto> {
  await getTargetRow(ctx.db, targetId)
  if (!isUuid(keyId)) throw new NotFoundError('host key', keyId)
  const now = ctx.clock()
  return ctx.db.transaction(async (tx) => {
    const [row] = await tx.select().from(targetHostKey).where(and(eq(targetHostKey.targetId, targetId), eq(targetHostKey.id, keyId)))
    if (!row) throw new NotFoundError('host key', keyId)
    if (row.status === status) throw new AppError('CONFLICT', `host key is already ${status}`)
    if (status === 'trusted') {
      await tx
        .update(targetHostKey)
        .set({ status: 'revoked', decidedAt: now, decidedBy: `${by} (replaced)` })
        .where(and(eq(targetHostKey.targetId, targetId), eq(targetHostKey.status, 'trusted')))
    }
    const [updated] = await tx.update(targetHostKey).set({ status, decidedAt: now, decidedBy: by }).where(eq(targetHostKey.id, keyId)).returning()
    return dto(updated!)
  })
}
