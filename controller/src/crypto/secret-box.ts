import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { AppError } from '../errors.ts'
import type { Keyring, MasterKey } from './master-key.ts'

/*
 * Envelope encryption for secrets at rest (AES-256-GCM throughout):
 *   - every sealed secret has its own random 32-byte data key, which encrypts the plaintext with a
 *     fresh 12-byte nonce; the caller's `aad` (record id + purpose) is bound as additional data, so a
 *     ciphertext copied into another row does not open there;
 *   - the data key is encrypted ("wrapped") under the current master key with its own nonce, binding
 *     the key id and the same `aad`;
 *   - rotation re-wraps only the data key (rewrapSecret); the ciphertext never changes.
 * All fields are base64; the object is JSON-serialisable (jsonb column, or text via JSON.stringify).
 */

export interface SealedSecret {
  v: 1
  /** Id of the master key that wrapped `wrappedKey` (not secret). */
  kid: string
  wrapNonce: string
  /** The encrypted data key followed by its 16-byte GCM tag. */
  wrappedKey: string
  nonce: string
  ciphertext: string
  tag: string
}

export type SecretDecryptReason = 'malformed' | 'unknown_key' | 'auth_failed'

/**
 * Raised for every failure to open a secret: tampering, a wrong aad, an unknown or wrong master key.
 * The message is safe to show; `reason` and `kid` are for the log.
 */
export class SecretDecryptError extends AppError {
  constructor(
    readonly reason: SecretDecryptReason,
    readonly kid: string | undefined,
    opts?: { cause?: unknown },
  ) {
    const hint = reason === 'unknown_key' ? ` (it was sealed with master key ${kid}, which is not configured)` : ''
    super('INTERNAL', `cannot decrypt credentials with the configured master key${hint}`, undefined, opts)
  }
}

const VERSION = 1
const KEY_BYTES = 32
const NONCE_BYTES = 12
const TAG_BYTES = 16
const dataAad = (aad: string) => Buffer.from(`opsc-secret/v1/data\0${aad}`, 'utf8')
// The data key's AAD names the master key too, so a kid swapped in the stored row cannot match.
const wrapAad = (kid: string, aad: string) => Buffer.from(`opsc-secret/v1/wrap\0${kid}\0${aad}`, 'utf8')

export function sealSecret(keyring: Keyring, plaintext: Buffer | string, aad: string): SealedSecret {
  const dataKey = randomBytes(KEY_BYTES)
  try {
    const nonce = randomBytes(NONCE_BYTES)
    const { ciphertext, tag } = encrypt(dataKey, nonce, dataAad(aad), typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext)
    return { v: VERSION, ...wrapDataKey(keyring.current, dataKey, aad), nonce: b64(nonce), ciphertext: b64(ciphertext), tag: b64(tag) }
  } finally {
    dataKey.fill(0)
  }
}

/** The plaintext, or a SecretDecryptError; never unauthenticated bytes. */
export function openSecret(keyring: Keyring, sealed: SealedSecret | string, aad: string): Buffer {
  const s = parseSealed(sealed)
  const dataKey = unwrapDataKey(keyring, s, aad)
  try {
    return decrypt(dataKey, s.nonce, dataAad(aad), s.ciphertext, s.tag, s.kid)
  } finally {
    dataKey.fill(0)
  }
}

/**
 * Re-wraps the data key under the current master key, leaving nonce, ciphertext and tag untouched.
 * The whole secret is authenticated first, so a damaged row fails here rather than after rotation.
 */
export function rewrapSecret(keyring: Keyring, sealed: SealedSecret | string, aad: string): SealedSecret {
  const s = parseSealed(sealed)
  const dataKey = unwrapDataKey(keyring, s, aad)
  try {
    decrypt(dataKey, s.nonce, dataAad(aad), s.ciphertext, s.tag, s.kid).fill(0)
    return { v: VERSION, ...wrapDataKey(keyring.current, dataKey, aad), nonce: b64(s.nonce), ciphertext: b64(s.ciphertext), tag: b64(s.tag) }
  } finally {
    dataKey.fill(0)
  }
}

