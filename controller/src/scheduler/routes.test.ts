import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { eq } from 'drizzle-orm'
import { call, callerFor, errorPaths, createTestUser, type TestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createApp } from '../app.ts'
import { auditLog } from '../audit/audit.sql.ts'
import { nextFireTimes } from './cron.ts'
import { schedule, scheduleFire } from './scheduler.sql.ts'
import { getScheduleRow, scheduleRunRequest } from './service.ts'

let t: TestContext
let app: ReturnType<typeof createApp>
let op: TestUser
let viewer: TestUser
let jobId: string
let otherJobId: string
before(async () => {
  t = await createTestContext()
  app = createApp(t.ctx, { uiDir: '/nonexistent' })
  op = await createTestUser(t.ctx, 'operator')
  viewer = await createTestUser(t.ctx, 'viewer')
  const made = await as(op).post('/api/v1/jobs', {
    name: 'Backup',
    parameters: [
      { name: 'svc', type: 'string', required: true },
      { name: 'n', type: 'number', default: 1, min: 1, max: 5 },
      { name: 'pw', type: 'secret' },
    ],
    steps: [{ type: 'wait', seconds: 0.1 }],
  })
  assert.equal(made.status, 201, JSON.stringify(made.body))
  jobId = made.body.id
  const other = await as(op).post('/api/v1/jobs', { name: 'Plain', steps: [{ type: 'wait', seconds: 0.1 }] })
  otherJobId = other.body.id
})
after(() => t.close())

const as = (user: TestUser) => callerFor(app)(user)
const PATH = '/api/v1/schedules'
const paths = errorPaths
let counter = 0
const valid = (extra: Record<string, unknown> = {}) => ({ name: `nightly-${++counter}`, job_id: jobId, cron: '30 2 * * *', timezone: 'America/New_York', parameters: { svc: 'db' }, ...extra })

