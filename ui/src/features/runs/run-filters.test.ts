import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { filtersFromParams, filtersToParams, hasFilters, listQuery, matchesFilters } from './run-filters.ts'
import { canRetry, formatDuration, statusTone } from './status.ts'
import { StepGridModel } from './step-grid-model.ts'

const JOB = '0b6f2d0e-8f0a-4c39-9a53-3f0f4a4f2e11'

describe('run filters', () => {
  test('read from the URL, ignoring anything malformed', () => {
    assert.deepEqual(filtersFromParams({ status: 'failed', job_id: JOB, trigger: 'retry', requested_by: ' ann ', range: '24h' }), { status: 'failed', job_id: JOB, trigger: 'retry', requested_by: 'ann', range: '24h' })
    assert.deepEqual(filtersFromParams({ status: 'exploded', job_id: 'nope', trigger: 'cron', range: 'forever', requested_by: '  ' }), {})
    assert.deepEqual(filtersFromParams({ range: 'custom', from: '2024-05-01T10:00', to: 'tomorrow' }), { range: 'custom', from: '2024-05-01T10:00' })
    assert.deepEqual(filtersFromParams({ range: '1h', from: '2024-05-01T10:00' }), { range: '1h' }, 'from/to only with a custom range')
  })

  test('written back with every key (unset ones removed from the URL)', () => {
    assert.deepEqual(filtersToParams({ status: 'running' }), { status: 'running', job_id: undefined, trigger: undefined, requested_by: undefined, range: undefined, from: undefined, to: undefined })
    assert.equal(hasFilters({}), false)
    assert.equal(hasFilters({ trigger: 'manual' }), true)
  })

  test('the API query: presets count back from now, a custom range is local time', () => {
    const now = Date.parse('2024-05-02T12:00:00Z')
    assert.deepEqual(listQuery({ status: 'failed', range: '1h' }, now), { status: 'failed', since: '2024-05-02T11:00:00.000Z' })
    const custom = listQuery({ range: 'custom', from: '2024-05-01T10:00', to: '2024-05-01T11:30' }, now)
    assert.equal(custom.since, new Date('2024-05-01T10:00').toISOString())
    assert.equal(custom.until, new Date('2024-05-01T11:30').toISOString())
  })

  test('a run that appears later belongs to the list only when it matches', () => {
    const r = { status: 'running' as const, job_id: JOB, trigger: 'manual' as const, requested_by: 'ann', created_at: '2024-05-02T12:00:00Z' }
    assert.equal(matchesFilters(r, {}), true)
    assert.equal(matchesFilters(r, { status: 'failed' }), false)
    assert.equal(matchesFilters(r, { trigger: 'schedule' }), false)
    assert.equal(matchesFilters(r, { requested_by: 'bob' }), false)
  })
})

describe('run status presentation', () => {
  test('tones, retryable outcomes and durations', () => {
    assert.equal(statusTone('succeeded'), 'good')
    assert.equal(statusTone('agent_lost'), 'bad')
    assert.equal(statusTone('running'), 'active')
    assert.equal(canRetry('failed'), true)
    assert.equal(canRetry('cancelled'), true)
    assert.equal(canRetry('succeeded'), false)
    assert.equal(canRetry('running'), false)
    assert.deepEqual([350, 12_400, 185_000, 7_440_000, 100_000_000].map(formatDuration), ['350 ms', '12.4 s', '3m 05s', '2h 04m', '1d 3h'])
    assert.equal(formatDuration(null), '—')
  })
})

describe('StepGridModel', () => {
  const ev = (id: string, step: string, target: string | null, status: string, attempt = 1) => ({ step_run_id: id, step_id: step, target_name: target, attempt, status: status as never, exit_code: null, error: null, at: '' })

  test('columns in step order, rows in the run target order, the latest attempt per cell', () => {
    const g = new StepGridModel()
    g.setTargets(['web-2', 'web-1'])
    for (const e of [ev('a', 'build', 'web-1', 'queued'), ev('b', 'build', 'web-2', 'queued'), ev('c', 'test', 'web-1', 'queued'), ev('d', 'test', 'web-2', 'queued')]) g.apply(e)
    assert.deepEqual(g.steps, ['build', 'test'])
    assert.deepEqual(g.targets, ['web-2', 'web-1'])
    g.apply(ev('a', 'build', 'web-1', 'failed'))
    g.apply(ev('e', 'build', 'web-1', 'running', 2))
    assert.equal(g.cell('web-1', 'build')?.stepRunId, 'e')
    assert.equal(g.cell('web-1', 'build')?.status, 'running')
    assert.deepEqual(g.attempts('web-1', 'build').map((c) => c.status), ['failed', 'running'])
    assert.deepEqual([...g.stepRunsOf('web-1')].sort(), ['a', 'c', 'e'])
    assert.equal(g.apply({ ...ev('x', 'build', 'web-1', 'queued'), step_run_id: null }), false)
  })

  test('steps without a target form a controller row', () => {
    const g = new StepGridModel()
    g.apply(ev('a', 'pause', null, 'succeeded'))
    assert.equal(g.targets.length, 1)
    assert.equal(StepGridModel.targetLabel(g.targets[0]!), 'controller')
    assert.equal(g.cell(g.targets[0]!, 'pause')?.status, 'succeeded')
  })
})
