import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { and, desc, eq } from 'drizzle-orm'
import { callerFor, errorPaths, createTestUser, type TestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createApp } from '../app.ts'
import { auditLog } from '../audit/audit.sql.ts'
import { createGroup } from '../target-groups/service.ts'
import { createTarget } from '../targets/service.ts'
import { maintenanceWindow } from './maintenance.sql.ts'

let t: TestContext
let app: ReturnType<typeof createApp>
let op: TestUser
let viewer: TestUser
let targetA: string
let groupId: string
let jobId: string

before(async () => {
  t = await createTestContext()
  app = createApp(t.ctx, { uiDir: '/nonexistent' })
  op = await createTestUser(t.ctx, 'operator')
  viewer = await createTestUser(t.ctx, 'viewer')
  for (const name of ['mr-a', 'mr-b']) {
    const created = await createTarget(t.ctx, {
      name,
      address: '127.0.0.1',
      os_type: 'linux',
      enabled: true,
      tags: { role: name },
      connection: { type: 'ssh', port: 22, credential_id: null, host_key_policy: 'tofu', jump: [] },
    })
    if (name === 'mr-a') targetA = created.id
  }
  groupId = (await createGroup(t.ctx, { name: 'patch-a', selector: 'tag:role=mr-a' })).id
  // Wait steps run in the controller once per target: no SSH connection is made.
  const job = await as(op).post('/api/v1/jobs', { name: 'patch', targets: 'tag:role=mr-a', steps: [{ id: 'w', type: 'wait', seconds: 0.001 }] })
  assert.equal(job.status, 201, JSON.stringify(job.body))
  jobId = job.body.id
})
after(() => t.close())

const as = (user: TestUser) => callerFor(app)(user)
const PATH = '/api/v1/maintenance-windows'
const paths = errorPaths
const soon = (minutes: number) => new Date(Date.now() + minutes * 60_000).toISOString()

