import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { desc, eq } from 'drizzle-orm'
import { call, createTestUser, type TestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { generateSshKey, hasSshKeygen } from '../../../test/harness/keys.ts'
import { auditLog } from '../audit/audit.sql.ts'
import type { AppContext } from '../context.ts'
import { target } from '../targets/targets.sql.ts'
import { credential } from './credentials.sql.ts'
import { createApp } from '../app.ts'

const credentialsApp = (ctx: AppContext) => createApp(ctx, { uiDir: '/nonexistent' })

let t: TestContext
let app: ReturnType<typeof credentialsApp>
let admin: TestUser
let operator: TestUser
let viewer: TestUser
before(async () => {
  t = await createTestContext()
  app = credentialsApp(t.ctx)
  admin = await createTestUser(t.ctx, 'admin')
  operator = await createTestUser(t.ctx, 'operator')
  viewer = await createTestUser(t.ctx, 'viewer')
})
after(() => t.close())

const PATH = '/api/v1/credentials'

describe('credentials API', () => {
  test('admins create, read, update and delete; responses show has_ flags, never secrets', async () => {
    const created = await call(app, 'POST', PATH, { token: admin.token, body: { name: 'linux-root', type: 'ssh_password', username: 'root', password: 'root pass 123', description: 'lab' } })
    assert.equal(created.status, 201, JSON.stringify(created.body))
    const { id, created_at, updated_at, ...rest } = created.body
    assert.match(id, /^[0-9a-f-]{36}$/)
    assert.ok(created_at && updated_at)
    assert.deepEqual(rest, { name: 'linux-root', type: 'ssh_password', description: 'lab', username: 'root', has_password: true, created_by: admin.user.username, updated_by: admin.user.username })
    const read = await call(app, 'GET', `${PATH}/${id}`, { token: operator.token })
    assert.equal(read.status, 200)
    assert.deepEqual(read.body, created.body)
    const updated = await call(app, 'PUT', `${PATH}/${id}`, { token: admin.token, body: { description: null, username: 'admin' } })
    assert.equal(updated.status, 200)
    assert.equal(updated.body.username, 'admin')
    assert.equal(updated.body.description, null)
    assert.equal(updated.body.has_password, true)
    assert.equal((await call(app, 'DELETE', `${PATH}/${id}`, { token: admin.token })).status, 200)
    assert.equal((await call(app, 'GET', `${PATH}/${id}`, { token: admin.token })).status, 404)
    const actions = (await t.ctx.db.select().from(auditLog).where(eq(auditLog.resourceId, id)).orderBy(auditLog.id)).map((r) => [r.action, r.resourceType, r.outcome])
    assert.deepEqual(actions, [
      ['credentials.create', 'credential', 'success'],
      ['credentials.update', 'credential', 'success'],
      ['credentials.delete', 'credential', 'success'],
    ])
  })

  test('operators read metadata but cannot write; viewers get 403; anonymous callers 401', async () => {
    const created = await call(app, 'POST', PATH, { token: admin.token, body: { name: 'role-check', type: 'snmp', version: 'v2c', community: 'public-ish' } })
    const id = created.body.id
    assert.equal((await call(app, 'GET', PATH, { token: operator.token })).status, 200)
    for (const [method, path, body] of [['POST', PATH, { name: 'x', type: 'snmp', version: 'v2c', community: 'c' }], ['PUT', `${PATH}/${id}`, { name: 'y' }], ['DELETE', `${PATH}/${id}`, undefined]] as const) {
      const res = await call(app, method, path, { token: operator.token, body })
      assert.equal(res.status, 403, `${method} ${path}`)
    }
    for (const path of [PATH, `${PATH}/${id}`]) {
      assert.equal((await call(app, 'GET', path, { token: viewer.token })).status, 403)
      assert.equal((await call(app, 'GET', path)).status, 401)
    }
    const denied = await t.ctx.db.select().from(auditLog).where(eq(auditLog.outcome, 'denied')).orderBy(desc(auditLog.id)).limit(1)
    assert.equal(denied[0]?.action, 'credentials.delete')
  })

  test('an ssh_key with the wrong passphrase is a 400 naming passphrase, and nothing is stored', { skip: !hasSshKeygen }, async () => {
    const own = await createTestContext()
    const ownApp = credentialsApp(own.ctx)
    const ownAdmin = await createTestUser(own.ctx, 'admin')
    const key = generateSshKey('ed25519', { passphrase: 'the right phrase' })
    const res = await call(ownApp, 'POST', PATH, { token: ownAdmin.token, body: { name: 'bad-pass', type: 'ssh_key', username: 'deploy', private_key: key.privateKey, passphrase: 'a wrong phrase' } })
    assert.equal(res.status, 400)
    assert.equal(res.body.error.code, 'VALIDATION')
    assert.deepEqual(res.body.error.details.map((d: { path: string }) => d.path), ['passphrase'])
    assert.match(res.body.error.message, /passphrase/)
    const corrupt = await call(ownApp, 'POST', PATH, { token: ownAdmin.token, body: { name: 'bad-key', type: 'ssh_key', username: 'deploy', private_key: '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n' } })
    assert.equal(corrupt.status, 400)
    assert.deepEqual(corrupt.body.error.details.map((d: { path: string }) => d.path), ['private_key'])
    assert.equal((await own.ctx.db.select().from(credential)).length, 0)
    const good = await call(ownApp, 'POST', PATH, { token: ownAdmin.token, body: { name: 'good-key', type: 'ssh_key', username: 'deploy', private_key: key.privateKey, passphrase: 'the right phrase' } })
    assert.equal(good.status, 201)
    assert.equal(good.body.key_type, 'ssh-ed25519')
    assert.equal(good.body.fingerprint, key.fingerprint)
    assert.equal(good.body.has_private_key, true)
    assert.equal(good.body.private_key, undefined)
    await own.close()
  })

  test('deleting a credential in use is a 409 listing the targets in details.targets', async () => {
    const created = await call(app, 'POST', PATH, { token: admin.token, body: { name: 'in-use', type: 'winrm', username: 'svc', password: 'winrm password' } })
    const [row] = await t.ctx.db
      .insert(target)
      .values({ name: 'win-01', address: '10.1.0.1', osType: 'windows', connection: { type: 'winrm', port: 5986, https: true, credential_id: created.body.id, verify_tls: true } })
      .returning()
    const res = await call(app, 'DELETE', `${PATH}/${created.body.id}`, { token: admin.token })
    assert.equal(res.status, 409)
    assert.equal(res.body.error.code, 'CONFLICT')
    assert.deepEqual(res.body.error.details, { targets: [{ id: row!.id, name: 'win-01' }] })
    assert.equal((await call(app, 'GET', `${PATH}/${created.body.id}`, { token: admin.token })).status, 200)
    // The same list, asked for before deleting (operators pick credentials, so they may see it).
    const using = await call(app, 'GET', `${PATH}/${created.body.id}/targets`, { token: operator.token })
    assert.equal(using.status, 200)
    assert.deepEqual(using.body, { items: [{ id: row!.id, name: 'win-01' }], next: null })
    assert.equal((await call(app, 'GET', `${PATH}/${created.body.id}/targets`, { token: viewer.token })).status, 403)
    assert.equal((await call(app, 'GET', `${PATH}/00000000-0000-4000-8000-000000000000/targets`, { token: operator.token })).status, 404)
  })

  test('bad bodies, a type change and unknown ids are clear 4xx', async () => {
    const bad = await call(app, 'POST', PATH, { token: admin.token, body: { name: '', type: 'database', driver: 'postgres', host: 'h', database: 'd', username: 'u' } })
    assert.equal(bad.status, 400)
    assert.deepEqual(bad.body.error.details.map((d: { path: string }) => d.path).sort(), ['name', 'password'])
    const created = await call(app, 'POST', PATH, { token: admin.token, body: { name: 'typed', type: 'ssh_password', username: 'u', password: 'p' } })
    const change = await call(app, 'PUT', `${PATH}/${created.body.id}`, { token: admin.token, body: { type: 'winrm' } })
    assert.equal(change.status, 400)
    assert.match(change.body.error.message, /type of a credential cannot change/)
    const dup = await call(app, 'POST', PATH, { token: admin.token, body: { name: 'TYPED', type: 'ssh_password', username: 'u', password: 'p' } })
    assert.equal(dup.status, 409)
    assert.equal((await call(app, 'GET', `${PATH}/not-a-uuid`, { token: admin.token })).status, 404)
    assert.equal((await call(app, 'PUT', `${PATH}/00000000-0000-4000-8000-000000000000`, { token: admin.token, body: { name: 'n' } })).status, 404)
    assert.equal((await call(app, 'GET', `${PATH}?type=nope`, { token: admin.token })).status, 400)
    assert.equal((await call(app, 'GET', `${PATH}?cursor=%%%`, { token: admin.token })).status, 400)
  })
})
