import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { call, createTestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createApp } from '../app.ts'
import { createKeyring } from '../crypto/master-key.ts'
import { signAccessToken } from './jwt.ts'

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

const login = (username: string, password: string, extra: Record<string, unknown> = {}) =>
  call(app, 'POST', '/api/v1/auth/login', { body: { username, password, ...extra } })

describe('login', () => {
  test('returns bearer tokens and the user; a wrong password or unknown user fail identically', async () => {
    const u = await createTestUser(t.ctx, 'operator')
    const ok = await login(u.user.username, u.password)
    assert.equal(ok.status, 200)
    assert.equal(ok.body.token_type, 'Bearer')
    assert.equal(ok.body.expires_in, 900)
    assert.match(ok.body.refresh_token, /^opsc_rt_/)
    assert.deepEqual(ok.body.user, { id: u.user.id, username: u.user.username, role: 'operator' })
    const verify = await call(app, 'GET', '/api/v1/auth/verify', { token: ok.body.access_token })
    assert.equal(verify.status, 200)
    assert.equal(verify.body.user.id, u.user.id)

    const wrong = await login(u.user.username, 'not the password')
    const unknown = await login('nobody-at-all', 'not the password')
    assert.equal(wrong.status, 401)
    assert.equal(unknown.status, 401)
    const strip = (b: { error: { request_id?: string } }) => ({ ...b.error, request_id: undefined })
    assert.deepEqual(strip(wrong.body), strip(unknown.body))
    assert.equal(wrong.body.error.message, 'invalid username or password')
  })

  test('username matching ignores case; a disabled account cannot sign in', async () => {
    const u = await createTestUser(t.ctx, 'viewer')
    assert.equal((await login(u.user.username.toUpperCase(), u.password)).status, 200)
    const admin = await createTestUser(t.ctx, 'admin')
    await call(app, 'PUT', `/api/v1/users/${u.user.id}`, { token: admin.token, body: { disabled: true } })
    const res = await login(u.user.username, u.password)
    assert.equal(res.status, 401)
    assert.equal(res.body.error.message, 'invalid username or password')
  })

  test('bad input is a 400 listing the problems, never a 500', async () => {
    const res = await call(app, 'POST', '/api/v1/auth/login', { body: { username: 'x' } })
    assert.equal(res.status, 400)
    assert.equal(res.body.error.code, 'VALIDATION')
    assert.deepEqual(res.body.error.details.map((d: { path: string }) => d.path), ['password'])
    const notJson = await app.request('/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":' })
    assert.equal(notJson.status, 400)
    const noType = await app.request('/api/v1/auth/login', { method: 'POST', body: '{}' })
    assert.equal(noType.status, 400)
  })

  test('20 wrong passwords in a row are throttled with Retry-After; the right password works once it passes', async () => {
    const u = await createTestUser(t.ctx, 'viewer')
    const statuses: number[] = []
    let last
    for (let i = 0; i < 20; i++) {
      last = await login(u.user.username, `wrong-${i}`)
      statuses.push(last.status)
    }
    assert.deepEqual(statuses.slice(0, 5), [401, 401, 401, 401, 401])
    assert.equal(last!.status, 429)
    assert.equal(last!.body.error.code, 'RATE_LIMITED')
    const retryAfter = Number(last!.headers.get('retry-after'))
    assert.ok(retryAfter >= 1, `Retry-After ${retryAfter}`)
    // Even the right password is refused while locked…
    assert.equal((await login(u.user.username, u.password)).status, 429)
    // …and accepted once the lock has passed.
    now = new Date(now.getTime() + retryAfter * 1000)
    assert.equal((await login(u.user.username, u.password)).status, 200)
    // A success clears the count: one more mistake is a plain 401 again.
    assert.equal((await login(u.user.username, 'wrong again')).status, 401)
  })
})

