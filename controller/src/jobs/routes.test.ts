import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { eq } from 'drizzle-orm'
import { call, createTestUser, type TestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createApp } from '../app.ts'
import { run } from '../runs/runs.sql.ts'
import { job, jobVersion } from './jobs.sql.ts'

let t: TestContext
let app: ReturnType<typeof createApp>
let op: TestUser
let viewer: TestUser
before(async () => {
  t = await createTestContext()
  app = createApp(t.ctx, { uiDir: '/nonexistent' })
  op = await createTestUser(t.ctx, 'operator')
  viewer = await createTestUser(t.ctx, 'viewer')
})
after(() => t.close())

const PATH = '/api/v1/jobs'
const as = (user: TestUser) => ({
  get: (path: string) => call(app, 'GET', path, { token: user.token }),
  post: (path: string, body: unknown = {}) => call(app, 'POST', path, { token: user.token, body }),
  put: (path: string, body: unknown) => call(app, 'PUT', path, { token: user.token, body }),
  del: (path: string) => call(app, 'DELETE', path, { token: user.token }),
})
const wait = (seconds = 0.1) => ({ type: 'wait', seconds })
const paths = (body: any): string[] => body.error.details.map((d: { path: string }) => d.path)

async function jobCount(): Promise<number> {
  return (await t.ctx.db.select({ id: job.id }).from(job)).length
}

