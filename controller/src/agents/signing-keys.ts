import { createHash, type KeyObject } from 'node:crypto'
import { desc, eq, isNull, sql } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import type { Keyring } from '../crypto/master-key.ts'
import { openSecret, sealSecret } from '../crypto/secret-box.ts'
import { AppError, NotFoundError } from '../errors.ts'
import { exportEd25519PrivateKey, generateEd25519KeyPair, importEd25519PrivateKey } from '../../../proto/src/sign.ts'
import { agentSigningKey, type AgentSigningKeyRow } from './agents.sql.ts'
import { LOCK } from '../db/locks.ts'

/** The AAD the sealed private key is bound to: a sealed key copied to another row does not open. */
export const signingKeyAad = (keyId: string) => `agent_signing_key:${keyId}`

export interface SigningKey {
  keyId: string
  /** Raw 32-byte Ed25519 public key. */
  publicKey: Uint8Array
  privateKey: KeyObject
}

/** Key ids are derived from the public key: `ed25519-` and 16 hex characters of its SHA-256. */
function keyIdOf(publicKeyRaw: Uint8Array): string {
  return 'ed25519-' + createHash('sha256').update(publicKeyRaw).digest('hex').slice(0, 16)
}

async function insertKey(db: Db, keyring: Keyring, now: Date): Promise<string> {
  const pair = generateEd25519KeyPair()
  const keyId = keyIdOf(pair.publicKeyRaw)
  const seed = Buffer.from(exportEd25519PrivateKey(pair.privateKey))
  try {
    // Keys are ordered by creation time: a new key is strictly newer than every existing one.
    const [latest] = await db.select({ createdAt: agentSigningKey.createdAt }).from(agentSigningKey).orderBy(desc(agentSigningKey.createdAt)).limit(1)
    const createdAt = latest && latest.createdAt.getTime() >= now.getTime() ? new Date(latest.createdAt.getTime() + 1) : now
    await db.insert(agentSigningKey).values({
      keyId,
      publicKey: Buffer.from(pair.publicKeyRaw).toString('base64'),
      privateKey: sealSecret(keyring, seed, signingKeyAad(keyId)),
      createdAt,
    })
    return keyId
  } finally {
    seed.fill(0)
  }
}

async function locked<T>(db: Db, fn: (tx: Db) => Promise<T>): Promise<T> {
  return db.transaction(async (txRaw) => {
    const tx = txRaw as unknown as Db
    await tx.execute(sql`select pg_advisory_xact_lock(${LOCK.signingKey})`)
    return fn(tx)
  })
}

/** Creates the first signing key when no key is active; returns the current key id. */
export async function ensureSigningKey(db: Db, keyring: Keyring, now = new Date()): Promise<string> {
  return locked(db, async (tx) => {
    const [current] = await activeRows(tx)
    return current ? current.keyId : insertKey(tx, keyring, now)
  })
}

/** Adds a new current key; the previous ones stay valid (agents accept them) until retired. */
export async function rotateSigningKey(db: Db, keyring: Keyring, now = new Date()): Promise<string> {
  return locked(db, (tx) => insertKey(tx, keyring, now))
}

/** Retires an older key; the current key cannot be retired (rotate first). */
export async function retireSigningKey(db: Db, keyId: string, now = new Date()): Promise<void> {
  await locked(db, async (tx) => {
    const active = await activeRows(tx)
    const index = active.findIndex((k) => k.keyId === keyId)
    if (index === -1) throw new NotFoundError('active signing key', keyId)
    if (index === 0) throw new AppError('CONFLICT', `signing key ${keyId} is the current key; rotate before retiring it`)
    await tx.update(agentSigningKey).set({ retiredAt: now }).where(eq(agentSigningKey.keyId, keyId))
  })
}

function activeRows(db: Db): Promise<AgentSigningKeyRow[]> {
  return db
    .select()
    .from(agentSigningKey)
    .where(isNull(agentSigningKey.retiredAt))
    .orderBy(desc(agentSigningKey.createdAt), desc(agentSigningKey.keyId))
}

/** Every key agents should accept, current (the one new assignments are signed with) first, opened from the vault. */
export async function activeSigningKeys(db: Db, keyring: Keyring): Promise<SigningKey[]> {
  const rows = await activeRows(db)
  return rows.map((row) => {
    const seed = openSecret(keyring, row.privateKey, signingKeyAad(row.keyId))
    try {
      return { keyId: row.keyId, publicKey: new Uint8Array(Buffer.from(row.publicKey, 'base64')), privateKey: importEd25519PrivateKey(seed) }
    } finally {
      seed.fill(0)
    }
  })
}

/** Public halves only (no vault access): what agents are told to accept. */
export async function activeSigningPublicKeys(db: Db): Promise<{ keyId: string; publicKey: Uint8Array }[]> {
  const rows = await db
    .select({ keyId: agentSigningKey.keyId, publicKey: agentSigningKey.publicKey })
    .from(agentSigningKey)
    .where(isNull(agentSigningKey.retiredAt))
    .orderBy(desc(agentSigningKey.createdAt), desc(agentSigningKey.keyId))
  return rows.map((r) => ({ keyId: r.keyId, publicKey: new Uint8Array(Buffer.from(r.publicKey, 'base64')) }))
}
