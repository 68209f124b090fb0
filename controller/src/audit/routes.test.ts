import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { Hono } from 'hono'
import { requestId } from 'hono/request-id'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import type { Principal } from '../auth/principal.ts'
import type { Role } from '../auth/roles.ts'
import type { AppEnv } from '../context.ts'
import { onError } from '../http/errors.ts'
import { sql } from 'drizzle-orm'
import { auditRoutes, type AuditListResponse, type AuditVerifyResponse } from './routes.ts'
import { appendAudit } from './service.ts'

let t: TestContext

before(async () => {
  t = await createTestContext()
  const base = Date.parse('2025-02-01T00:00:00Z')
  const actions = ['auth.login', 'users.create', 'jobs.run', 'auth.logout', 'users.update']
  for (const [i, action] of actions.entries()) {
    await appendAudit(
      t.ctx.db,
      { actor: { type: 'user', id: 'u-1', name: 'alice' }, action, resourceType: 'users', resourceId: `u-${i}`, outcome: 'success', summary: { i } },
      new Date(base + i * 60_000),
    )
  }
})
after(() => t.close())

const user = (role: Role): Principal => ({ kind: 'user', userId: `u-${role}`, username: role, role, sessionId: 's-1', via: 'bearer', restriction: null })

function appAs(principal: Principal | undefined) {
  return new Hono<AppEnv>()
    .use(requestId({ headerName: 'x-request-id' }))
    .use(async (c, next) => {
      c.set('ctx', t.ctx)
      c.set('log', t.ctx.log)
      c.set('principal', principal)
      await next()
    })
    .route('/api/v1/audit', auditRoutes)
    .onError(onError)
}

type ErrorBody = { error: { code: string; message: string; details?: { path: string; message: string }[]; request_id?: string } }

describe('GET /api/v1/audit', () => {
  test('gives an admin the newest rows first, camelCased, with a cursor that fetches the rest', async () => {
    const app = appAs(user('admin'))
    const res = await app.request('/api/v1/audit?limit=3')
    assert.equal(res.status, 200)
    const first = (await res.json()) as AuditListResponse
    assert.deepEqual(first.items.map((e) => e.action), ['users.update', 'auth.logout', 'jobs.run'])
    const [top] = first.items
    assert.deepEqual(
      { at: top?.at, actor: top?.actor, resource: top?.resource, outcome: top?.outcome, summary: top?.summary, client_address: top?.client_address, request_id: top?.request_id },
      { at: '2025-02-01T00:04:00.000Z', actor: { type: 'user', id: 'u-1', name: 'alice' }, resource: { type: 'users', id: 'u-4' }, outcome: 'success', summary: { i: 4 }, client_address: null, request_id: null },
    )
    assert.match(top?.hash ?? '', /^[0-9a-f]{64}$/)
    assert.ok(first.next)

    const second = (await (await app.request(`/api/v1/audit?limit=3&cursor=${first.next}`)).json()) as AuditListResponse
    assert.deepEqual(second.items.map((e) => e.action), ['users.create', 'auth.login'])
    assert.equal(second.next, null)
  })

  test('filters by action prefix, actor, resource and time', async () => {
    const app = appAs(user('admin'))
    const actions = async (qs: string) => ((await (await app.request(`/api/v1/audit?${qs}`)).json()) as AuditListResponse).items.map((e) => e.action)
    assert.deepEqual(await actions('action=auth.*'), ['auth.logout', 'auth.login'])
    assert.deepEqual(await actions('actor=alice&resource_type=users&resource_id=u-2'), ['jobs.run'])
    assert.deepEqual(await actions(`from=${encodeURIComponent('2025-02-01T00:01:00Z')}&to=${encodeURIComponent('2025-02-01T01:03:00+01:00')}`), ['jobs.run', 'users.create'])
    assert.deepEqual(await actions('actor=nobody'), [])
  })

  test('filters by outcome, and refuses an outcome that does not exist', async () => {
    const app = appAs(user('admin'))
    await appendAudit(t.ctx.db, { actor: { type: 'anonymous', id: null, name: 'mallory' }, action: 'auth.login', outcome: 'failure' }, new Date('2025-02-01T00:10:00Z'))
    const body = (await (await app.request('/api/v1/audit?outcome=failure')).json()) as AuditListResponse
    assert.deepEqual(body.items.map((e) => [e.action, e.actor.name, e.outcome]), [['auth.login', 'mallory', 'failure']])
    assert.equal(((await (await app.request('/api/v1/audit?outcome=success')).json()) as AuditListResponse).items.length, 5)
    const bad = await app.request('/api/v1/audit?outcome=maybe')
    assert.equal(bad.status, 400)
    assert.deepEqual(((await bad.json()) as ErrorBody).error.details?.map((d) => d.path), ['outcome'])
  })

  test('is for admins only: a viewer gets 403, an anonymous caller 401', async () => {
    for (const [principal, status, code] of [[user('viewer'), 403, 'FORBIDDEN'], [user('operator'), 403, 'FORBIDDEN'], [undefined, 401, 'UNAUTHENTICATED']] as const) {
      const res = await appAs(principal).request('/api/v1/audit')
      assert.equal(res.status, status)
      assert.equal(((await res.json()) as ErrorBody).error.code, code)
    }
  })

  test('answers a garbage cursor with 400 in the shared error shape', async () => {
    const res = await appAs(user('admin')).request('/api/v1/audit?cursor=not-a-real-cursor')
    assert.equal(res.status, 400)
    const body = (await res.json()) as ErrorBody
    assert.equal(body.error.code, 'VALIDATION')
    assert.equal(body.error.request_id, res.headers.get('x-request-id'))
    assert.deepEqual(body.error.details?.map((d) => d.path), ['cursor'])
  })

  test('lists every bad query parameter in one 400', async () => {
    const res = await appAs(user('admin')).request('/api/v1/audit?limit=0&from=yesterday&action=a*b&colour=red')
    assert.equal(res.status, 400)
    const body = (await res.json()) as ErrorBody
    assert.equal(body.error.code, 'VALIDATION')
    assert.deepEqual(body.error.details?.map((d) => d.path).sort(), ['', 'action', 'from', 'limit'])
    assert.match(JSON.stringify(body.error.details), /colour/)
  })

  test('rejects a time window that ends before it starts', async () => {
    const res = await appAs(user('admin')).request('/api/v1/audit?from=2025-02-02T00:00:00Z&to=2025-02-01T00:00:00Z')
    assert.equal(res.status, 400)
    assert.deepEqual(((await res.json()) as ErrorBody).error.details?.map((d) => d.path), ['to'])
  })
})