describe('jobs API: create, read, versions', () => {
  test('POST creates version 1, GET shows the normalised form, PUT makes version 2, versions list newest first in keyset pages', async () => {
    const created = await as(op).post(PATH, {
      name: 'Restart service',
      version: 7,
      parameters: { svc: 'Spooler' },
      steps: [{ type: 'winrm.exec', shell: 'powershell', target: 'win-01', command: 'Restart-Service {{ svc }}', timeoutSec: 90 }],
    })
    assert.equal(created.status, 201, JSON.stringify(created.body))
    const id = created.body.id as string
    assert.match(id, /^[0-9a-f-]{36}$/)
    assert.equal(created.body.version, 1)
    assert.equal(created.body.created_by, op.user.username)

    const read = await as(viewer).get(`${PATH}/${id}`)
    assert.equal(read.status, 200)
    assert.equal(read.body.name, 'Restart service')
    assert.equal(read.body.version, 1)
    assert.deepEqual(read.body.parameters, [{ name: 'svc', type: 'string', default: 'Spooler', required: false }])
    const [step] = read.body.steps
    assert.equal(step.id, 'step1')
    assert.equal(step.target, 'name:win-01')
    assert.equal(step.timeout_sec, 90)
    assert.equal(step.command, 'Restart-Service {{ svc }}')
    assert.equal('timeoutSec' in step, false)
    assert.equal('with' in step, false, 'steps are shown flat, as written')

    // PUT the GET body back with a change: the server fields are not part of a definition.
    const { id: _id, version: _v, latest_version: _l, created_at: _c, updated_at: _u, created_by: _cb, updated_by: _ub, ...definition } = read.body
    const updated = await as(op).put(`${PATH}/${id}`, { ...definition, description: 'second', steps: [{ ...step, timeout_sec: 120 }] })
    assert.equal(updated.status, 200, JSON.stringify(updated.body))
    assert.equal(updated.body.version, 2)
    assert.equal(updated.body.description, 'second')
    assert.equal((await as(viewer).get(`${PATH}/${id}`)).body.steps[0].timeout_sec, 120)

    const all = await as(viewer).get(`${PATH}/${id}/versions`)
    assert.equal(all.status, 200)
    assert.deepEqual(all.body.items.map((v: { version: number }) => v.version), [2, 1])
    assert.equal(all.body.next, null)
    const first = await as(viewer).get(`${PATH}/${id}/versions?limit=1`)
    assert.deepEqual(first.body.items.map((v: { version: number }) => v.version), [2])
    assert.equal(typeof first.body.next, 'string')
    const second = await as(viewer).get(`${PATH}/${id}/versions?limit=1&cursor=${first.body.next}`)
    assert.deepEqual(second.body.items.map((v: { version: number }) => v.version), [1])
    assert.equal(second.body.next, null)
    assert.equal((await as(viewer).get(`${PATH}/${id}/versions?cursor=garbage!`)).status, 400)

    const old = await as(viewer).get(`${PATH}/${id}/versions/1`)
    assert.equal(old.status, 200)
    assert.equal(old.body.version, 1)
    assert.equal(old.body.latest_version, 2)
    assert.equal(old.body.description, null)
    assert.equal(old.body.steps[0].timeout_sec, 90)
    const bad = await as(viewer).get(`${PATH}/${id}/versions/abc`)
    assert.equal(bad.status, 400)
    assert.equal(bad.body.error.code, 'VALIDATION')
    assert.equal((await as(viewer).get(`${PATH}/${id}/versions/0`)).status, 400)
    const missing = await as(viewer).get(`${PATH}/${id}/versions/99`)
    assert.equal(missing.status, 404)
    assert.equal(missing.body.error.code, 'NOT_FOUND')
  })

  test('an invalid definition is a 400 in the shared error shape listing every problem; nothing is stored', async () => {
    const before = await jobCount()
    const res = await as(op).post(PATH, {
      parameters: [{ name: 'c', type: 'choice' }],
      steps: [{ type: 'frobnicate' }, { type: 'exec' }, { type: 'http.get', url: 'http://x.test/{{ nope }}' }],
    })
    assert.equal(res.status, 400)
    const { error } = res.body
    assert.equal(error.code, 'VALIDATION')
    assert.equal(typeof error.message, 'string')
    assert.equal(typeof error.request_id, 'string')
    assert.ok(error.request_id.length > 0)
    assert.equal(res.headers.get('x-request-id'), error.request_id)
    for (const d of error.details) assert.deepEqual(Object.keys(d).sort(), ['message', 'path'])
    assert.deepEqual(paths(res.body).sort(), ['name', 'parameters[0].choices', 'steps[0].type', 'steps[1].command', 'steps[2].url'])
    assert.equal(await jobCount(), before)

    // A bad PUT leaves the job at its version.
    const ok = await as(op).post(PATH, { name: 'stays at v1', steps: [wait()] })
    const put = await as(op).put(`${PATH}/${ok.body.id}`, { name: 'stays at v1', steps: [{ type: 'wait', seconds: -1 }] })
    assert.equal(put.status, 400)
    assert.deepEqual(paths(put.body), ['steps[0].seconds'])
    assert.equal((await as(viewer).get(`${PATH}/${ok.body.id}`)).body.version, 1)
    assert.equal((await t.ctx.db.select().from(jobVersion).where(eq(jobVersion.jobId, ok.body.id))).length, 1)
  })

  test('names are unique (case-insensitively) among live jobs; a deleted job frees its name and 404s; its runs stay readable', async () => {
    const first = await as(op).post(PATH, { name: 'Nightly backup', steps: [wait()] })
    assert.equal(first.status, 201)
    const dup = await as(op).post(PATH, { name: 'nightly BACKUP', steps: [wait()] })
    assert.equal(dup.status, 409)
    assert.equal(dup.body.error.code, 'CONFLICT')
    const other = await as(op).post(PATH, { name: 'Other', steps: [wait()] })
    assert.equal((await as(op).put(`${PATH}/${other.body.id}`, { name: 'Nightly Backup', steps: [wait()] })).status, 409)

    const runRes = await as(op).post(`${PATH}/${first.body.id}/run`, {})
    assert.equal(runRes.status, 202, JSON.stringify(runRes.body))
    const runId = runRes.body.run_id as string

    const removed = await as(op).del(`${PATH}/${first.body.id}`)
    assert.equal(removed.status, 200)
    assert.equal((await as(op).get(`${PATH}/${first.body.id}`)).status, 404)
    assert.equal((await as(op).get(`${PATH}/${first.body.id}/versions`)).status, 404)
    assert.equal((await as(op).get(`${PATH}/${first.body.id}/versions/1`)).status, 404)
    assert.equal((await as(op).put(`${PATH}/${first.body.id}`, { name: 'Nightly backup', steps: [wait()] })).status, 404)
    assert.equal((await as(op).del(`${PATH}/${first.body.id}`)).status, 404)
    assert.equal((await as(op).post(`${PATH}/${first.body.id}/run`, {})).status, 404)
    const listed = await as(viewer).get(`${PATH}?q=nightly`)
    assert.deepEqual(listed.body.items, [])

    const again = await as(op).post(PATH, { name: 'Nightly backup', steps: [wait(), wait()] })
    assert.equal(again.status, 201)
    assert.notEqual(again.body.id, first.body.id)
    assert.equal(again.body.version, 1)

    const r = await as(viewer).get(`/api/v1/runs/${runId}`)
    assert.equal(r.status, 200)
    assert.equal(r.body.job_id, first.body.id)
    assert.equal(r.body.job_name, 'Nightly backup')
    assert.equal((await as(viewer).get(`/api/v1/runs/${runId}/steps`)).status, 200)
    const [row] = await t.ctx.db.select().from(run).where(eq(run.id, runId))
    assert.equal(row!.jobVersion, 1)
  })
})