describe('schedules API: create and read', () => {
  test('POST stores the schedule with defaults, computes next_fire_at in its zone (DST-aware), and viewers read it', async () => {
    // 2027-03-14 is spring-forward day in New York: 02:30 does not exist, the first fire is 03:00 EDT.
    const res = await as(op).post(PATH, valid({ name: 'Nightly Backup', start_at: '2027-03-14T00:00:00Z', targets: 'tag:role=db', parameters: { svc: 'db', n: '3', pw: 's3cret' } }))
    assert.equal(res.status, 201, JSON.stringify(res.body))
    const s = res.body
    assert.equal(s.name, 'Nightly Backup')
    assert.equal(s.job_id, jobId)
    assert.equal(s.job_name, 'Backup')
    assert.equal(s.timezone, 'America/New_York')
    assert.equal(s.enabled, true)
    assert.equal(s.next_fire_at, '2027-03-14T07:00:00.000Z')
    assert.equal(s.last_fire_at, null)
    assert.equal(s.start_at, '2027-03-14T00:00:00.000Z')
    assert.equal(s.end_at, null)
    assert.equal(s.targets, 'tag:role=db')
    assert.deepEqual(s.parameters, { svc: 'db', n: 3, pw: '****' })
    assert.equal(s.misfire_policy, 'run_once')
    assert.equal(s.misfire_max_lateness_sec, 3600)
    assert.equal(s.concurrency_policy, 'allow')
    assert.equal(s.max_concurrent_runs, 1)
    assert.deepEqual(s.retry, { count: 0, delay_sec: 60, backoff: 2 })
    assert.equal(s.created_by, op.user.username)
    assert.equal(JSON.stringify(s).includes('s3cret'), false)

    const read = await as(viewer).get(`${PATH}/${s.id}`)
    assert.equal(read.status, 200)
    assert.deepEqual(read.body, s)

    // The secret is sealed at rest and opens for the engine's run request.
    const row = await getScheduleRow(t.ctx.db, s.id)
    assert.equal(JSON.stringify(row).includes('s3cret'), false)
    assert.deepEqual(scheduleRunRequest(t.ctx, row), { parameters: { svc: 'db', n: 3, pw: 's3cret' }, targets: 'tag:role=db' })

    const audits = (await t.ctx.db.select().from(auditLog).where(eq(auditLog.resourceId, s.id))).map((a) => [a.action, a.resourceType, a.outcome])
    assert.deepEqual(audits, [['schedules.create', 'schedule', 'success']])
  })

  test('accepts presets and 6-field expressions, canonicalises the zone, and stores the policies given', async () => {
    const res = await as(op).post(PATH, valid({ cron: '@daily', timezone: 'europe/berlin', enabled: false, misfire_policy: 'run_all', misfire_max_lateness_sec: 600, concurrency_policy: 'queue', max_concurrent_runs: 3, retry: { count: 2, backoff: 1.5 } }))
    assert.equal(res.status, 201, JSON.stringify(res.body))
    assert.equal(res.body.timezone, 'Europe/Berlin')
    assert.equal(res.body.next_fire_at, null, 'disabled: nothing to fire')
    assert.equal(res.body.misfire_policy, 'run_all')
    assert.equal(res.body.concurrency_policy, 'queue')
    assert.deepEqual(res.body.retry, { count: 2, delay_sec: 60, backoff: 1.5 })
    const started = new Date()
    const six = await as(op).post(PATH, valid({ cron: '*/5 * * * * *', timezone: 'UTC' }))
    assert.equal(six.status, 201, JSON.stringify(six.body))
    const next = new Date(six.body.next_fire_at)
    assert.ok(next > started && next.getTime() - started.getTime() <= 6000, six.body.next_fire_at)
  })

  test('an end in the past leaves no fire: next_fire_at is null', async () => {
    const res = await as(op).post(PATH, valid({ start_at: '2020-01-01T00:00:00Z', end_at: '2020-02-01T00:00:00Z' }))
    assert.equal(res.status, 201)
    assert.equal(res.body.next_fire_at, null)
  })

  test('rejects bad input with 400 naming every field', async () => {
    const cases: [Record<string, unknown>, string[]][] = [
      [{ cron: '61 * * * *' }, ['cron']],
      [{ cron: 'every day' }, ['cron']],
      [{ cron: '0 0 30 2 *' }, ['cron']],
      [{ cron: '@reboot' }, ['cron']],
      [{ cron: '* * * * * * *' }, ['cron']],
      [{ timezone: 'Mars/Olympus' }, ['timezone']],
      [{ cron: 'nope', timezone: 'Nowhere/Land' }, ['cron', 'timezone']],
      [{ start_at: '2027-02-01T00:00:00Z', end_at: '2027-01-01T00:00:00Z' }, ['end_at']],
      [{ start_at: 'tomorrow' }, ['start_at']],
      [{ start_at: '2027-02-01T00:00:00' }, ['start_at']],
      [{ misfire_policy: 'sometimes', concurrency_policy: 'never', max_concurrent_runs: 0 }, ['concurrency_policy', 'max_concurrent_runs', 'misfire_policy']],
      [{ retry: { count: 99, delay_sec: -1, backoff: 0.5 } }, ['retry.backoff', 'retry.count', 'retry.delay_sec']],
      [{ targets: 'tag:' }, ['targets']],
      [{ job_id: 'not-a-uuid' }, ['job_id']],
      [{ job_id: '00000000-0000-4000-8000-000000000000' }, ['job_id']],
      [{ parameters: {} }, ['parameters.svc']],
      [{ parameters: { svc: 'x', n: 9, extra: 1 } }, ['parameters.extra', 'parameters.n']],
      [{ parameters: { svc: 'x', pw: '****' } }, ['parameters.pw']],
      [{ name: '' }, ['name']],
      [{ surprise: true }, ['']],
    ]
    for (const [extra, expected] of cases) {
      const res = await as(op).post(PATH, valid(extra))
      assert.equal(res.status, 400, `${JSON.stringify(extra)} → ${res.status} ${JSON.stringify(res.body)}`)
      assert.equal(res.body.error.code, 'VALIDATION')
      assert.deepEqual(paths(res.body).sort(), expected, `${JSON.stringify(extra)}: ${JSON.stringify(res.body)}`)
    }
    const missing = await as(op).post(PATH, {})
    assert.equal(missing.status, 400)
    assert.deepEqual(paths(missing.body).sort(), ['cron', 'job_id', 'name'])
    const notJson = await call(app, 'POST', PATH, { token: op.token, body: undefined, headers: { 'content-type': 'text/plain' } })
    assert.equal(notJson.status, 400)
  })

  test('a deleted job cannot be scheduled', async () => {
    const doomed = await as(op).post('/api/v1/jobs', { name: 'Doomed', steps: [{ type: 'wait', seconds: 0.1 }] })
    assert.equal((await as(op).del(`/api/v1/jobs/${doomed.body.id}`)).status, 200)
    const res = await as(op).post(PATH, valid({ job_id: doomed.body.id, parameters: {} }))
    assert.equal(res.status, 400)
    assert.deepEqual(paths(res.body), ['job_id'])
  })

  test('names are unique case-insensitively (409), and deleting frees the name', async () => {
    const first = await as(op).post(PATH, valid({ name: 'Weekly Report' }))
    assert.equal(first.status, 201)
    const clash = await as(op).post(PATH, valid({ name: 'weekly report' }))
    assert.equal(clash.status, 409)
    assert.equal(clash.body.error.code, 'CONFLICT')
    const other = await as(op).post(PATH, valid({ name: 'Other report' }))
    const renamed = await as(op).put(`${PATH}/${other.body.id}`, { name: 'WEEKLY REPORT' })
    assert.equal(renamed.status, 409)
    assert.equal((await as(op).del(`${PATH}/${first.body.id}`)).status, 200)
    assert.equal((await as(op).post(PATH, valid({ name: 'weekly report' }))).status, 201)
  })

  test('roles: viewers read but cannot write (403); anonymous callers get 401; unknown ids 404', async () => {
    const created = await as(op).post(PATH, valid())
    assert.equal((await as(viewer).post(PATH, valid())).status, 403)
    assert.equal((await as(viewer).put(`${PATH}/${created.body.id}`, { enabled: false })).status, 403)
    assert.equal((await as(viewer).del(`${PATH}/${created.body.id}`)).status, 403)
    assert.equal((await call(app, 'GET', PATH)).status, 401)
    assert.equal((await call(app, 'GET', `${PATH}/preview?cron=@daily`)).status, 401)
    for (const id of ['00000000-0000-4000-8000-000000000000', 'nope']) {
      assert.equal((await as(viewer).get(`${PATH}/${id}`)).status, 404)
      assert.equal((await as(op).put(`${PATH}/${id}`, { enabled: false })).status, 404)
      assert.equal((await as(op).del(`${PATH}/${id}`)).status, 404)
      assert.equal((await as(viewer).get(`${PATH}/${id}/preview`)).status, 404)
      assert.equal((await as(viewer).get(`${PATH}/${id}/fires`)).status, 404)
    }
  })
})

