import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto'

/*
 * One-time recovery codes for users who lose their authenticator, shown once as `k7m2-9xq4-ht3p`.
 * 12 characters from a 31-symbol alphabet (no 0/o, 1/l/i) give 59 bits each, far beyond guessing
 * online, so a salted SHA-256 is enough at rest (a slow password hash would add nothing).
 * Stored form: `sha256$<salt base64>$<digest base64>`, digest = SHA-256(salt ‖ normalised code).
 */

const ALPHABET = '23456789abcdefghjkmnpqrstuvwxyz'
const GROUPS = 3
const GROUP_LENGTH = 4
const CODE_LENGTH = GROUPS * GROUP_LENGTH
const SALT_BYTES = 16
const SCHEME = 'sha256'

export function generateRecoveryCodes(n = 10): string[] {
  if (!Number.isInteger(n) || n < 1 || n > 100) throw new RangeError(`generateRecoveryCodes: n must be an integer from 1 to 100 (got ${n})`)
  const codes = new Set<string>()
  while (codes.size < n) codes.add(newCode())
  return [...codes]
}

function newCode(): string {
  // randomInt is uniform (it rejects biased draws), so every symbol is equally likely.
  const chars = Array.from({ length: CODE_LENGTH }, () => ALPHABET[randomInt(ALPHABET.length)]!)
  const groups: string[] = []
  for (let i = 0; i < CODE_LENGTH; i += GROUP_LENGTH) groups.push(chars.slice(i, i + GROUP_LENGTH).join(''))
  return groups.join('-')
}

/** Lower case with spaces and dashes removed; undefined if it cannot be a recovery code. */
export function normaliseRecoveryCode(input: string): string | undefined {
  if (typeof input !== 'string') return undefined
  const code = input.toLowerCase().replace(/[\s-]+/g, '')
  if (code.length !== CODE_LENGTH) return undefined
  for (const c of code) if (!ALPHABET.includes(c)) return undefined
  return code
}

export function hashRecoveryCode(code: string): string {
  const normalised = normaliseRecoveryCode(code)
  if (normalised === undefined) throw new Error('hashRecoveryCode: not a recovery code')
  const salt = randomBytes(SALT_BYTES)
  return `${SCHEME}$${salt.toString('base64')}$${digest(salt, normalised).toString('base64')}`
}

/**
 * Index of the stored hash that `input` matches, or -1. Pass only unused codes; a used slot may be
 * given as null so the indexes of the others stay put. Every entry is checked, in constant time.
 */
export function findRecoveryCode(hashes: readonly (string | null)[], input: string): number {
  const normalised = normaliseRecoveryCode(input)
  if (normalised === undefined) return -1
  let found = -1
  hashes.forEach((stored, i) => {
    if (stored === null) return
    const { salt, expected } = parseHash(stored, i)
    if (timingSafeEqual(digest(salt, normalised), expected) && found === -1) found = i
  })
  return found
}

function digest(salt: Buffer, normalised: string): Buffer {
  return createHash('sha256').update(salt).update(normalised, 'utf8').digest()
}

function parseHash(stored: string, index: number): { salt: Buffer; expected: Buffer } {
  const [scheme, salt, expected, ...rest] = stored.split('$')
  const saltBuf = Buffer.from(salt ?? '', 'base64')
  const expectedBuf = Buffer.from(expected ?? '', 'base64')
  if (scheme !== SCHEME || rest.length > 0 || saltBuf.length !== SALT_BYTES || expectedBuf.length !== 32) {
    // A corrupted row must be noticed, not silently treated as "no match".
    throw new Error(`findRecoveryCode: stored recovery code hash #${index} is malformed`)
  }
  return { salt: saltBuf, expected: expectedBuf }
}