describe('jobs API: export and import', () => {
  test('export → import round trip: an existing name gets a new version, a new name a new job', async () => {
    const created = await as(op).post(PATH, {
      name: 'Exported',
      description: 'round trip',
      tags: ['ops'],
      parameters: [
        { name: 'n', type: 'number', min: 1, default: 2 },
        { name: 'mode', type: 'choice', choices: ['a', 'b'], default: 'a' },
      ],
      steps: [
        { id: 'pause', type: 'wait', seconds: 0.1, retries: 1 },
        { id: 'check', type: 'http.get', url: 'http://127.0.0.1:1/{{ mode }}', run_if: 'always', continue_on_error: true },
      ],
    })
    assert.equal(created.status, 201, JSON.stringify(created.body))
    const id = created.body.id as string
    const exported = await as(viewer).get(`${PATH}/${id}/export`)
    assert.equal(exported.status, 200)
    assert.match(exported.headers.get('content-disposition') ?? '', /attachment; filename="Exported\.json"/)
    for (const field of ['id', 'version', 'created_at', 'updated_by']) assert.equal(field in exported.body, false, `${field} is a server field`)
    assert.equal(exported.body.name, 'Exported')

    const imported = await as(op).post(`${PATH}/import`, [exported.body, { ...exported.body, name: 'Exported copy' }])
    assert.equal(imported.status, 200, JSON.stringify(imported.body))
    assert.deepEqual(
      imported.body.items.map((i: { name: string; version: number; created: boolean }) => [i.name, i.version, i.created]),
      [
        ['Exported', 2, false],
        ['Exported copy', 1, true],
      ],
    )
    assert.equal(imported.body.items[0].id, id)
    const v1 = await as(viewer).get(`${PATH}/${id}/versions/1`)
    const v2 = await as(viewer).get(`${PATH}/${id}/versions/2`)
    const strip = (b: Record<string, unknown>) => {
      const { version: _v, latest_version: _l, updated_at: _u, ...rest } = b
      return rest
    }
    assert.deepEqual(strip(v2.body), strip(v1.body), 'the imported export is the same definition')
    const copy = await as(viewer).get(`${PATH}/${imported.body.items[1].id}/export`)
    assert.deepEqual({ ...copy.body, name: 'Exported' }, exported.body)
  })

  test('GET /jobs/export gives every live job (the list filters apply) in one file that /import takes back', async () => {
    await as(op).post(PATH, { name: 'Bulk export a', tags: ['bulk-export'], steps: [wait()] })
    await as(op).post(PATH, { name: 'Bulk export b', tags: ['bulk-export'], steps: [wait(), { type: 'http.get', url: 'http://127.0.0.1:1/' }] })
    const gone = await as(op).post(PATH, { name: 'Bulk export gone', tags: ['bulk-export'], steps: [wait()] })
    await as(op).del(`${PATH}/${gone.body.id}`)
    const res = await as(viewer).get(`${PATH}/export?tag=bulk-export`)
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-disposition') ?? '', /attachment; filename="jobs\.json"/)
    assert.deepEqual(res.body.jobs.map((j: { name: string }) => j.name), ['Bulk export a', 'Bulk export b'])
    for (const field of ['id', 'version', 'created_at']) assert.equal(field in res.body.jobs[0], false, `${field} is a server field`)
    assert.equal(res.body.jobs[1].steps[1].url, 'http://127.0.0.1:1/')
    const back = await as(op).post(`${PATH}/import`, res.body)
    assert.equal(back.status, 200, JSON.stringify(back.body))
    assert.deepEqual(back.body.items.map((i: { version: number; created: boolean }) => [i.version, i.created]), [
      [2, false],
      [2, false],
    ])
    assert.equal((await call(app, 'GET', `${PATH}/export`)).status, 401)
  })

  test('an import with one bad definition among good ones changes nothing and names the bad one by index', async () => {
    const existing = await as(op).post(PATH, { name: 'Import target', steps: [wait()] })
    const before = await jobCount()
    const res = await as(op).post(`${PATH}/import`, {
      jobs: [
        { name: 'Import target', steps: [wait(), wait()] },
        { name: 'Broken import', steps: [{ type: 'exec' }, { type: 'nope' }] },
        { name: 'Fine import', steps: [wait()] },
      ],
    })
    assert.equal(res.status, 400)
    assert.equal(res.body.error.code, 'VALIDATION')
    assert.deepEqual(paths(res.body).sort(), ['jobs[1].steps[0].command', 'jobs[1].steps[1].type'])
    assert.equal(await jobCount(), before)
    assert.equal((await as(viewer).get(`${PATH}/${existing.body.id}`)).body.version, 1)
    assert.equal((await as(op).post(`${PATH}/import`, [])).status, 400)
    assert.equal((await as(viewer).post(`${PATH}/import`, [{ name: 'Viewer import', steps: [wait()] }])).status, 403)
  })
})