describe('schedules API: update and delete', () => {
  test('PUT changes only the fields sent; disabling clears next_fire_at, enabling and timing changes recompute it, other changes keep it', async () => {
    const created = await as(op).post(PATH, valid({ start_at: '2027-03-14T00:00:00Z' }))
    const id = created.body.id
    const off = await as(op).put(`${PATH}/${id}`, { enabled: false })
    assert.equal(off.status, 200, JSON.stringify(off.body))
    assert.equal(off.body.enabled, false)
    assert.equal(off.body.next_fire_at, null)
    assert.equal(off.body.cron, '30 2 * * *')
    const on = await as(op).put(`${PATH}/${id}`, { enabled: true })
    assert.equal(on.body.next_fire_at, '2027-03-14T07:00:00.000Z')
    const moved = await as(op).put(`${PATH}/${id}`, { cron: '0 9 * * *', timezone: 'Europe/Berlin' })
    assert.equal(moved.body.next_fire_at, '2027-03-14T08:00:00.000Z')

    // The engine owns next_fire_at between edits: a rename must not move a fire it is about to make.
    const due = new Date('2026-01-01T00:00:00Z')
    await t.ctx.db.update(schedule).set({ nextFireAt: due }).where(eq(schedule.id, id))
    const renamed = await as(op).put(`${PATH}/${id}`, { name: 'renamed', description: 'why', max_concurrent_runs: 2, retry: { count: 1 } })
    assert.equal(renamed.status, 200)
    assert.equal(renamed.body.next_fire_at, due.toISOString())
    assert.equal(renamed.body.description, 'why')
    assert.deepEqual(renamed.body.retry, { count: 1, delay_sec: 60, backoff: 2 })
    assert.equal(renamed.body.updated_by, op.user.username)

    const cleared = await as(op).put(`${PATH}/${id}`, { description: null, start_at: null })
    assert.equal(cleared.body.description, null)
    assert.equal(cleared.body.start_at, null)
    assert.notEqual(cleared.body.next_fire_at, due.toISOString(), 'the window changed: recomputed from now')
    assert.equal(cleared.body.next_fire_at, nextFireTimes({ cron: '0 9 * * *', timezone: 'Europe/Berlin' }, new Date(Date.now() - 5000), 1)[0]!.toISOString())

    const audits = (await t.ctx.db.select().from(auditLog).where(eq(auditLog.resourceId, id))).map((a) => a.action)
    assert.deepEqual(audits, ['schedules.create', 'schedules.update', 'schedules.update', 'schedules.update', 'schedules.update', 'schedules.update'])
  })

  test('a GET body PUT back unchanged is accepted; **** keeps the stored secret; new values are checked against the job', async () => {
    const created = await as(op).post(PATH, valid({ parameters: { svc: 'db', pw: 'hunter2' } }))
    const id = created.body.id
    const back = await as(op).put(`${PATH}/${id}`, created.body)
    assert.equal(back.status, 200, JSON.stringify(back.body))
    assert.deepEqual(back.body.parameters, { svc: 'db', pw: '****' })
    assert.deepEqual(scheduleRunRequest(t.ctx, await getScheduleRow(t.ctx.db, id)).parameters, { svc: 'db', pw: 'hunter2' })

    const changed = await as(op).put(`${PATH}/${id}`, { parameters: { svc: 'web', pw: 'n3w' } })
    assert.equal(changed.status, 200)
    assert.deepEqual(scheduleRunRequest(t.ctx, await getScheduleRow(t.ctx.db, id)).parameters, { svc: 'web', pw: 'n3w' })
    const dropped = await as(op).put(`${PATH}/${id}`, { parameters: { svc: 'web' } })
    assert.deepEqual(dropped.body.parameters, { svc: 'web' })
    assert.equal((await getScheduleRow(t.ctx.db, id)).secretParams, null)

    const bad = await as(op).put(`${PATH}/${id}`, { parameters: { n: 'many' }, cron: 'x' })
    assert.equal(bad.status, 400)
    assert.deepEqual(paths(bad.body), ['cron'], 'timing is checked first')
    const badParams = await as(op).put(`${PATH}/${id}`, { parameters: { n: 'many' } })
    assert.deepEqual(paths(badParams.body).sort(), ['parameters.n', 'parameters.svc'])
    // Moving to a job without those parameters re-checks the stored values against it.
    const moved = await as(op).put(`${PATH}/${id}`, { job_id: otherJobId })
    assert.equal(moved.status, 400)
    assert.deepEqual(paths(moved.body), ['parameters.svc'])
    const movedClean = await as(op).put(`${PATH}/${id}`, { job_id: otherJobId, parameters: {} })
    assert.equal(movedClean.status, 200)
    assert.equal(movedClean.body.job_name, 'Plain')
    const badEnd = await as(op).put(`${PATH}/${id}`, { start_at: '2030-01-01T00:00:00Z', end_at: '2029-01-01T00:00:00Z' })
    assert.deepEqual(paths(badEnd.body), ['end_at'])
    const badTz = await as(op).put(`${PATH}/${id}`, { timezone: 'Atlantis/Capital' })
    assert.deepEqual(paths(badTz.body), ['timezone'])
    assert.equal((await as(op).put(`${PATH}/${id}`, { bogus: 1 })).status, 400)
  })

  test('DELETE hides the schedule and stops it (next_fire_at null); its fires stay readable', async () => {
    const created = await as(op).post(PATH, valid())
    const id = created.body.id
    const removed = await as(op).del(`${PATH}/${id}`)
    assert.equal(removed.status, 200)
    assert.equal(removed.body.next_fire_at, null)
    assert.equal((await as(viewer).get(`${PATH}/${id}`)).status, 404)
    assert.equal((await as(op).del(`${PATH}/${id}`)).status, 404)
    const [row] = await t.ctx.db.select().from(schedule).where(eq(schedule.id, id))
    assert.ok(row!.deletedAt)
    assert.equal(row!.nextFireAt, null)
    const fires = await as(viewer).get(`${PATH}/${id}/fires`)
    assert.equal(fires.status, 200)
    const list = await as(viewer).get(`${PATH}?limit=500`)
    assert.equal(list.body.items.some((s: { id: string }) => s.id === id), false)
  })
})

