import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { eq, sql } from 'drizzle-orm'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { generateSshKey, hasSshKeygen } from '../../../test/harness/keys.ts'
import { SecretDecryptError } from '../crypto/secret-box.ts'
import { AppError, ValidationError } from '../errors.ts'
import { parseWith } from '../http/validate.ts'
import { target } from '../targets/targets.sql.ts'
import { credential } from './credentials.sql.ts'
import { createCredential, getCredentialRow, listCredentials, openCredential, removeCredential, updateCredential } from './service.ts'
import { CreateCredentialInput, UpdateCredentialInput } from './types.ts'

let t: TestContext
before(async () => {
  t = await createTestContext()
})
after(() => t.close())

const create = (body: Record<string, unknown>) => createCredential(t.ctx, undefined, parseWith(CreateCredentialInput, body))
const update = (id: string, body: Record<string, unknown>) => updateCredential(t.ctx, undefined, id, parseWith(UpdateCredentialInput, body))

describe('credential service', () => {
  test('openCredential gives back every field, secrets included; the row holds only sealed data', async () => {
    const created = await create({ name: 'db-main', type: 'database', driver: 'postgres', host: 'db.internal', database: 'app', username: 'app', password: 'pg secret 1' })
    assert.equal(created.has_password, true)
    assert.equal(created.password, undefined)
    const opened = await openCredential(t.ctx, created.id)
    assert.deepEqual(opened, {
      id: created.id,
      name: 'db-main',
      description: null,
      type: 'database',
      driver: 'postgres',
      host: 'db.internal',
      database: 'app',
      username: 'app',
      password: 'pg secret 1',
      tls_mode: 'verify_full',
    })
    const row = await getCredentialRow(t.ctx.db, created.id)
    assert.ok(!JSON.stringify(row).includes('pg secret 1'))
    assert.equal(row.secret.kid, t.ctx.keyring.current.id)
  })

  test('a sealed secret copied onto another row does not open there (the row id is the AAD)', async () => {
    const a = await create({ name: 'aad-a', type: 'ssh_password', username: 'root', password: 'password of a' })
    const b = await create({ name: 'aad-b', type: 'ssh_password', username: 'root', password: 'password of b' })
    await t.ctx.db.execute(sql`update credential set secret = (select secret from credential where id = ${a.id}) where id = ${b.id}`)
    await assert.rejects(openCredential(t.ctx, b.id), (err: unknown) => err instanceof SecretDecryptError && err.reason === 'auth_failed')
    assert.equal((await openCredential(t.ctx, a.id) as { password: string }).password, 'password of a')
  })

  test('an update that omits a secret keeps it, null clears an optional one, and the type cannot change', async () => {
    const c = await create({ name: 'win', type: 'winrm', username: 'svc', password: 'winrm pw', domain: 'CORP' })
    const renamed = await update(c.id, { name: 'win-renamed', description: 'jump hosts', username: 'svc2' })
    assert.equal(renamed.credential.name, 'win-renamed')
    assert.equal(renamed.credential.username, 'svc2')
    assert.deepEqual(renamed.fields, ['username'])
    let opened = (await openCredential(t.ctx, c.id)) as Record<string, unknown>
    assert.equal(opened.password, 'winrm pw')
    assert.equal(opened.domain, 'CORP')
    await update(c.id, { domain: null, password: 'new winrm pw' })
    opened = (await openCredential(t.ctx, c.id)) as Record<string, unknown>
    assert.equal(opened.domain, undefined)
    assert.equal(opened.password, 'new winrm pw')
    await assert.rejects(update(c.id, { password: null }), (err: unknown) => err instanceof ValidationError && JSON.stringify(err.details).includes('"password"'))
    await assert.rejects(update(c.id, { type: 'ssh_password' }), (err: unknown) => err instanceof ValidationError && /cannot change/.test(err.message))
    await assert.rejects(update(c.id, { fingerprint: 'x' }), ValidationError)
  })

  test('changing the http_auth scheme starts from the new fields only', async () => {
    const c = await create({ name: 'api', type: 'http_auth', scheme: 'basic', username: 'u', password: 'basic pw' })
    const switched = await update(c.id, { scheme: 'bearer', token: 'a bearer token' })
    assert.equal(switched.credential.has_password, false)
    assert.equal(switched.credential.has_token, true)
    assert.equal(switched.credential.username, undefined)
    assert.deepEqual(await openCredential(t.ctx, c.id), { id: c.id, name: 'api', description: null, type: 'http_auth', scheme: 'bearer', token: 'a bearer token' })
  })

  test('ssh_key: a new passphrase is checked against the stored key; clearing it from an encrypted key is refused', { skip: !hasSshKeygen }, async () => {
    const key = generateSshKey('ed25519', { passphrase: 'first phrase' })
    const c = await create({ name: 'deploy-key', type: 'ssh_key', username: 'deploy', private_key: key.privateKey, passphrase: 'first phrase' })
    assert.equal(c.fingerprint, key.fingerprint)
    assert.equal(c.has_passphrase, true)
    const wrong = await update(c.id, { passphrase: 'not it' }).catch((e: unknown) => e)
    assert.ok(wrong instanceof ValidationError)
    assert.deepEqual((wrong.details as { path: string }[]).map((d) => d.path), ['passphrase'])
    await assert.rejects(update(c.id, { passphrase: null }), ValidationError)
    const other = generateSshKey('ecdsa')
    const replaced = await update(c.id, { private_key: other.privateKey, passphrase: null })
    assert.equal(replaced.credential.key_type, 'ecdsa-sha2-nistp256')
    assert.equal(replaced.credential.fingerprint, other.fingerprint)
    assert.equal(replaced.credential.has_passphrase, false)
  })

  test('names are unique regardless of case', async () => {
    await create({ name: 'Unique-One', type: 'ssh_password', username: 'u', password: 'p' })
    await assert.rejects(create({ name: 'unique-one', type: 'ssh_password', username: 'u', password: 'p' }), (err: unknown) => err instanceof AppError && err.code === 'CONFLICT')
    const raced = await Promise.allSettled([1, 2, 3].map(() => create({ name: 'raced', type: 'ssh_password', username: 'u', password: 'p' })))
    assert.equal(raced.filter((r) => r.status === 'fulfilled').length, 1)
    for (const r of raced) if (r.status === 'rejected') assert.ok(r.reason instanceof AppError && r.reason.code === 'CONFLICT', String(r.reason))
  })

  test('deleting a credential that a target (or a jump host) uses is refused, naming the targets', async () => {
    const direct = await create({ name: 'used-direct', type: 'ssh_password', username: 'u', password: 'p' })
    const jump = await create({ name: 'used-jump', type: 'ssh_password', username: 'u', password: 'p' })
    const free = await create({ name: 'unused', type: 'ssh_password', username: 'u', password: 'p' })
    const [bastion] = await t.ctx.db
      .insert(target)
      .values({ name: 'bastion', address: '10.0.0.1', osType: 'linux', connection: { type: 'ssh', port: 22, credential_id: direct.id, host_key_policy: 'strict', jump: [] } })
      .returning()
    const [web] = await t.ctx.db
      .insert(target)
      .values({ name: 'web-1', address: '10.0.0.2', osType: 'linux', connection: { type: 'ssh', port: 22, credential_id: null, host_key_policy: 'strict', jump: [{ target_id: bastion!.id, credential_id: jump.id }] } })
      .returning()
    const refused = await removeCredential(t.ctx, direct.id).catch((e: unknown) => e)
    assert.ok(refused instanceof AppError && refused.code === 'CONFLICT')
    assert.deepEqual(refused.details, { targets: [{ id: bastion!.id, name: 'bastion' }] })
    const viaJump = await removeCredential(t.ctx, jump.id).catch((e: unknown) => e)
    assert.deepEqual((viaJump as AppError).details, { targets: [{ id: web!.id, name: 'web-1' }] })
    assert.equal((await removeCredential(t.ctx, free.id)).name, 'unused')
    assert.equal((await t.ctx.db.select().from(credential).where(eq(credential.id, free.id))).length, 0)
  })

  test('lists by name with a type filter, a name search and a keyset cursor', async () => {
    for (const n of ['list-c', 'list-a', 'list-b']) await create({ name: n, type: 'snmp', version: 'v2c', community: `community ${n}` })
    const first = await listCredentials(t.ctx, { type: 'snmp', q: 'LIST-' }, { limit: 2 })
    assert.deepEqual(first.items.map((c) => c.name), ['list-a', 'list-b'])
    assert.ok(first.next)
    const second = await listCredentials(t.ctx, { type: 'snmp', q: 'list-' }, { limit: 2, cursor: first.next! })
    assert.deepEqual(second.items.map((c) => c.name), ['list-c'])
    assert.equal(second.next, null)
    assert.deepEqual((await listCredentials(t.ctx, { type: 'certificate' }, { limit: 10 })).items, [])
  })
})
