import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { createKeyring } from '../crypto/master-key.ts'
import { signAccessToken, verifyAccessToken } from './jwt.ts'

const keyring = createKeyring([randomBytes(32)])
const claims = { userId: '6f1c1f6e-0000-4000-8000-000000000001', sessionId: 's-1', role: 'operator' as const }
const now = new Date('2026-11-27T10:00:00Z')
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')

test('a fresh token verifies and carries the user, session and expiry', async () => {
  const { token, expiresIn } = await signAccessToken(keyring, claims, now)
  assert.equal(expiresIn, 900)
  const verified = await verifyAccessToken(keyring, token, now)
  assert.equal(verified.userId, claims.userId)
  assert.equal(verified.sessionId, 's-1')
  assert.equal(verified.expiresAt.getTime(), now.getTime() + 900_000)
})

test('refuses expired, tampered, alg:none and wrong-key tokens', async () => {
  const { token } = await signAccessToken(keyring, claims, now)
  await assert.rejects(verifyAccessToken(keyring, token, new Date(now.getTime() + 901_000)), { name: 'InvalidTokenError', message: 'token expired' })

  const [header, payload, signature] = token.split('.') as [string, string, string]
  const body = JSON.parse(Buffer.from(payload, 'base64url').toString())
  const promoted = `${header}.${b64({ ...body, role: 'admin', sub: 'someone-else' })}.${signature}`
  await assert.rejects(verifyAccessToken(keyring, promoted, now), { name: 'InvalidTokenError' })

  const none = `${b64({ alg: 'none', typ: 'JWT', kid: keyring.current.id })}.${payload}.`
  await assert.rejects(verifyAccessToken(keyring, none, now), { name: 'InvalidTokenError' })

  const other = createKeyring([randomBytes(32)])
  const foreign = (await signAccessToken(other, claims, now)).token
  await assert.rejects(verifyAccessToken(keyring, foreign, now), { message: 'token signed with an unknown key' })
  // Same kid, different key: the signature check still fails.
  const forged = `${header}.${payload}.${foreign.split('.')[2]}`
  await assert.rejects(verifyAccessToken(keyring, forged, now), { name: 'InvalidTokenError' })

  await assert.rejects(verifyAccessToken(keyring, 'not-a-jwt', now), { message: 'malformed token' })
})
