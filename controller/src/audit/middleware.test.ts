import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { after, before, beforeEach, describe, test } from 'node:test'
import { Hono } from 'hono'
import { requestId } from 'hono/request-id'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { allow } from '../auth/access.ts'
import type { Principal } from '../auth/principal.ts'
import type { AppContext, AppEnv } from '../context.ts'
import { NotFoundError } from '../errors.ts'
import { apiNotFound, onError } from '../http/errors.ts'
import { createLogger } from '../log.ts'
import { auditLog } from './audit.sql.ts'
import { auditMutations, deriveAction, outcomeOf } from './middleware.ts'
import { listAudit, verifyAuditChain, type AuditEvent } from './service.ts'

let t: TestContext
before(async () => {
  t = await createTestContext()
})
after(() => t.close())
beforeEach(() => t.ctx.db.delete(auditLog))

const operator: Principal = { kind: 'user', userId: 'u-op', username: 'olga', role: 'operator', sessionId: 's-1', via: 'bearer', restriction: null }
const viewer: Principal = { ...operator, userId: 'u-view', username: 'vic', role: 'viewer' }
const token: Principal = { kind: 'api_token', userId: 'u-op', username: 'olga', role: 'admin', tokenId: 't-1', tokenName: 'ci', restriction: null }

function testApp(principal: Principal | undefined, ctx: AppContext = t.ctx) {
  const app = new Hono<AppEnv>()
  app.use(requestId({ headerName: 'x-request-id' }))
  app.use(async (c, next) => {
    c.set('ctx', ctx)
    c.set('log', ctx.log)
    c.set('principal', principal)
    c.set('clientAddress', '198.51.100.9')
    await next()
  })
  app.use('/api/*', auditMutations())
  app.get('/api/v1/users', allow('viewer'), (c) => c.json([]))
  app.post('/api/v1/users', allow('operator'), (c) => {
    c.set('audit', { resourceId: 'u-new', summary: { username: 'dave', role: 'viewer', password: 'initial-pw' } })
    return c.json({ id: 'u-new' }, 201)
  })
  app.put('/api/v1/users/:id', allow('operator'), (c) => c.json({ id: c.req.param('id') }))
  app.delete('/api/v1/users/:id', allow('operator'), (c) => {
    throw new NotFoundError('user', c.req.param('id'))
  })
  app.post('/api/v1/jobs/:id/run', allow('operator'), (c) => c.json({ run: 1 }, 202))
  app.post('/api/v1/auth/revoke-all', allow('viewer'), (c) => c.body(null, 204))
  app.post('/api/v1/auth/login', allow('public'), (c) => {
    c.set('audit', { skip: true })
    return c.json({ ok: true })
  })
  app.post('/api/v1/boom', allow('viewer'), () => {
    throw new Error('kaboom')
  })
  app.post('/elsewhere', (c) => c.json({}))
  app.all('/api/*', apiNotFound)
  app.onError(onError)
  return app
}

async function rows(): Promise<AuditEvent[]> {
  return (await listAudit(t.ctx.db, {}, { limit: 100 })).items.reverse()
}