describe('maintenance windows API', () => {
  test('operators create, viewers read, PUT merges, DELETE frees the name; all audited', async () => {
    const res = await as(op).post(PATH, { name: 'Weekend', kind: 'weekly', timezone: 'europe/berlin', ranges: [{ days: ['sat'], start: '22:00', end: '02:00' }], applies_to: { groups: [groupId] } })
    assert.equal(res.status, 201, JSON.stringify(res.body))
    assert.equal(res.body.timezone, 'Europe/Berlin')
    assert.equal(res.body.action, 'skip')
    assert.equal(res.body.enabled, true)
    const id = res.body.id
    assert.equal((await as(viewer).get(`${PATH}/${id}`)).body.name, 'Weekend')
    assert.equal((await as(viewer).post(PATH, { name: 'x', kind: 'one_off', starts_at: soon(0), ends_at: soon(1), applies_to: 'all' })).status, 403)
    const dup = await as(op).post(PATH, { name: 'WEEKEND', kind: 'one_off', starts_at: soon(0), ends_at: soon(1), applies_to: 'all' })
    assert.equal(dup.status, 409)
    const put = await as(op).put(`${PATH}/${id}`, { action: 'defer' })
    assert.equal(put.status, 200, JSON.stringify(put.body))
    assert.equal(put.body.action, 'defer')
    assert.deepEqual(put.body.ranges, res.body.ranges)
    const list = await as(viewer).get(PATH)
    assert.ok(list.body.items.some((w: { id: string }) => w.id === id))
    assert.equal((await as(op).del(`${PATH}/${id}`)).status, 200)
    assert.equal((await as(viewer).get(`${PATH}/${id}`)).status, 404)
    const [audit] = await t.ctx.db.select().from(auditLog).where(and(eq(auditLog.resourceType, 'maintenance_window'), eq(auditLog.resourceId, id))).orderBy(desc(auditLog.id)).limit(1)
    assert.ok(audit)
  })

  test('invalid windows are 400s naming every field at fault', async () => {
    const cases: [unknown, string[]][] = [
      [{ name: 'a', kind: 'one_off', starts_at: soon(10), ends_at: soon(5), applies_to: 'all' }, ['ends_at']],
      [{ name: 'a', kind: 'one_off', applies_to: 'all' }, ['starts_at', 'ends_at']],
      [{ name: 'a', kind: 'cron', cron: '61 * * * *', duration_sec: 600, timezone: 'Mars/Olympus', applies_to: 'all' }, ['timezone']],
      [{ name: 'a', kind: 'cron', cron: '61 * * * *', duration_sec: 600, applies_to: 'all' }, ['cron']],
      [{ name: 'a', kind: 'cron', cron: '0 2 * * *', applies_to: 'all', ranges: [{ days: ['mon'], start: '01:00', end: '02:00' }] }, ['duration_sec', 'ranges']],
      [{ name: 'a', kind: 'weekly', ranges: [{ days: ['funday'], start: '25:00', end: '02:00' }], applies_to: 'all' }, ['ranges[0].days[0]', 'ranges[0].start']],
      [{ name: 'a', kind: 'weekly', ranges: [{ days: ['mon'], start: '01:00', end: '01:00' }], applies_to: 'all' }, ['ranges[0].end']],
      [{ name: 'a', kind: 'weekly', ranges: [{ days: ['mon'], start: '01:00', end: '02:00' }], applies_to: {} }, ['applies_to']],
      [{ name: 'a', kind: 'weekly', ranges: [{ days: ['mon'], start: '01:00', end: '02:00' }], applies_to: { selector: 'tag:(' } }, ['applies_to.selector']],
      [{ name: 'a', kind: 'weekly', ranges: [{ days: ['mon'], start: '01:00', end: '02:00' }], applies_to: { groups: ['00000000-0000-4000-8000-000000000000'] } }, ['applies_to.groups[0]']],
      [{ name: 'a', kind: 'monthly', applies_to: 'all', action: 'later' }, ['kind', 'action']],
    ]
    for (const [body, expected] of cases) {
      const res = await as(op).post(PATH, body)
      assert.equal(res.status, 400, JSON.stringify(body))
      assert.equal(res.body.error.code, 'VALIDATION')
      for (const p of expected) assert.ok(paths(res.body).includes(p), `${JSON.stringify(body)} → ${JSON.stringify(res.body.error.details)}`)
    }
    assert.equal((await as(viewer).get(`${PATH}/active?at=yesterday`)).status, 400)
  })

  test('GET /active lists the windows open at the given time', async () => {
    const res = await as(op).post(PATH, { name: 'Nightly', kind: 'cron', cron: '0 2 * * *', duration_sec: 3600, timezone: 'UTC', applies_to: 'all' })
    assert.equal(res.status, 201, JSON.stringify(res.body))
    const inside = await as(viewer).get(`${PATH}/active?at=2026-07-01T02:30:00Z`)
    assert.equal(inside.status, 200)
    const nightly = inside.body.items.find((w: { name: string }) => w.name === 'Nightly')
    assert.deepEqual(nightly?.active, { start: '2026-07-01T02:00:00.000Z', end: '2026-07-01T03:00:00.000Z' })
    const outside = await as(viewer).get(`${PATH}/active?at=2026-07-01T03:00:00Z`)
    assert.ok(!outside.body.items.some((w: { name: string }) => w.name === 'Nightly'))
    await as(op).del(`${PATH}/${res.body.id}`)
  })
})

describe('manual runs inside a maintenance window', () => {
  test('a window for other targets does not block; one covering the targets is a 409 unless overridden, and the override is audited', async () => {
    const other = await as(op).post(PATH, { name: 'B only', kind: 'one_off', starts_at: soon(-5), ends_at: soon(60), applies_to: { selector: 'tag:role=mr-b' } })
    assert.equal(other.status, 201, JSON.stringify(other.body))
    assert.equal((await as(op).post(`/api/v1/jobs/${jobId}/run`, {})).status, 202)

    const win = await as(op).post(PATH, { name: 'Patch A', kind: 'one_off', starts_at: soon(-5), ends_at: soon(60), applies_to: { target_ids: [targetA] } })
    assert.equal(win.status, 201, JSON.stringify(win.body))
    const refused = await as(op).post(`/api/v1/jobs/${jobId}/run`, {})
    assert.equal(refused.status, 409, JSON.stringify(refused.body))
    assert.equal(refused.body.error.code, 'CONFLICT')
    assert.match(refused.body.error.message, /"Patch A"/)
    assert.deepEqual(paths(refused.body), ['override_maintenance'])

    const forced = await as(op).post(`/api/v1/jobs/${jobId}/run`, { override_maintenance: true })
    assert.equal(forced.status, 202, JSON.stringify(forced.body))
    const [audit] = await t.ctx.db.select().from(auditLog).where(eq(auditLog.action, 'jobs.run')).orderBy(desc(auditLog.id)).limit(1)
    assert.deepEqual(audit!.summary.maintenance_overridden, [{ id: win.body.id, name: 'Patch A' }])
    assert.equal(audit!.summary.run_id, forced.body.run_id)
    await t.ctx.db.update(maintenanceWindow).set({ enabled: false })
  })
})
