import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import * as OTPAuth from 'otpauth'
import { call, createTestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createApp } from '../app.ts'
import { updateSecuritySettings } from '../settings/service.ts'

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

const codeAt = (secret: string, at: Date) => new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), digits: 6, period: 30 }).generate({ timestamp: at.getTime() })
const step = () => (now = new Date(now.getTime() + 30_000))
const login = (username: string, password: string, totp?: string) =>
  call(app, 'POST', '/api/v1/auth/login', { body: { username, password, ...(totp ? { totp } : {}) } })

async function enrolled() {
  const u = await createTestUser(t.ctx, 'operator')
  const enrol = await call(app, 'POST', '/api/v1/auth/mfa/totp/enroll', { token: u.token })
  assert.equal(enrol.status, 200)
  assert.match(enrol.body.otpauth_uri, /^otpauth:\/\/totp\/OpsConductor:[^?]+\?.*secret=/)
  assert.match(enrol.body.secret, /^[A-Z2-7]{32}$/)
  const secret: string = enrol.body.secret
  const wrong = await call(app, 'POST', '/api/v1/auth/mfa/totp/confirm', { token: u.token, body: { code: '000000' === codeAt(secret, now) ? '111111' : '000000' } })
  assert.equal(wrong.status, 400)
  const confirmed = await call(app, 'POST', '/api/v1/auth/mfa/totp/confirm', { token: u.token, body: { code: codeAt(secret, now) } })
  assert.equal(confirmed.status, 200)
  assert.equal(confirmed.body.recovery_codes.length, 10)
  step()
  return { u, secret, recoveryCodes: confirmed.body.recovery_codes as string[] }
}

test('a TOTP user cannot sign in without a valid code, and a code works only once', async () => {
  const { u, secret } = await enrolled()
  const noCode = await login(u.user.username, u.password)
  assert.equal(noCode.status, 401)
  assert.equal(noCode.body.error.details.mfa_required, true)
  assert.equal((await login(u.user.username, u.password, '123456' === codeAt(secret, now) ? '654321' : '123456')).status, 401)
  const code = codeAt(secret, now)
  assert.equal((await login(u.user.username, u.password, code)).status, 200)
  assert.equal((await login(u.user.username, u.password, code)).status, 401, 'replayed code')
  step()
  assert.equal((await login(u.user.username, u.password, codeAt(secret, now))).status, 200)
  // A correct code never rescues a wrong password.
  step()
  assert.equal((await login(u.user.username, 'wrong password!!', codeAt(secret, now))).status, 401)
})

test('a recovery code works exactly once', async () => {
  const { u, recoveryCodes } = await enrolled()
  const code = recoveryCodes[3]!
  assert.equal((await login(u.user.username, u.password, code)).status, 200)
  assert.equal((await login(u.user.username, u.password, code)).status, 401)
  assert.equal((await login(u.user.username, u.password, recoveryCodes[4]!.toUpperCase())).status, 200)
})

test('disabling needs the password and a code', async () => {
  const { u, secret } = await enrolled()
  const noPassword = await call(app, 'POST', '/api/v1/auth/mfa/totp/disable', { token: u.token, body: { password: 'not my password', code: codeAt(secret, now) } })
  assert.equal(noPassword.status, 403)
  const ok = await call(app, 'POST', '/api/v1/auth/mfa/totp/disable', { token: u.token, body: { password: u.password, code: codeAt(secret, now) } })
  assert.equal(ok.status, 200)
  assert.equal((await login(u.user.username, u.password)).status, 200)
})

test('when admins require MFA, a user without it can only enrol until they do', async () => {
  const admin = await createTestUser(t.ctx, 'admin')
  const u = await createTestUser(t.ctx, 'operator')
  assert.equal((await call(app, 'PUT', '/api/v1/settings/security', { token: admin.token, body: { require_mfa: true } })).status, 200)
  const signedIn = await login(u.user.username, u.password)
  assert.equal(signedIn.body.mfa_enrollment_required, true)
  const blocked = await call(app, 'GET', '/api/v1/api-tokens', { token: signedIn.body.access_token })
  assert.equal(blocked.status, 403)
  assert.equal(blocked.body.error.details.restriction, 'mfa_enrollment')
  const enrol = await call(app, 'POST', '/api/v1/auth/mfa/totp/enroll', { token: signedIn.body.access_token })
  assert.equal(enrol.status, 200)
  await call(app, 'POST', '/api/v1/auth/mfa/totp/confirm', { token: signedIn.body.access_token, body: { code: codeAt(enrol.body.secret, now) } })
  assert.equal((await call(app, 'GET', '/api/v1/api-tokens', { token: signedIn.body.access_token })).status, 200)
  // The policy binds admins too: this one has no MFA yet, so only enrolment and the profile are open.
  assert.equal((await call(app, 'GET', '/api/v1/users', { token: admin.token })).status, 403)
  assert.equal((await call(app, 'GET', '/api/v1/auth/me', { token: admin.token })).status, 200)
  await updateSecuritySettings(t.ctx.db, { require_mfa: false }, 'test cleanup')
})

test("an admin can clear a user's MFA (lost device)", async () => {
  const admin = await createTestUser(t.ctx, 'admin')
  const { u } = await enrolled()
  const reset = await call(app, 'PUT', `/api/v1/users/${u.user.id}`, { token: admin.token, body: { reset_mfa: true } })
  assert.equal(reset.status, 200)
  assert.equal(reset.body.mfa_enabled, false)
  assert.equal((await login(u.user.username, u.password)).status, 200)
})