describe('access tokens', () => {
  test('expired, tampered, alg:none and wrong-key tokens are 401', async () => {
    const u = await createTestUser(t.ctx, 'admin')
    const ok = await call(app, 'GET', '/api/v1/users', { token: u.token })
    assert.equal(ok.status, 200)
    const [h, p, s] = u.token.split('.') as [string, string, string]
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString())
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
    const foreign = (await signAccessToken(createKeyring([Buffer.alloc(32, 9)]), { userId: u.user.id, sessionId: u.sessionId, role: 'admin' }, now)).token
    const bad = {
      tampered: `${h}.${enc({ ...payload, role: 'admin', sub: '00000000-0000-4000-8000-000000000000' })}.${s}`,
      algNone: `${enc({ alg: 'none', typ: 'JWT' })}.${p}.`,
      wrongKey: foreign,
      garbage: 'abc.def.ghi',
    }
    for (const [name, token] of Object.entries(bad)) {
      const res = await call(app, 'GET', '/api/v1/users', { token })
      assert.equal(res.status, 401, name)
      assert.equal(res.body.error.code, 'UNAUTHENTICATED', name)
    }
    const later = now
    now = new Date(now.getTime() + 16 * 60_000)
    const expired = await call(app, 'GET', '/api/v1/users', { token: u.token })
    now = later
    assert.equal(expired.status, 401)
    assert.equal(expired.body.error.message, 'token expired')
    const scheme = await call(app, 'GET', '/api/v1/users', { headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } })
    assert.equal(scheme.status, 401)
  })

  test('a viewer calling an operator or admin route gets 403; no credentials get 401', async () => {
    const viewer = await createTestUser(t.ctx, 'viewer')
    const res = await call(app, 'GET', '/api/v1/users', { token: viewer.token })
    assert.equal(res.status, 403)
    assert.equal(res.body.error.code, 'FORBIDDEN')
    assert.equal((await call(app, 'GET', '/api/v1/users')).status, 401)
  })

  test('a role change or disabling applies to the very next request', async () => {
    const admin = await createTestUser(t.ctx, 'admin')
    const other = await createTestUser(t.ctx, 'admin')
    assert.equal((await call(app, 'GET', '/api/v1/users', { token: other.token })).status, 200)
    await call(app, 'PUT', `/api/v1/users/${other.user.id}`, { token: admin.token, body: { role: 'viewer' } })
    assert.equal((await call(app, 'GET', '/api/v1/users', { token: other.token })).status, 403)
    await call(app, 'PUT', `/api/v1/users/${other.user.id}`, { token: admin.token, body: { disabled: true } })
    assert.equal((await call(app, 'GET', '/api/v1/auth/verify', { token: other.token })).status, 401)
  })
})

describe('refresh tokens', () => {
  test('rotate; presenting a rotated one again revokes the whole family', async () => {
    const u = await createTestUser(t.ctx, 'operator')
    const first = await login(u.user.username, u.password)
    const second = await call(app, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: first.body.refresh_token } })
    assert.equal(second.status, 200)
    assert.notEqual(second.body.refresh_token, first.body.refresh_token)
    assert.equal((await call(app, 'GET', '/api/v1/auth/verify', { token: second.body.access_token })).status, 200)

    const reuse = await call(app, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: first.body.refresh_token } })
    assert.equal(reuse.status, 401)
    assert.match(reuse.body.error.message, /already used/)
    // Every token of the family is dead: both access tokens and the newest refresh token.
    for (const token of [first.body.access_token, second.body.access_token]) {
      assert.equal((await call(app, 'GET', '/api/v1/auth/verify', { token })).status, 401)
    }
    assert.equal((await call(app, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: second.body.refresh_token } })).status, 401)
    // Other sessions of the same user are untouched.
    assert.equal((await call(app, 'GET', '/api/v1/auth/verify', { token: u.token })).status, 200)
  })

  test('an expired or unknown refresh token is 401', async () => {
    const u = await createTestUser(t.ctx, 'viewer')
    assert.equal((await call(app, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: 'opsc_rt_nope' } })).status, 401)
    const later = now
    now = new Date(now.getTime() + 8 * 24 * 3600_000)
    const res = await call(app, 'POST', '/api/v1/auth/refresh', { body: { refresh_token: u.refreshToken } })
    now = later
    assert.equal(res.status, 401)
    assert.equal(res.body.error.message, 'refresh token expired')
  })

  test('logout ends the session; revoke-all ends every session', async () => {
    const u = await createTestUser(t.ctx, 'viewer')
    const a = await login(u.user.username, u.password)
    const b = await login(u.user.username, u.password)
    assert.equal((await call(app, 'POST', '/api/v1/auth/logout', { token: a.body.access_token })).status, 200)
    assert.equal((await call(app, 'GET', '/api/v1/auth/verify', { token: a.body.access_token })).status, 401)
    assert.equal((await call(app, 'GET', '/api/v1/auth/verify', { token: b.body.access_token })).status, 200)
    const all = await call(app, 'POST', '/api/v1/auth/revoke-all', { token: b.body.access_token })
    assert.equal(all.status, 200)
    assert.ok(all.body.sessions_revoked >= 2)
    assert.equal((await call(app, 'GET', '/api/v1/auth/verify', { token: b.body.access_token })).status, 401)
    assert.equal((await call(app, 'GET', '/api/v1/auth/verify', { token: u.token })).status, 401)
  })

  test("only an admin may revoke another user's sessions", async () => {
    const viewer = await createTestUser(t.ctx, 'viewer')
    const victim = await createTestUser(t.ctx, 'viewer')
    const admin = await createTestUser(t.ctx, 'admin')
    assert.equal((await call(app, 'POST', '/api/v1/auth/revoke-all', { token: viewer.token, body: { user_id: victim.user.id } })).status, 403)
    assert.equal((await call(app, 'GET', '/api/v1/auth/verify', { token: victim.token })).status, 200)
    assert.equal((await call(app, 'POST', '/api/v1/auth/revoke-all', { token: admin.token, body: { user_id: victim.user.id } })).status, 200)
    assert.equal((await call(app, 'GET', '/api/v1/auth/verify', { token: victim.token })).status, 401)
  })
})

