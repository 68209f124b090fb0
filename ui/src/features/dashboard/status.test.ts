import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { databaseLabel, formatUptime, nextFires, readinessView, statusBars } from './status.ts'

describe('readinessView', () => {
  test('labels a ready controller as good with every check ok', () => {
    const view = readinessView({ status: 'ready', checks: { database: 'ok', migrations: 'ok' } })
    assert.deepEqual(view, {
      label: 'Ready',
      tone: 'good',
      checks: [
        { name: 'Database', ok: true, detail: 'ok' },
        { name: 'Migrations', ok: true, detail: 'ok' },
      ],
    })
  })

  test('labels a not-ready controller as bad and keeps the failing reason', () => {
    const view = readinessView({ status: 'not_ready', checks: { database: 'connection refused', migrations: 'unknown' } })
    assert.equal(view.label, 'Not ready')
    assert.equal(view.tone, 'bad')
    assert.deepEqual(view.checks[0], { name: 'Database', ok: false, detail: 'connection refused' })
  })

  test('shows checks it has no label for under their own key', () => {
    const view = readinessView({ status: 'ready', checks: { queue: 'ok' } })
    assert.deepEqual(view.checks, [{ name: 'queue', ok: true, detail: 'ok' }])
  })
})

describe('databaseLabel', () => {
  test('names both backends', () => {
    assert.equal(databaseLabel('postgres'), 'PostgreSQL')
    assert.equal(databaseLabel('pglite'), 'Embedded PGlite')
  })
})

describe('formatUptime', () => {
  const start = new Date('2025-01-01T00:00:00Z')
  const after = (seconds: number) => new Date(start.getTime() + seconds * 1000)

  test('shows seconds for a fresh start', () => {
    assert.equal(formatUptime(start, start), '0s')
    assert.equal(formatUptime(start, after(42)), '42s')
  })

  test('shows the two largest units', () => {
    assert.equal(formatUptime(start, after(12 * 60 + 5)), '12m 5s')
    assert.equal(formatUptime(start, after(3 * 86_400 + 4 * 3_600 + 59)), '3d 4h')
  })

  test('keeps a zero middle unit rather than skipping to a smaller one', () => {
    assert.equal(formatUptime(start, after(86_400 + 30)), '1d 0h')
  })

  test('accepts the ISO string the API sends', () => {
    assert.equal(formatUptime('2025-01-01T00:00:00.000Z', after(3_600)), '1h 0m')
  })

  test('reads a start in the future as 0s rather than a negative time', () => {
    assert.equal(formatUptime(after(10), start), '0s')
  })

  test('rejects a start time it cannot parse', () => {
    assert.throws(() => formatUptime('yesterday', start), RangeError)
  })
})

describe('statusBars', () => {
  test('always shows succeeded and failed, others only when they happened, scaled to the largest', () => {
    const bars = statusBars({ succeeded: 40, failed: 0, running: 2, cancelled: 0, timed_out: 1 })
    assert.deepEqual(
      bars.map((b) => [b.status, b.count, b.width, b.tone]),
      [
        ['running', 2, 5, 'active'],
        ['succeeded', 40, 100, 'good'],
        ['failed', 0, 0, 'bad'],
        ['timed_out', 1, 3, 'bad'],
      ],
    )
  })
  test('a tiny count still shows a sliver; nothing at all is all zeros', () => {
    assert.equal(statusBars({ succeeded: 1000, failed: 1 }).find((b) => b.status === 'failed')!.width, 2)
    assert.deepEqual(
      statusBars({}).map((b) => b.width),
      [0, 0],
    )
  })
})

describe('nextFires', () => {
  const s = (name: string, next: string | null) => ({ id: name, name, job_id: 'j', job_name: 'job', next_fire_at: next, timezone: 'UTC' })
  test('the soonest fires first, schedules without one left out, at most count', () => {
    const fires = nextFires([s('later', '2025-01-01T10:00:00Z'), s('never', null), s('soon', '2025-01-01T09:00:00Z'), s('also soon', '2025-01-01T09:00:00Z')], 2)
    assert.deepEqual(
      fires.map((f) => f.name),
      ['also soon', 'soon'],
    )
  })
})
