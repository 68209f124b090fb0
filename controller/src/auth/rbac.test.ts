import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { Hono } from 'hono'
import { call, createTestUser, type TestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createApp } from '../app.ts'
import type { AppEnv } from '../context.ts'
import { allow, declaredRoutes } from './access.ts'
import { signAccessToken } from './jwt.ts'
import { roleAtLeast, ROLES, type Role } from './roles.ts'
import { createSession } from './sessions.ts'

let t: TestContext
let app: ReturnType<typeof createApp>
const users = {} as Record<Role, TestUser>
before(async () => {
  t = await createTestContext()
  app = createApp(t.ctx, { uiDir: '/nonexistent' })
  for (const role of ROLES) users[role] = await createTestUser(t.ctx, role)
})
after(() => t.close())

/** A new session per call: some routes (logout, revoke-all) end the session that calls them. */
async function freshToken(role: Role): Promise<string> {
  const u = users[role]
  const s = await createSession(t.ctx.db, { userId: u.user.id, clientAddress: null, userAgent: 'rbac-test' }, t.ctx.clock())
  return (await signAccessToken(t.ctx.keyring, { userId: u.user.id, sessionId: s.sessionId, role }, t.ctx.clock())).token
}

const DENIED_BY_ROLE = /^this action needs the (viewer|operator|admin) role/
const NEEDS_AUTH = 'authentication required'

test('every registered API route declares its access, and each role gets exactly what it declares', async () => {
  const routes = declaredRoutes(app)
  assert.ok(routes.length >= 20, `only ${routes.length} routes found`)
  const failures: string[] = []
  for (const route of routes) {
    const path = route.path.replace(/:[A-Za-z_]+/g, () => randomUUID())
    const body = route.method === 'GET' ? undefined : {}
    for (const caller of ['anonymous', ...ROLES] as const) {
      const token = caller === 'anonymous' ? undefined : await freshToken(caller)
      const res = await call(app, route.method, path, { token, body })
      const message: string = res.body?.error?.message ?? ''
      const deniedByRole = res.status === 403 && DENIED_BY_ROLE.test(message)
      const deniedForAuth = res.status === 401 && message === NEEDS_AUTH
      let expected: 'allowed' | 'role' | 'auth'
      if (route.access === 'public') expected = 'allowed'
      else if (caller === 'anonymous') expected = 'auth'
      else expected = roleAtLeast(caller, route.access) ? 'allowed' : 'role'
      const actual = deniedForAuth ? 'auth' : deniedByRole ? 'role' : 'allowed'
      if (res.status >= 500) failures.push(`${route.method} ${route.path} as ${caller}: ${res.status} ${message}`)
      else if (actual !== expected) failures.push(`${route.method} ${route.path} (${route.access}) as ${caller}: expected ${expected}, got ${res.status} ${message}`)
    }
  }
  assert.deepEqual(failures, [])
})

test('the declared access matches the documented policy for the security-sensitive routes', () => {
  const access = new Map(declaredRoutes(app).map((r) => [`${r.method} ${r.path}`, r.access]))
  assert.equal(access.get('POST /api/v1/auth/login'), 'public')
  assert.equal(access.get('GET /api/v1/users'), 'admin')
  assert.equal(access.get('POST /api/v1/users'), 'admin')
  assert.equal(access.get('DELETE /api/v1/users/:id'), 'admin')
  assert.equal(access.get('GET /api/v1/audit'), 'admin')
  assert.equal(access.get('PUT /api/v1/settings/security'), 'admin')
  assert.equal(access.get('GET /api/v1/auth/me'), 'viewer')
})

test('a route added without an access declaration stops the app from being built', () => {
  const undeclared = new Hono<AppEnv>()
    .get('/api/v1/things', allow('viewer'), (c) => c.json([]))
    .post('/api/v1/things', (c) => c.json({}, 201))
  assert.throws(() => declaredRoutes(undeclared), { message: 'routes without an access declaration (allow(...)): POST /api/v1/things' })
})
