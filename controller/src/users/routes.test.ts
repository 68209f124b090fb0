import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { call, createTestUser, type TestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createApp } from '../app.ts'

let t: TestContext
let app: ReturnType<typeof createApp>
let admin: TestUser
before(async () => {
  t = await createTestContext()
  app = createApp(t.ctx, { uiDir: '/nonexistent' })
  admin = await createTestUser(t.ctx, 'admin')
})
after(() => t.close())

describe('user administration', () => {
  test('create, read, update and delete a user', async () => {
    const created = await call(app, 'POST', '/api/v1/users', {
      token: admin.token,
      body: { username: 'carol', password: 'she has a long phrase', role: 'viewer', display_name: 'Carol', email: 'carol@example.test' },
    })
    assert.equal(created.status, 201)
    assert.equal(created.body.role, 'viewer')
    assert.equal(created.body.must_change_password, false)
    assert.equal(created.body.initial_password, undefined)
    for (const key of Object.keys(created.body)) assert.ok(!/hash|secret|recovery/.test(key), key)
    const id = created.body.id
    assert.equal((await call(app, 'GET', `/api/v1/users/${id}`, { token: admin.token })).body.email, 'carol@example.test')
    const updated = await call(app, 'PUT', `/api/v1/users/${id}`, { token: admin.token, body: { role: 'operator', display_name: null } })
    assert.equal(updated.status, 200)
    assert.equal(updated.body.role, 'operator')
    assert.equal(updated.body.display_name, null)
    assert.equal((await call(app, 'DELETE', `/api/v1/users/${id}`, { token: admin.token })).status, 200)
    assert.equal((await call(app, 'GET', `/api/v1/users/${id}`, { token: admin.token })).status, 404)
  })

  test('refuses a duplicate username (any case), a weak password and unknown fields with clear 4xx', async () => {
    await call(app, 'POST', '/api/v1/users', { token: admin.token, body: { username: 'dave', password: 'he has a long phrase', role: 'viewer' } })
    const dup = await call(app, 'POST', '/api/v1/users', { token: admin.token, body: { username: 'DAVE', password: 'another long one!', role: 'viewer' } })
    assert.equal(dup.status, 409)
    assert.equal(dup.body.error.code, 'CONFLICT')
    const weak = await call(app, 'POST', '/api/v1/users', { token: admin.token, body: { username: 'erin', password: 'short', role: 'viewer' } })
    assert.equal(weak.status, 400)
    assert.deepEqual(weak.body.error.details, [{ path: 'password', message: 'must be at least 12 characters' }])
    const bad = await call(app, 'POST', '/api/v1/users', { token: admin.token, body: { username: 'a b', role: 'root', extra: 1 } })
    assert.equal(bad.status, 400)
    const paths = bad.body.error.details.map((d: { path: string }) => d.path).sort()
    assert.deepEqual(paths, ['', 'role', 'username'])
    assert.equal((await call(app, 'GET', '/api/v1/users/not-a-uuid', { token: admin.token })).status, 404)
  })

  test('the last enabled admin cannot be demoted, disabled or deleted', async () => {
    const own = await createTestContext()
    const ownApp = createApp(own.ctx, { uiDir: '/nonexistent' })
    const only = await createTestUser(own.ctx, 'admin')
    for (const body of [{ role: 'operator' }, { disabled: true }]) {
      const res = await call(ownApp, 'PUT', `/api/v1/users/${only.user.id}`, { token: only.token, body })
      assert.equal(res.status, 409, JSON.stringify(body))
      assert.match(res.body.error.message, /last enabled admin/)
    }
    const second = await createTestUser(own.ctx, 'admin')
    assert.equal((await call(ownApp, 'DELETE', `/api/v1/users/${only.user.id}`, { token: only.token })).status, 409, 'cannot delete yourself')
    assert.equal((await call(ownApp, 'DELETE', `/api/v1/users/${only.user.id}`, { token: second.token })).status, 200)
    const demoteLast = await call(ownApp, 'PUT', `/api/v1/users/${second.user.id}`, { token: second.token, body: { role: 'viewer' } })
    assert.equal(demoteLast.status, 409)
    assert.equal((await call(ownApp, 'GET', `/api/v1/users/${second.user.id}`, { token: second.token })).body.role, 'admin')
    await own.close()
  })

  test('lists users with filters and a keyset cursor', async () => {
    for (const name of ['list-a', 'list-b', 'list-c']) {
      await call(app, 'POST', '/api/v1/users', { token: admin.token, body: { username: name, password: `long passphrase ${name.slice(-1)}!`, role: 'viewer' } })
    }
    const first = await call(app, 'GET', '/api/v1/users?q=list-&limit=2', { token: admin.token })
    assert.deepEqual(first.body.items.map((u: { username: string }) => u.username), ['list-a', 'list-b'])
    assert.ok(first.body.next)
    const second = await call(app, 'GET', `/api/v1/users?q=list-&limit=2&cursor=${first.body.next}`, { token: admin.token })
    assert.deepEqual(second.body.items.map((u: { username: string }) => u.username), ['list-c'])
    assert.equal(second.body.next, null)
    assert.equal((await call(app, 'GET', '/api/v1/users?cursor=%%%', { token: admin.token })).status, 400)
    assert.equal((await call(app, 'GET', '/api/v1/users?limit=9999', { token: admin.token })).status, 400)
  })
})

describe('self-registration', () => {
  test('is off by default; when an admin turns it on, new users are viewers', async () => {
    const off = await call(app, 'POST', '/api/v1/auth/register', { body: { username: 'newbie', password: 'a fresh long passphrase' } })
    assert.equal(off.status, 403)
    await call(app, 'PUT', '/api/v1/settings/security', { token: admin.token, body: { self_registration: true } })
    const on = await call(app, 'POST', '/api/v1/auth/register', { body: { username: 'newbie', password: 'a fresh long passphrase' } })
    assert.equal(on.status, 201)
    assert.equal(on.body.role, 'viewer')
    assert.equal(on.body.self_registered, true)
    const login = await call(app, 'POST', '/api/v1/auth/login', { body: { username: 'newbie', password: 'a fresh long passphrase' } })
    assert.equal(login.body.user.role, 'viewer')
    await call(app, 'PUT', '/api/v1/settings/security', { token: admin.token, body: { self_registration: false } })
    const settings = await call(app, 'PUT', '/api/v1/settings/security', { token: admin.token, body: { unknown: true } })
    assert.equal(settings.status, 400)
  })
})
