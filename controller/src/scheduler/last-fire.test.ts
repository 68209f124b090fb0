import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { useApiTestApp } from '../../../test/harness/api-app.ts'
import { run } from '../runs/runs.sql.ts'
import { scheduleFire } from './scheduler.sql.ts'

// The schedules list says how each schedule's latest occurrence went (the console's list shows it).

let jobId: string
const api = useApiTestApp(['operator', 'viewer'], async (setUp) => {
  const made = await setUp.as('operator').post('/api/v1/jobs', { name: 'Backup', steps: [{ type: 'wait', seconds: 0.1 }] })
  assert.equal(made.status, 201, JSON.stringify(made.body))
  jobId = made.body.id
})
const as = api.as
const PATH = '/api/v1/schedules'

test('each list item carries its latest fire and its run status; a schedule never fired has null; a list item PUT back is accepted', async () => {
  const ids: string[] = []
  for (const name of ['a-fired', 'b-missed', 'c-never']) {
    const res = await as('operator').post(PATH, { name, job_id: jobId, cron: '0 * * * *', enabled: false })
    assert.equal(res.status, 201, JSON.stringify(res.body))
    ids.push(res.body.id)
  }
  const runId = randomUUID()
  await api.t.ctx.db.insert(run).values({ id: runId, jobId, jobVersion: 1, jobName: 'Backup', status: 'failed', parameters: {}, trigger: 'schedule', createdAt: new Date() })
  const at = (h: number) => new Date(Date.UTC(2026, 5, 1, h))
  await api.t.ctx.db.insert(scheduleFire).values([
    { scheduleId: ids[0]!, fireAt: at(1), status: 'missed', reason: 'misfire' },
    { scheduleId: ids[0]!, fireAt: at(3), status: 'fired', runId },
    { scheduleId: ids[0]!, fireAt: at(2), status: 'skipped', reason: 'concurrency' },
    { scheduleId: ids[1]!, fireAt: at(5), status: 'missed', reason: 'misfire' },
  ])
  const list = await as('viewer').get(`${PATH}?limit=500`)
  assert.equal(list.status, 200, JSON.stringify(list.body))
  const byName = new Map(list.body.items.map((s: any) => [s.name, s.last_fire]))
  assert.deepEqual(byName.get('a-fired'), { fire_at: at(3).toISOString(), status: 'fired', reason: null, run_id: runId, run_status: 'failed' })
  assert.deepEqual(byName.get('b-missed'), { fire_at: at(5).toISOString(), status: 'missed', reason: 'misfire', run_id: null, run_status: null })
  assert.equal(byName.get('c-never'), null)
  // Pages keep working (the extra row that proves a next page is not looked up).
  const first = await as('viewer').get(`${PATH}?limit=1`)
  assert.equal(first.body.items.length, 1)
  assert.equal(first.body.items[0].last_fire.status, 'fired')
  // The list item is a GET body: sent back unchanged, it is accepted.
  const item = list.body.items.find((s: any) => s.name === 'a-fired')
  const put = await as('operator').put(`${PATH}/${item.id}`, item)
  assert.equal(put.status, 200, JSON.stringify(put.body))
})