describe('GET /api/v1/audit/verify', () => {
  test('reports an intact chain: every entry checked, the head hash and when it was checked', async () => {
    const res = await appAs(user('admin')).request('/api/v1/audit/verify')
    assert.equal(res.status, 200)
    const body = (await res.json()) as AuditVerifyResponse
    const newest = ((await (await appAs(user('admin')).request('/api/v1/audit?limit=1')).json()) as AuditListResponse).items[0]
    assert.equal(body.ok, true)
    assert.equal(body.entries_checked, newest?.id)
    assert.equal(body.head, newest?.hash)
    assert.equal(body.broken, null)
    assert.ok(!Number.isNaN(Date.parse(body.checked_at)))
  })

  test('names the first entry that does not check out, with the entry as stored, and recovers when it is restored', async () => {
    const app = appAs(user('admin'))
    const all = ((await (await app.request('/api/v1/audit?action=users.create')).json()) as AuditListResponse).items
    const target = all[0]!
    await t.ctx.db.execute(sql`update audit_log set summary = '{"i": 99}'::jsonb where id = ${target.id}`)
    try {
      const body = (await (await app.request('/api/v1/audit/verify')).json()) as AuditVerifyResponse
      assert.equal(body.ok, false)
      assert.equal(body.head, null)
      assert.equal(body.entries_checked, target.id - 1)
      assert.deepEqual(
        { id: body.broken?.id, reason: body.broken?.reason, message: body.broken?.message, action: body.broken?.entry?.action, summary: body.broken?.entry?.summary },
        { id: target.id, reason: 'content_mismatch', message: 'content does not match its hash', action: 'users.create', summary: { i: 99 } },
      )
    } finally {
      await t.ctx.db.execute(sql`update audit_log set summary = ${JSON.stringify(target.summary)}::jsonb where id = ${target.id}`)
    }
    assert.equal(((await (await app.request('/api/v1/audit/verify')).json()) as AuditVerifyResponse).ok, true)
  })

  test('is for admins only', async () => {
    for (const [principal, status] of [[user('viewer'), 403], [user('operator'), 403], [undefined, 401]] as const) {
      assert.equal((await appAs(principal).request('/api/v1/audit/verify')).status, status)
    }
  })
})