describe('schedules API: list', () => {
  test('keyset pages by name, filtered by job_id and enabled', async () => {
    const listed = (await as(op).post('/api/v1/jobs', { name: 'Listed', steps: [{ type: 'wait', seconds: 0.1 }] })).body.id as string
    for (const name of ['list-c', 'list-a', 'list-b']) assert.equal((await as(op).post(PATH, valid({ name, job_id: listed, parameters: {}, enabled: name !== 'list-b' }))).status, 201)
    const first = await as(viewer).get(`${PATH}?job_id=${listed}&limit=2`)
    assert.equal(first.status, 200)
    assert.deepEqual(first.body.items.map((s: { name: string }) => s.name), ['list-a', 'list-b'])
    assert.equal(first.body.items[0].job_name, 'Listed')
    const second = await as(viewer).get(`${PATH}?job_id=${listed}&limit=2&cursor=${first.body.next}`)
    assert.deepEqual(second.body.items.map((s: { name: string }) => s.name), ['list-c'])
    assert.equal(second.body.next, null)
    const enabled = await as(viewer).get(`${PATH}?job_id=${listed}&enabled=false`)
    assert.deepEqual(enabled.body.items.map((s: { name: string }) => s.name), ['list-b'])
    for (const q of ['job_id=nope', 'enabled=maybe', 'limit=0', 'cursor=garbage!']) assert.equal((await as(viewer).get(`${PATH}?${q}`)).status, 400, q)
  })
})

