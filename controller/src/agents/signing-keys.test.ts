import assert from 'node:assert/strict'
import { randomBytes, sign, verify } from 'node:crypto'
import { after, before, test } from 'node:test'
import { eq } from 'drizzle-orm'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createKeyring } from '../crypto/master-key.ts'
import { SecretDecryptError } from '../crypto/secret-box.ts'
import { importEd25519PublicKey } from '../../../proto/src/sign.ts'
import { agentSigningKey } from './agents.sql.ts'
import { activeSigningKeys, activeSigningPublicKeys, ensureSigningKey, retireSigningKey, rotateSigningKey } from './signing-keys.ts'

let t: TestContext
before(async () => {
  t = await createTestContext()
})
after(() => t.close())

test('signing keys: created once, sealed by the vault, rotated with the old key valid until retired', async () => {
  const { db, keyring } = t.ctx
  assert.deepEqual(await activeSigningKeys(db, keyring), [])
  const first = await ensureSigningKey(db, keyring)
  assert.match(first, /^ed25519-[0-9a-f]{16}$/)
  assert.equal(await ensureSigningKey(db, keyring), first, 'an active key is not replaced')

  const [row] = await db.select().from(agentSigningKey).where(eq(agentSigningKey.keyId, first))
  assert.equal(row!.privateKey.kid, keyring.current.id, 'the private key is sealed with the master key')
  assert.equal(Buffer.from(row!.publicKey, 'base64').length, 32)
  assert.ok(!JSON.stringify(row).includes('PRIVATE KEY'))

  const [key] = await activeSigningKeys(db, keyring)
  const message = Buffer.from('assignment bytes')
  const signature = sign(null, message, key!.privateKey)
  assert.ok(verify(null, message, importEd25519PublicKey(key!.publicKey), signature), 'the opened private key matches the stored public key')
  await assert.rejects(activeSigningKeys(db, createKeyring([randomBytes(32)])), SecretDecryptError)

  const second = await rotateSigningKey(db, keyring)
  assert.notEqual(second, first)
  assert.deepEqual((await activeSigningKeys(db, keyring)).map((k) => k.keyId), [second, first], 'current first, the previous one still accepted')
  assert.deepEqual((await activeSigningPublicKeys(db)).map((k) => k.keyId), [second, first])
  await assert.rejects(retireSigningKey(db, second), /current key/)
  await retireSigningKey(db, first)
  assert.deepEqual((await activeSigningKeys(db, keyring)).map((k) => k.keyId), [second])
  assert.equal(await ensureSigningKey(db, keyring), second)
  await assert.rejects(retireSigningKey(db, first), /not found/)
})
