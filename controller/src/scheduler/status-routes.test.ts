import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { desc, eq } from 'drizzle-orm'
import { call, createTestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createApp } from '../app.ts'
import { auditLog } from '../audit/audit.sql.ts'
import { schedulerState } from './scheduler.sql.ts'

let t: TestContext
let app: ReturnType<typeof createApp>

before(async () => {
  t = await createTestContext()
  app = createApp(t.ctx)
})
after(async () => t?.close())

test('status is readable by a viewer; stop and start need an admin, pause the whole cluster and are audited', async () => {
  const viewer = await createTestUser(t.ctx, 'viewer')
  const operator = await createTestUser(t.ctx, 'operator')
  const admin = await createTestUser(t.ctx, 'admin')
  await t.ctx.db.update(schedulerState).set({ leaderNode: 'node-1', leaderSince: new Date('2026-01-01T00:00:00Z'), dueCount: 3, lagMs: 12 })
  const status = await call(app, 'GET', '/api/v1/scheduler/status', { token: viewer.token })
  assert.equal(status.status, 200)
  assert.equal(status.body.leader_node, 'node-1')
  assert.equal(status.body.leader_since, '2026-01-01T00:00:00.000Z')
  assert.equal(status.body.paused, false)
  assert.equal(status.body.due_count, 3)
  assert.equal(status.body.lag_ms, 12)

  assert.equal((await call(app, 'POST', '/api/v1/scheduler/stop', { token: operator.token })).status, 403)
  const stopped = await call(app, 'POST', '/api/v1/scheduler/stop', { token: admin.token })
  assert.equal(stopped.status, 200)
  assert.equal(stopped.body.paused, true)
  assert.equal(stopped.body.paused_by, admin.user.username)
  assert.equal((await t.ctx.db.select().from(schedulerState))[0]!.paused, true)
  const [audit] = await t.ctx.db.select().from(auditLog).where(eq(auditLog.action, 'scheduler.stop')).orderBy(desc(auditLog.id)).limit(1)
  assert.ok(audit, 'the stop is audited')

  const started = await call(app, 'POST', '/api/v1/scheduler/start', { token: admin.token })
  assert.equal(started.body.paused, false)
  assert.equal(started.body.paused_by, null)
  assert.equal((await call(app, 'GET', '/api/v1/scheduler/status', {})).status, 401)
})