/** Whether rotation still has to re-wrap this secret. */
export function isSealedWithCurrentKey(keyring: Keyring, sealed: SealedSecret | string): boolean {
  return parseSealed(sealed).kid === keyring.current.id
}

function wrapDataKey(master: MasterKey, dataKey: Buffer, aad: string): Pick<SealedSecret, 'kid' | 'wrapNonce' | 'wrappedKey'> {
  const wrapNonce = randomBytes(NONCE_BYTES)
  const { ciphertext, tag } = encrypt(master.key, wrapNonce, wrapAad(master.id, aad), dataKey)
  return { kid: master.id, wrapNonce: b64(wrapNonce), wrappedKey: b64(Buffer.concat([ciphertext, tag])) }
}

function unwrapDataKey(keyring: Keyring, s: ParsedSealed, aad: string): Buffer {
  const master = keyring.byId(s.kid)
  if (!master) throw new SecretDecryptError('unknown_key', s.kid)
  const wrapped = s.wrappedKey.subarray(0, KEY_BYTES)
  const tag = s.wrappedKey.subarray(KEY_BYTES)
  return decrypt(master.key, s.wrapNonce, wrapAad(s.kid, aad), wrapped, tag, s.kid)
}

function encrypt(key: Buffer, nonce: Buffer, aad: Buffer, plaintext: Buffer): { ciphertext: Buffer; tag: Buffer } {
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES })
  cipher.setAAD(aad)
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return { ciphertext, tag: cipher.getAuthTag() }
}

function decrypt(key: Buffer, nonce: Buffer, aad: Buffer, ciphertext: Buffer, tag: Buffer, kid: string): Buffer {
  try {
    // authTagLength pins the tag at 16 bytes; without it Node accepts a truncated tag.
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES })
    decipher.setAAD(aad)
    decipher.setAuthTag(tag)
    return Buffer.concat([decipher.update(ciphertext), decipher.final()])
  } catch (err) {
    throw new SecretDecryptError('auth_failed', kid, { cause: err })
  }
}

interface ParsedSealed {
  kid: string
  wrapNonce: Buffer
  wrappedKey: Buffer
  nonce: Buffer
  ciphertext: Buffer
  tag: Buffer
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/** Validates the stored shape and field lengths; anything off is a SecretDecryptError('malformed'). */
function parseSealed(input: SealedSecret | string): ParsedSealed {
  let value: unknown = input
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input)
    } catch (err) {
      throw new SecretDecryptError('malformed', undefined, { cause: err })
    }
  }
  if (typeof value !== 'object' || value === null) throw new SecretDecryptError('malformed', undefined)
  const o = value as Record<string, unknown>
  const kid = typeof o.kid === 'string' && /^[0-9a-f]{16}$/.test(o.kid) ? o.kid : undefined
  if (o.v !== VERSION || kid === undefined) throw new SecretDecryptError('malformed', kid)
  const field = (name: string, length?: number): Buffer => {
    const raw = o[name]
    const buf = typeof raw === 'string' && BASE64.test(raw) && raw.length % 4 === 0 ? Buffer.from(raw, 'base64') : undefined
    if (!buf || (length !== undefined && buf.length !== length)) throw new SecretDecryptError('malformed', kid)
    return buf
  }
  return {
    kid,
    wrapNonce: field('wrapNonce', NONCE_BYTES),
    wrappedKey: field('wrappedKey', KEY_BYTES + TAG_BYTES),
    nonce: field('nonce', NONCE_BYTES),
    ciphertext: field('ciphertext'),
    tag: field('tag', TAG_BYTES),
  }
}

const b64 = (buf: Buffer) => buf.toString('base64')