describe('cookie sessions (web UI)', () => {
  function cookiesFrom(headers: Headers): Record<string, string> {
    const jar: Record<string, string> = {}
    for (const line of headers.getSetCookie()) {
      const [pair] = line.split(';')
      const [name, value] = pair!.split('=') as [string, string]
      jar[name] = value
    }
    return jar
  }

  test('sets httpOnly, Secure, SameSite=Strict cookies and requires the CSRF header on changes', async () => {
    const u = await createTestUser(t.ctx, 'viewer')
    const res = await login(u.user.username, u.password, { use_cookies: true })
    assert.equal(res.status, 200)
    assert.equal(res.body.access_token, undefined)
    assert.equal(res.body.refresh_token, undefined)
    const setCookies = res.headers.getSetCookie()
    for (const name of ['opsc_access', 'opsc_refresh']) {
      const line = setCookies.find((l) => l.startsWith(`${name}=`))!
      assert.match(line, /HttpOnly/i)
      assert.match(line, /Secure/i)
      assert.match(line, /SameSite=Strict/i)
    }
    const jar = cookiesFrom(res.headers)
    assert.equal(jar.opsc_csrf, res.body.csrf_token)
    const cookie = `opsc_access=${jar.opsc_access}; opsc_csrf=${jar.opsc_csrf}`
    assert.equal((await call(app, 'GET', '/api/v1/auth/me', { headers: { cookie } })).status, 200)
    const noCsrf = await call(app, 'PUT', '/api/v1/auth/me', { headers: { cookie }, body: { display_name: 'X' } })
    assert.equal(noCsrf.status, 403)
    assert.match(noCsrf.body.error.message, /CSRF/)
    const wrongCsrf = await call(app, 'PUT', '/api/v1/auth/me', { headers: { cookie, 'x-csrf-token': 'nope' }, body: { display_name: 'X' } })
    assert.equal(wrongCsrf.status, 403)
    const withCsrf = await call(app, 'PUT', '/api/v1/auth/me', { headers: { cookie, 'x-csrf-token': jar.opsc_csrf! }, body: { display_name: 'Cookie User' } })
    assert.equal(withCsrf.status, 200)
    assert.equal(withCsrf.body.display_name, 'Cookie User')

    const refreshCookie = `opsc_refresh=${jar.opsc_refresh}; opsc_csrf=${jar.opsc_csrf}`
    assert.equal((await call(app, 'POST', '/api/v1/auth/refresh', { headers: { cookie: refreshCookie } })).status, 403)
    const refreshed = await call(app, 'POST', '/api/v1/auth/refresh', { headers: { cookie: refreshCookie, 'x-csrf-token': jar.opsc_csrf! } })
    assert.equal(refreshed.status, 200)
    assert.equal(refreshed.body.refresh_token, undefined)
    assert.ok(cookiesFrom(refreshed.headers).opsc_access)
  })
})

describe('profile and password', () => {
  test('changing the password needs the current one and ends the other sessions', async () => {
    const u = await createTestUser(t.ctx, 'viewer')
    const other = await login(u.user.username, u.password)
    const wrong = await call(app, 'PUT', '/api/v1/auth/me', { token: u.token, body: { current_password: 'nope nope nope', new_password: 'a new long passphrase' } })
    assert.equal(wrong.status, 403)
    const weak = await call(app, 'PUT', '/api/v1/auth/me', { token: u.token, body: { current_password: u.password, new_password: 'short' } })
    assert.equal(weak.status, 400)
    const ok = await call(app, 'PUT', '/api/v1/auth/me', { token: u.token, body: { current_password: u.password, new_password: 'a new long passphrase' } })
    assert.equal(ok.status, 200)
    assert.equal((await call(app, 'GET', '/api/v1/auth/verify', { token: u.token })).status, 200)
    assert.equal((await call(app, 'GET', '/api/v1/auth/verify', { token: other.body.access_token })).status, 401)
    assert.equal((await login(u.user.username, u.password)).status, 401)
    assert.equal((await login(u.user.username, 'a new long passphrase')).status, 200)
  })

  test('a generated password must be changed before anything else', async () => {
    const admin = await createTestUser(t.ctx, 'admin')
    const created = await call(app, 'POST', '/api/v1/users', { token: admin.token, body: { username: `gen-${process.pid}`, role: 'operator' } })
    assert.equal(created.status, 201)
    assert.equal(created.body.must_change_password, true)
    const session = await login(created.body.username, created.body.initial_password)
    assert.equal(session.body.must_change_password, true)
    const blocked = await call(app, 'GET', '/api/v1/api-tokens', { token: session.body.access_token })
    assert.equal(blocked.status, 403)
    assert.equal(blocked.body.error.details.restriction, 'password_change')
    const changed = await call(app, 'PUT', '/api/v1/auth/me', {
      token: session.body.access_token,
      body: { current_password: created.body.initial_password, new_password: 'operator chose this one' },
    })
    assert.equal(changed.status, 200)
    assert.equal((await call(app, 'GET', '/api/v1/api-tokens', { token: session.body.access_token })).status, 200)
  })
})