describe('schedules API: preview', () => {
  test('GET /:id/preview lists fires in UTC and local time across the New York DST days, within the schedule window', async () => {
    const created = await as(op).post(PATH, valid({ cron: '30 1 * * *', end_at: '2026-11-02T12:00:00Z' }))
    const res = await as(viewer).get(`${PATH}/${created.body.id}/preview?count=5&from=2026-10-31T00:00:00Z`)
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.deepEqual(res.body, {
      timezone: 'America/New_York',
      fires: [
        { at_utc: '2026-10-31T05:30:00.000Z', at_local: '2026-10-31T01:30:00-04:00', offset: '-04:00' },
        { at_utc: '2026-11-01T05:30:00.000Z', at_local: '2026-11-01T01:30:00-04:00', offset: '-04:00' },
        { at_utc: '2026-11-02T06:30:00.000Z', at_local: '2026-11-02T01:30:00-05:00', offset: '-05:00' },
      ],
    })
    const defaults = await as(viewer).get(`${PATH}/${created.body.id}/preview`)
    assert.equal(defaults.status, 200)
    for (const q of ['count=0', 'count=101', 'count=x', 'from=yesterday']) assert.equal((await as(viewer).get(`${PATH}/${created.body.id}/preview?${q}`)).status, 400, q)
  })

  test('GET /preview previews an unsaved expression; bad cron or zone is a 400 naming it', async () => {
    const res = await as(viewer).get(`${PATH}/preview?cron=${encodeURIComponent('30 2 * * *')}&tz=Europe/Berlin&count=3&from=2026-03-28T00:00:00Z`)
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.deepEqual(res.body, {
      timezone: 'Europe/Berlin',
      fires: [
        { at_utc: '2026-03-28T01:30:00.000Z', at_local: '2026-03-28T02:30:00+01:00', offset: '+01:00' },
        { at_utc: '2026-03-29T01:00:00.000Z', at_local: '2026-03-29T03:00:00+02:00', offset: '+02:00' },
        { at_utc: '2026-03-30T00:30:00.000Z', at_local: '2026-03-30T02:30:00+02:00', offset: '+02:00' },
      ],
    })
    const utc = await as(viewer).get(`${PATH}/preview?cron=@hourly&count=2&from=2026-01-01T00:10:00Z`)
    assert.deepEqual(utc.body.fires.map((f: { at_local: string }) => f.at_local), ['2026-01-01T01:00:00+00:00', '2026-01-01T02:00:00+00:00'])
    const checks: [string, string[]][] = [
      ['cron=61+*+*+*+*', ['cron']],
      ['cron=@daily&tz=Mars/Olympus', ['tz']],
      ['cron=@daily&timezone=Mars/Olympus', ['timezone']],
      ['tz=UTC', ['cron']],
      ['cron=@daily&count=500', ['count']],
    ]
    for (const [q, expected] of checks) {
      const bad = await as(viewer).get(`${PATH}/preview?${q}`)
      assert.equal(bad.status, 400, q)
      assert.deepEqual(paths(bad.body), expected, `${q}: ${JSON.stringify(bad.body)}`)
    }
  })
})

