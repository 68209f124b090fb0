import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { databaseLabel, formatUptime, readinessView } from './status.ts'

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
