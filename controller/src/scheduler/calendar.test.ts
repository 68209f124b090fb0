import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { errorPaths } from '../../../test/harness/auth.ts'
import { useApiTestApp } from '../../../test/harness/api-app.ts'
import { activeWindowAt, openingsBetween } from './maintenance.ts'
import { windowRow } from './test-window.ts'

// The maintenance calendar: every opening of a window in a range, by the same rules as activeWindowAt.

const w = windowRow
const spans = (r: { openings: { start: Date; end: Date }[] }) => r.openings.map((o) => [o.start.toISOString(), o.end.toISOString()])
const D = (s: string) => new Date(s)

const api = useApiTestApp(['operator', 'viewer'])
const as = api.as
describe('openingsBetween', () => {
  test('one_off: listed when it overlaps the range, whole', () => {
    const win = w({ kind: 'one_off', startsAt: D('2026-05-01T22:00:00Z'), endsAt: D('2026-05-02T02:00:00Z') })
    assert.deepEqual(spans(openingsBetween(win, D('2026-05-02T00:00:00Z'), D('2026-05-03T00:00:00Z'))), [['2026-05-01T22:00:00.000Z', '2026-05-02T02:00:00.000Z']])
    assert.deepEqual(spans(openingsBetween(win, D('2026-05-02T02:00:00Z'), D('2026-05-03T00:00:00Z'))), [], 'the end is exclusive')
    assert.deepEqual(spans(openingsBetween(win, D('2026-04-01T00:00:00Z'), D('2026-05-01T22:00:00Z'))), [], 'a range ending at its start does not overlap it')
  })

  test('weekly: each day named, in the zone, across spring-forward (New York) and past midnight', () => {
    // sun 01:00–04:00 New York: 2 real hours on spring-forward day (2026-03-08), 3 on the Sunday before.
    const win = w({ kind: 'weekly', timezone: 'America/New_York', ranges: [{ days: ['sun'], start: '01:00', end: '04:00' }, { days: ['fri'], start: '22:00', end: '02:00' }] })
    const got = spans(openingsBetween(win, D('2026-03-01T00:00:00Z'), D('2026-03-09T00:00:00Z')))
    assert.deepEqual(got, [
      ['2026-03-01T06:00:00.000Z', '2026-03-01T09:00:00.000Z'],
      ['2026-03-07T03:00:00.000Z', '2026-03-07T07:00:00.000Z'],
      ['2026-03-08T06:00:00.000Z', '2026-03-08T08:00:00.000Z'],
    ])
    // Every listed opening is what activeWindowAt says at its start and just before its end.
    for (const [start, end] of got) {
      assert.deepEqual(activeWindowAt(win, D(start!))?.end.toISOString(), end)
      assert.deepEqual(activeWindowAt(win, new Date(D(end!).getTime() - 1))?.start.toISOString(), start)
    }
  })

  test('weekly: a range that began the day before the range is listed', () => {
    const win = w({ kind: 'weekly', ranges: [{ days: ['fri'], start: '22:00', end: '02:00' }] })
    // 2026-05-01 is a Friday.
    assert.deepEqual(spans(openingsBetween(win, D('2026-05-02T00:00:00Z'), D('2026-05-02T12:00:00Z'))), [['2026-05-01T22:00:00.000Z', '2026-05-02T02:00:00.000Z']])
  })

  test('cron: each fire opens for duration_sec; one that began before the range still counts', () => {
    const win = w({ kind: 'cron', cron: '0 22 * * *', durationSec: 3 * 3600, timezone: 'Europe/Berlin' })
    assert.deepEqual(spans(openingsBetween(win, D('2026-06-10T21:00:00Z'), D('2026-06-12T00:00:00Z'))), [
      ['2026-06-10T20:00:00.000Z', '2026-06-10T23:00:00.000Z'],
      ['2026-06-11T20:00:00.000Z', '2026-06-11T23:00:00.000Z'],
    ])
  })

  test('cron: an every-minute window over a month stops at the cap and says so', () => {
    const win = w({ kind: 'cron', cron: '* * * * *', durationSec: 60 })
    const r = openingsBetween(win, D('2026-06-01T00:00:00Z'), D('2026-07-01T00:00:00Z'), 500)
    assert.equal(r.openings.length, 500)
    assert.equal(r.truncated, true)
    assert.equal(r.openings[0]!.start.toISOString(), '2026-06-01T00:00:00.000Z', 'an opening that started a minute before `from` ends at it: not listed')
  })
})