describe('schedules API: fire history', () => {
  test('GET /:id/fires lists fires newest first, filters by status, in keyset pages', async () => {
    const created = await as(op).post(PATH, valid())
    const id = created.body.id
    const at = (h: number) => new Date(Date.UTC(2026, 5, 1, h))
    await t.ctx.db.insert(scheduleFire).values([
      { scheduleId: id, fireAt: at(1), status: 'fired', lagMs: 12 },
      { scheduleId: id, fireAt: at(2), status: 'missed', reason: 'misfire' },
      { scheduleId: id, fireAt: at(3), status: 'skipped', reason: 'concurrency' },
      { scheduleId: id, fireAt: at(4), status: 'missed', reason: 'misfire' },
    ])
    const all = await as(viewer).get(`${PATH}/${id}/fires`)
    assert.equal(all.status, 200)
    assert.deepEqual(all.body.items.map((f: { fire_at: string }) => f.fire_at), [at(4), at(3), at(2), at(1)].map((d) => d.toISOString()))
    assert.equal(all.body.items[3].lag_ms, 12)
    assert.equal(all.body.items[1].reason, 'concurrency')
    const missed = await as(viewer).get(`${PATH}/${id}/fires?status=missed&limit=1`)
    assert.deepEqual(missed.body.items.map((f: { fire_at: string; status: string }) => [f.fire_at, f.status]), [[at(4).toISOString(), 'missed']])
    const next = await as(viewer).get(`${PATH}/${id}/fires?status=missed&limit=1&cursor=${missed.body.next}`)
    assert.deepEqual(next.body.items.map((f: { fire_at: string }) => f.fire_at), [at(2).toISOString()])
    assert.equal(next.body.next, null)
    for (const q of ['status=exploded', 'cursor=abc', 'limit=9999']) assert.equal((await as(viewer).get(`${PATH}/${id}/fires?${q}`)).status, 400, q)
  })
})