describe('auditMutations', () => {
  test('records a successful mutation with actor, resource, address, request id and redacted summary', async () => {
    const res = await testApp(operator).request('/api/v1/users', { method: 'POST', body: '{}' })
    assert.equal(res.status, 201)
    const [row, ...rest] = await rows()
    assert.equal(rest.length, 0)
    assert.deepEqual(
      { actor: row?.actor, action: row?.action, resource: row?.resource, client_address: row?.client_address, request_id: row?.request_id, outcome: row?.outcome, summary: row?.summary },
      {
        actor: { type: 'user', id: 'u-op', name: 'olga' }, action: 'users.create', resource: { type: 'users', id: 'u-new' },
        client_address: '198.51.100.9', request_id: res.headers.get('x-request-id'), outcome: 'success',
        summary: { username: 'dave', role: 'viewer', password: '[redacted]', status: 201 },
      },
    )
  })

  test('derives action and resource id from the route', async () => {
    const app = testApp(token)
    await app.request('/api/v1/users/u-7', { method: 'PUT' })
    await app.request('/api/v1/jobs/j-3/run', { method: 'POST' })
    await app.request('/api/v1/auth/revoke-all', { method: 'POST' })
    assert.deepEqual(
      (await rows()).map((r) => [r.action, r.resource.type, r.resource.id, r.actor.type, r.outcome]),
      [
        ['users.update', 'users', 'u-7', 'api_token', 'success'],
        ['jobs.run', 'jobs', 'j-3', 'api_token', 'success'],
        ['auth.revoke_all', 'auth', null, 'api_token', 'success'],
      ],
    )
  })

  test('records denials, including the resource the caller was refused', async () => {
    await testApp(viewer).request('/api/v1/jobs/j-9/run', { method: 'POST' })
    await testApp(undefined).request('/api/v1/users/u-1', { method: 'DELETE' })
    assert.deepEqual(
      (await rows()).map((r) => [r.action, r.resource.id, r.actor.type, r.outcome, r.summary]),
      [
        ['jobs.run', 'j-9', 'user', 'denied', { status: 403, error: 'FORBIDDEN' }],
        ['users.delete', 'u-1', 'anonymous', 'denied', { status: 401, error: 'UNAUTHENTICATED' }],
      ],
    )
  })

  test('records handlers that threw, known errors and crashes alike', async () => {
    const app = testApp(operator)
    assert.equal((await app.request('/api/v1/users/u-404', { method: 'DELETE' })).status, 404)
    assert.equal((await app.request('/api/v1/boom', { method: 'POST' })).status, 500)
    assert.deepEqual(
      (await rows()).map((r) => [r.action, r.outcome, r.summary]),
      [
        ['users.delete', 'failure', { status: 404, error: 'NOT_FOUND' }],
        ['boom.create', 'failure', { status: 500, error: 'INTERNAL' }],
      ],
    )
  })

  test('leaves reads, skipped requests, unmatched paths and non-API paths alone', async () => {
    const app = testApp(operator)
    await app.request('/api/v1/users')
    await app.request('/api/v1/users', { method: 'HEAD' })
    await app.request('/api/v1/users', { method: 'OPTIONS' })
    await app.request('/api/v1/auth/login', { method: 'POST' })
    assert.equal((await app.request('/api/v1/nope', { method: 'POST' })).status, 404)
    await app.request('/elsewhere', { method: 'POST' })
    assert.deepEqual(await rows(), [])
  })

  test('a failed audit write is logged and does not change the response', async () => {
    const lines: string[] = []
    const destination = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk))
        cb()
      },
    })
    // An invalid clock makes appendAudit refuse the row: a real failure, no mocks.
    const ctx: AppContext = { ...t.ctx, log: createLogger({ level: 'info', destination }), clock: () => new Date(Number.NaN) }
    const res = await testApp(operator, ctx).request('/api/v1/users/u-1', { method: 'PUT' })
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), { id: 'u-1' })
    assert.deepEqual(await rows(), [])
    const record = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((r) => r.msg === 'audit.append_failed')
    assert.ok(record, lines.join(''))
    assert.equal(record.level, 'error')
    assert.equal(record.action, 'users.update')
    assert.equal(record.requestId, res.headers.get('x-request-id'))
  })

  test('concurrent requests still leave an intact chain', async () => {
    const app = testApp(operator)
    await Promise.all(Array.from({ length: 20 }, (_, i) => app.request(`/api/v1/users/u-${i}`, { method: 'PUT' })))
    const result = await verifyAuditChain(t.ctx.db)
    assert.equal(result.ok, true)
    assert.equal(result.rows, 20)
  })
})

describe('deriveAction', () => {
  test('maps methods and routes to dotted actions', () => {
    const cases: [string, string, string, string | null][] = [
      ['POST', '/api/v1/users', 'users.create', 'users'],
      ['PUT', '/api/v1/users/:id', 'users.update', 'users'],
      ['PATCH', '/api/v1/users/:id', 'users.update', 'users'],
      ['DELETE', '/api/v1/users/:id', 'users.delete', 'users'],
      ['POST', '/api/v1/jobs/:id/run', 'jobs.run', 'jobs'],
      ['POST', '/api/v1/auth/revoke-all', 'auth.revoke_all', 'auth'],
      ['DELETE', '/api/v1/auth/sessions/:id', 'auth.sessions.delete', 'sessions'],
      ['PUT', '/api/v1/api-tokens/:id', 'api_tokens.update', 'api_tokens'],
      ['DELETE', '/api/v1/jobs/:id/schedule', 'jobs.schedule.delete', 'jobs'],
      ['POST', '/api/v1', 'api.create', null],
    ]
    for (const [method, path, action, resourceType] of cases) {
      assert.deepEqual(deriveAction(method, path), { action, resourceType }, `${method} ${path}`)
    }
  })

  test('maps statuses to outcomes', () => {
    assert.deepEqual([200, 201, 204, 302, 400, 401, 403, 404, 409, 500].map(outcomeOf), [
      'success', 'success', 'success', 'success', 'failure', 'denied', 'denied', 'failure', 'failure', 'failure',
    ])
  })
})
