import { hkdfSync, randomUUID } from 'node:crypto'
import { errors as joseErrors, jwtVerify, SignJWT, decodeProtectedHeader } from 'jose'
import type { Keyring } from '../crypto/master-key.ts'
import type { Role } from './roles.ts'

export const ACCESS_TOKEN_TTL_SECONDS = 15 * 60
const ISSUER = 'opsconductor'
const AUDIENCE = 'opsconductor-api'

/**
 * Access tokens are HS256 JWTs keyed by a key derived from the master key: every controller
 * holding the master key can verify them and no signing secret is stored in the database.
 */
function signingKey(masterKey: Buffer): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'opsconductor/access-token/v1', 32))
}

export interface AccessClaims {
  userId: string
  sessionId: string
  role: Role
  issuedAt: Date
  expiresAt: Date
}

export async function signAccessToken(keyring: Keyring, claims: { userId: string; sessionId: string; role: Role }, now: Date) {
  const iat = Math.floor(now.getTime() / 1000)
  const exp = iat + ACCESS_TOKEN_TTL_SECONDS
  const token = await new SignJWT({ sid: claims.sessionId, role: claims.role, typ: 'access' })
    .setProtectedHeader({ alg: 'HS256', kid: keyring.current.id })
    .setSubject(claims.userId)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .setJti(randomUUID())
    .sign(signingKey(keyring.current.key))
  return { token, expiresIn: ACCESS_TOKEN_TTL_SECONDS }
}

export class InvalidTokenError extends Error {
  override name = 'InvalidTokenError'
}

/** Verifies signature (HS256 only: `alg:none` and key confusion are refused), issuer, audience and expiry. */
export async function verifyAccessToken(keyring: Keyring, token: string, now: Date): Promise<AccessClaims> {
  let kid: string | undefined
  try {
    kid = decodeProtectedHeader(token).kid
  } catch {
    throw new InvalidTokenError('malformed token')
  }
  const key = kid ? keyring.byId(kid) : undefined
  if (!key) throw new InvalidTokenError('token signed with an unknown key')
  try {
    const { payload } = await jwtVerify(token, signingKey(key.key), {
      algorithms: ['HS256'],
      issuer: ISSUER,
      audience: AUDIENCE,
      currentDate: now,
      requiredClaims: ['sub', 'exp', 'iat', 'sid'],
    })
    if (payload.typ !== 'access' || typeof payload.sid !== 'string' || typeof payload.sub !== 'string') {
      throw new InvalidTokenError('not an access token')
    }
    return {
      userId: payload.sub,
      sessionId: payload.sid,
      role: payload.role as Role,
      issuedAt: new Date(payload.iat! * 1000),
      expiresAt: new Date(payload.exp! * 1000),
    }
  } catch (err) {
    if (err instanceof InvalidTokenError) throw err
    if (err instanceof joseErrors.JWTExpired) throw new InvalidTokenError('token expired')
    throw new InvalidTokenError('invalid token')
  }
}