describe('jobs API: access and malformed requests', () => {
  test('viewers read and plan; writing and running need operator; no token is 401', async () => {
    const created = await as(op).post(PATH, { name: 'Role check', steps: [wait()] })
    const id = created.body.id as string
    assert.equal((await as(viewer).get(PATH)).status, 200)
    assert.equal((await as(viewer).get(`${PATH}/${id}`)).status, 200)
    assert.equal((await as(viewer).get(`${PATH}/${id}/versions`)).status, 200)
    assert.equal((await as(viewer).get(`${PATH}/${id}/export`)).status, 200)
    const plan = await as(viewer).post(`${PATH}/${id}/plan`, {})
    assert.equal(plan.status, 200, JSON.stringify(plan.body))
    for (const res of [
      await as(viewer).post(PATH, { name: 'Viewer job', steps: [wait()] }),
      await as(viewer).put(`${PATH}/${id}`, { name: 'Role check', steps: [wait()] }),
      await as(viewer).del(`${PATH}/${id}`),
      await as(viewer).post(`${PATH}/${id}/run`, {}),
    ]) {
      assert.equal(res.status, 403)
      assert.equal(res.body.error.code, 'FORBIDDEN')
    }
    assert.equal((await as(viewer).get(`${PATH}/${id}`)).body.version, 1)
    for (const [method, path] of [
      ['GET', PATH],
      ['GET', `${PATH}/${id}`],
      ['POST', PATH],
      ['POST', `${PATH}/${id}/plan`],
      ['DELETE', `${PATH}/${id}`],
    ] as const) {
      const res = await call(app, method, path, method === 'POST' ? { body: {} } : {})
      assert.equal(res.status, 401, `${method} ${path}`)
      assert.equal(res.body.error.code, 'UNAUTHENTICATED')
    }
  })

  test('a body that is not JSON is a 400; a malformed or unknown id is a 404, never a 500', async () => {
    const raw = (body: string, type: string) => app.request(PATH, { method: 'POST', headers: { authorization: `Bearer ${op.token}`, 'content-type': type }, body })
    const broken = await raw('{"name": "x", steps: [', 'application/json')
    assert.equal(broken.status, 400)
    assert.equal(((await broken.json()) as any).error.code, 'VALIDATION')
    assert.equal((await raw('name=x', 'application/x-www-form-urlencoded')).status, 400)
    assert.equal((await raw('"just a string"', 'application/json')).status, 400)
    assert.equal((await raw('[]', 'application/json')).status, 400)
    for (const id of ['not-a-uuid', "1'; drop table job; --", randomUUID()]) {
      const path = `${PATH}/${encodeURIComponent(id)}`
      for (const res of [
        await as(op).get(path),
        await as(op).get(`${path}/versions`),
        await as(op).get(`${path}/versions/1`),
        await as(op).get(`${path}/export`),
        await as(op).put(path, { name: 'x', steps: [wait()] }),
        await as(op).del(path),
        await as(op).post(`${path}/run`, {}),
        await as(op).post(`${path}/plan`, {}),
      ]) {
        assert.equal(res.status, 404, `${id}: ${JSON.stringify(res.body)}`)
        assert.equal(res.body.error.code, 'NOT_FOUND')
      }
    }
  })

  test('lists: filters and keyset pages', async () => {
    for (const name of ['List a', 'List b', 'List c']) await as(op).post(PATH, { name, tags: name === 'List b' ? ['x'] : [], steps: [wait()] })
    const first = await as(viewer).get(`${PATH}?q=list&limit=2`)
    assert.deepEqual(first.body.items.map((j: { name: string }) => j.name), ['List a', 'List b'])
    const second = await as(viewer).get(`${PATH}?q=list&limit=2&cursor=${first.body.next}`)
    assert.deepEqual(second.body.items.map((j: { name: string }) => j.name), ['List c'])
    assert.equal(second.body.next, null)
    assert.deepEqual((await as(viewer).get(`${PATH}?q=list&tag=x`)).body.items.map((j: { name: string }) => j.name), ['List b'])
    assert.equal((await as(viewer).get(`${PATH}?cursor=xyz`)).status, 400)
  })

  test('each listed job carries its newest run (null before the first)', async () => {
    const never = await as(op).post(PATH, { name: 'Last run never', steps: [wait()] })
    const ran = await as(op).post(PATH, { name: 'Last run twice', steps: [wait()] })
    const first = await as(op).post(`${PATH}/${ran.body.id}/run`, {})
    assert.equal(first.status, 202, JSON.stringify(first.body))
    const second = await as(op).post(`${PATH}/${ran.body.id}/run`, {})
    const listed = await as(viewer).get(`${PATH}?q=last run`)
    assert.equal(listed.status, 200)
    const byName = new Map(listed.body.items.map((j: { name: string }) => [j.name, j]))
    assert.equal((byName.get('Last run never') as { last_run: unknown }).last_run, null)
    const last = (byName.get('Last run twice') as { last_run: { id: string; status: string; created_at: string } }).last_run
    assert.equal(last.id, second.body.run_id)
    assert.equal(typeof last.status, 'string')
    assert.ok(!Number.isNaN(Date.parse(last.created_at)))
    assert.equal(never.status, 201)
  })
})
