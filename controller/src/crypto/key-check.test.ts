import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { eq } from 'drizzle-orm'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { ConfigError } from '../config.ts'
import { credential } from '../credentials/credentials.sql.ts'
import { credentialAad } from '../credentials/service.ts'
import { setting } from '../settings/settings.sql.ts'
import { verifyMasterKey } from './key-check.ts'
import { createKeyring } from './master-key.ts'
import { KEY_CHECK_SETTING } from './sealed-columns.ts'
import { sealSecret } from './secret-box.ts'

let t: TestContext
before(async () => {
  t = await createTestContext()
})
after(() => t.close())

test('the first start records a sentinel; later starts open it with the same key, or with it among older keys', async () => {
  const [current, next] = [randomBytes(32), randomBytes(32)]
  const keyring = createKeyring([current])
  assert.deepEqual(await verifyMasterKey(t.ctx.db, keyring), { created: true, keyId: keyring.current.id })
  assert.deepEqual(await verifyMasterKey(t.ctx.db, keyring), { created: false, keyId: keyring.current.id })
  assert.equal((await verifyMasterKey(t.ctx.db, createKeyring([next, current]))).created, false)
  const [row] = await t.ctx.db.select().from(setting).where(eq(setting.key, KEY_CHECK_SETTING))
  assert.equal((row?.value as { kid: string }).kid, keyring.current.id)
})

test('a wrong master key fails loudly with one line naming OPSC_MASTER_KEY and the configured key id', async () => {
  const wrong = createKeyring([randomBytes(32)])
  await assert.rejects(verifyMasterKey(t.ctx.db, wrong), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    assert.equal(err.message, `OPSC_MASTER_KEY: cannot decrypt credentials with the configured master key (key id ${wrong.current.id})`)
    return true
  })
})

test('on a database that already holds secrets but no sentinel, a key that cannot open them is refused and nothing is recorded', async () => {
  const own = await createTestContext()
  const original = createKeyring([randomBytes(32)])
  const id = randomUUID()
  await own.ctx.db.insert(credential).values({ id, name: 'legacy', type: 'ssh_password', metadata: {}, secret: sealSecret(original, '{"password":"x"}', credentialAad(id)) })
  await assert.rejects(verifyMasterKey(own.ctx.db, createKeyring([randomBytes(32)])), /cannot decrypt credentials with the configured master key/)
  assert.equal((await own.ctx.db.select().from(setting).where(eq(setting.key, KEY_CHECK_SETTING))).length, 0)
  assert.equal((await verifyMasterKey(own.ctx.db, original)).created, true)
  await own.close()
})
