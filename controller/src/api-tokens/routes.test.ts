import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { call, createTestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createApp } from '../app.ts'

let t: TestContext
let app: ReturnType<typeof createApp>
let now: Date
before(async () => {
  t = await createTestContext()
  now = new Date()
  t.ctx.clock = () => now
  app = createApp(t.ctx, { uiDir: '/nonexistent' })
})
after(() => t.close())

test('a token is shown once, authenticates as Bearer opsc_…, and is never listed again', async () => {
  const op = await createTestUser(t.ctx, 'operator')
  const created = await call(app, 'POST', '/api/v1/api-tokens', { token: op.token, body: { name: 'ci deploys' } })
  assert.equal(created.status, 201)
  assert.match(created.body.token, /^opsc_[A-Za-z0-9_-]{40}$/)
  assert.equal(created.body.role, 'operator')
  assert.equal(created.body.prefix, created.body.token.slice(0, 12))
  const verify = await call(app, 'GET', '/api/v1/auth/verify', { token: created.body.token })
  assert.equal(verify.status, 200)
  assert.equal(verify.body.authenticated_by, 'api_token')
  assert.equal(verify.body.user.id, op.user.id)
  const list = await call(app, 'GET', '/api/v1/api-tokens', { token: op.token })
  assert.equal(list.body.items.length, 1)
  assert.ok(!JSON.stringify(list.body).includes(created.body.token))
  assert.ok(list.body.items[0].last_used_at)
})

test('a token cannot outrank its creator, and follows the creator down', async () => {
  const viewer = await createTestUser(t.ctx, 'viewer')
  const tooHigh = await call(app, 'POST', '/api/v1/api-tokens', { token: viewer.token, body: { name: 'x', role: 'admin' } })
  assert.equal(tooHigh.status, 403)
  const admin = await createTestUser(t.ctx, 'admin')
  const boss = await createTestUser(t.ctx, 'admin')
  const token = (await call(app, 'POST', '/api/v1/api-tokens', { token: admin.token, body: { name: 'admin automation' } })).body.token
  assert.equal((await call(app, 'GET', '/api/v1/users', { token })).status, 200)
  await call(app, 'PUT', `/api/v1/users/${admin.user.id}`, { token: boss.token, body: { role: 'viewer' } })
  assert.equal((await call(app, 'GET', '/api/v1/users', { token })).status, 403)
  await call(app, 'PUT', `/api/v1/users/${admin.user.id}`, { token: boss.token, body: { disabled: true } })
  assert.equal((await call(app, 'GET', '/api/v1/auth/verify', { token })).status, 401)
})

test('revoked and expired tokens stop working; others cannot revoke your token', async () => {
  const op = await createTestUser(t.ctx, 'operator')
  const stranger = await createTestUser(t.ctx, 'operator')
  const expiring = await call(app, 'POST', '/api/v1/api-tokens', { token: op.token, body: { name: 'short', expires_at: new Date(now.getTime() + 60_000).toISOString() } })
  assert.equal((await call(app, 'GET', '/api/v1/auth/verify', { token: expiring.body.token })).status, 200)
  now = new Date(now.getTime() + 61_000)
  assert.equal((await call(app, 'GET', '/api/v1/auth/verify', { token: expiring.body.token })).status, 401)

  const revocable = await call(app, 'POST', '/api/v1/api-tokens', { token: op.token, body: { name: 'revocable' } })
  assert.equal((await call(app, 'DELETE', `/api/v1/api-tokens/${revocable.body.id}`, { token: stranger.token })).status, 404)
  assert.equal((await call(app, 'GET', '/api/v1/auth/verify', { token: revocable.body.token })).status, 200)
  const revoked = await call(app, 'DELETE', `/api/v1/api-tokens/${revocable.body.id}`, { token: op.token })
  assert.equal(revoked.status, 200)
  assert.ok(revoked.body.revoked_at)
  const res = await call(app, 'GET', '/api/v1/auth/verify', { token: revocable.body.token })
  assert.equal(res.status, 401)
  assert.equal(res.body.error.message, 'invalid, expired or revoked API token')
  assert.equal((await call(app, 'GET', '/api/v1/auth/verify', { token: 'opsc_madeup' })).status, 401)
  const past = await call(app, 'POST', '/api/v1/api-tokens', { token: op.token, body: { name: 'past', expires_at: '2001-01-01T00:00:00Z' } })
  assert.equal(past.status, 400)
})
