import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { after, before, test } from 'node:test'
import * as OTPAuth from 'otpauth'
import { call, type CallResult } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createApp } from '../app.ts'
import { auditLog } from '../audit/audit.sql.ts'
import { createLogger } from '../log.ts'
import { appUser } from '../users/users.sql.ts'
import { ensureFirstAdmin } from '../users/service.ts'

const logLines: string[] = []
let t: TestContext
let app: ReturnType<typeof createApp>
before(async () => {
  const destination = new Writable({ write: (chunk, _e, cb) => (logLines.push(String(chunk)), cb()) })
  t = await createTestContext({ log: createLogger({ level: 'trace', destination }) })
  app = createApp(t.ctx, { uiDir: '/nonexistent' })
})
after(() => t.close())

test('no password, hash, token or TOTP secret reaches a log line, an audit row or any response but the one that issues it', async () => {
  const responses: { what: string; res: CallResult }[] = []
  const record = async (what: string, p: Promise<CallResult>) => {
    const res = await p
    responses.push({ what, res })
    return res
  }
  const adminPassword = 'the very first passphrase'
  await ensureFirstAdmin(t.ctx.db, { password: adminPassword }, new Date())
  const admin = await record('login admin', call(app, 'POST', '/api/v1/auth/login', { body: { username: 'admin', password: adminPassword } }))
  const token = admin.body.access_token as string
  await record('wrong login', call(app, 'POST', '/api/v1/auth/login', { body: { username: 'admin', password: 'a wrong guess here' } }))
  const userPassword = 'frank types this phrase'
  const frank = await record('create frank', call(app, 'POST', '/api/v1/users', { token, body: { username: 'frank', password: userPassword, role: 'operator' } }))
  const generated = await record('create gina', call(app, 'POST', '/api/v1/users', { token, body: { username: 'gina', role: 'viewer' } }))
  const resetPassword = 'an admin reset phrase'
  await record('reset frank', call(app, 'PUT', `/api/v1/users/${frank.body.id}`, { token, body: { password: resetPassword } }))
  const apiToken = await record('api token', call(app, 'POST', '/api/v1/api-tokens', { token, body: { name: 'automation' } }))
  const enrol = await record('mfa enroll', call(app, 'POST', '/api/v1/auth/mfa/totp/enroll', { token }))
  const code = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(enrol.body.secret) }).generate()
  const confirm = await record('mfa confirm', call(app, 'POST', '/api/v1/auth/mfa/totp/confirm', { token, body: { code } }))
  const refreshed = await record('refresh', call(app, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: admin.body.refresh_token } }))
  const newPassword = 'a replacement chief phrase'
  await record('change password', call(app, 'PUT', '/api/v1/auth/me', { token: refreshed.body.access_token, body: { current_password: adminPassword, new_password: newPassword } }))
  await record('list users', call(app, 'GET', '/api/v1/users', { token: refreshed.body.access_token }))
  await record('me', call(app, 'GET', '/api/v1/auth/me', { token: refreshed.body.access_token }))
  await record('audit', call(app, 'GET', '/api/v1/audit?limit=500', { token: refreshed.body.access_token }))
  await record('tokens', call(app, 'GET', '/api/v1/api-tokens', { token: refreshed.body.access_token }))

  const hashes = (await t.ctx.db.select({ h: appUser.passwordHash }).from(appUser)).map((r) => r.h)
  const issued: Record<string, { value: string; issuedBy: string | null }> = {
    adminPassword: { value: adminPassword, issuedBy: null },
    userPassword: { value: userPassword, issuedBy: null },
    resetPassword: { value: resetPassword, issuedBy: null },
    newPassword: { value: newPassword, issuedBy: null },
    generatedPassword: { value: generated.body.initial_password, issuedBy: 'create gina' },
    accessToken: { value: token, issuedBy: 'login admin' },
    refreshToken: { value: admin.body.refresh_token, issuedBy: 'login admin' },
    rotatedRefreshToken: { value: refreshed.body.refresh_token, issuedBy: 'refresh' },
    apiToken: { value: apiToken.body.token, issuedBy: 'api token' },
    totpSecret: { value: enrol.body.secret, issuedBy: 'mfa enroll' },
    recoveryCode: { value: confirm.body.recovery_codes[0], issuedBy: 'mfa confirm' },
    ...Object.fromEntries(hashes.map((h, i) => [`passwordHash${i}`, { value: h.split('$').at(-1)!, issuedBy: null }])),
  }
  const auditRows = JSON.stringify(await t.ctx.db.select().from(auditLog))
  assert.ok(auditRows.includes('auth.login') && auditRows.includes('api_tokens.create'), 'the audit trail recorded the actions')
  const logs = logLines.join('')
  assert.ok(logs.includes('http.request'), 'the log was captured')
  for (const [name, { value, issuedBy }] of Object.entries(issued)) {
    assert.ok(typeof value === 'string' && value.length >= 12, `${name} was produced`)
    assert.ok(!logs.includes(value), `${name} leaked into the log`)
    assert.ok(!auditRows.includes(value), `${name} leaked into the audit trail`)
    const shownIn = responses.filter((r) => JSON.stringify(r.res.body).includes(value) || [...r.res.headers.values()].some((h) => h.includes(value))).map((r) => r.what)
    assert.deepEqual(shownIn, issuedBy ? [issuedBy] : [], `${name} appeared in responses: ${shownIn.join(', ')}`)
  }
})