const PATH = '/api/v1/maintenance-windows'

describe('GET /maintenance-windows/calendar', () => {
  test('viewers get every opening of every window in the range, disabled ones flagged, by start', async () => {
    const made = [
      await as('operator').post(PATH, { name: 'cal weekly', kind: 'weekly', timezone: 'Europe/Berlin', ranges: [{ days: ['sat'], start: '23:00', end: '01:00' }], applies_to: 'all' }),
      await as('operator').post(PATH, { name: 'cal once', kind: 'one_off', starts_at: '2026-05-05T08:00:00Z', ends_at: '2026-05-05T09:30:00Z', applies_to: 'all', action: 'defer' }),
      await as('operator').post(PATH, { name: 'cal off', kind: 'cron', cron: '0 3 * * *', duration_sec: 1800, applies_to: 'all', enabled: false }),
    ]
    for (const m of made) assert.equal(m.status, 201, JSON.stringify(m.body))
    const res = await as('viewer').get(`${PATH}/calendar?from=2026-05-04T00:00:00Z&to=2026-05-10T00:00:00Z`)
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.equal(res.body.from, '2026-05-04T00:00:00.000Z')
    assert.deepEqual(res.body.truncated, [])
    const rows = res.body.items.map((i: any) => [i.name, i.start, i.end, i.enabled, i.action])
    assert.deepEqual(rows, [
      ['cal off', '2026-05-04T03:00:00.000Z', '2026-05-04T03:30:00.000Z', false, 'skip'],
      ['cal off', '2026-05-05T03:00:00.000Z', '2026-05-05T03:30:00.000Z', false, 'skip'],
      ['cal once', '2026-05-05T08:00:00.000Z', '2026-05-05T09:30:00.000Z', true, 'defer'],
      ['cal off', '2026-05-06T03:00:00.000Z', '2026-05-06T03:30:00.000Z', false, 'skip'],
      ['cal off', '2026-05-07T03:00:00.000Z', '2026-05-07T03:30:00.000Z', false, 'skip'],
      ['cal off', '2026-05-08T03:00:00.000Z', '2026-05-08T03:30:00.000Z', false, 'skip'],
      ['cal off', '2026-05-09T03:00:00.000Z', '2026-05-09T03:30:00.000Z', false, 'skip'],
      // Saturday 23:00 CEST = 21:00Z, to Sunday 01:00 CEST.
      ['cal weekly', '2026-05-09T21:00:00.000Z', '2026-05-09T23:00:00.000Z', true, 'skip'],
    ])
    assert.equal(res.body.items[0].window_id, made[2]!.body.id)
    assert.equal(res.body.items[0].timezone, 'UTC')
    // A deleted window is gone from the calendar.
    assert.equal((await as('operator').del(`${PATH}/${made[2]!.body.id}`)).status, 200)
    const again = await as('viewer').get(`${PATH}/calendar?from=2026-05-04T00:00:00Z&to=2026-05-10T00:00:00Z`)
    assert.deepEqual(new Set(again.body.items.map((i: any) => i.name)), new Set(['cal once', 'cal weekly']))
  })

  test('a missing, reversed or too long range is a 400 naming the parameter', async () => {
    const missing = await as('viewer').get(`${PATH}/calendar?from=2026-05-04T00:00:00Z`)
    assert.equal(missing.status, 400)
    assert.deepEqual(errorPaths(missing.body), ['to'])
    const reversed = await as('viewer').get(`${PATH}/calendar?from=2026-05-04T00:00:00Z&to=2026-05-01T00:00:00Z`)
    assert.equal(reversed.status, 400)
    assert.deepEqual(errorPaths(reversed.body), ['to'])
    const long = await as('viewer').get(`${PATH}/calendar?from=2026-01-01T00:00:00Z&to=2026-06-01T00:00:00Z`)
    assert.equal(long.status, 400)
    assert.match(long.body.error.details[0].message, /62 days/)
    const bad = await as('viewer').get(`${PATH}/calendar?from=yesterday&to=2026-06-01T00:00:00Z`)
    assert.equal(bad.status, 400)
    assert.deepEqual(errorPaths(bad.body), ['from'])
  })

  test('needs a signed-in user', async () => {
    const res = await api.app.request(`${PATH}/calendar?from=2026-05-04T00:00:00Z&to=2026-05-05T00:00:00Z`)
    assert.equal(res.status, 401)
  })
})
