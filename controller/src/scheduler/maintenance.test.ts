import assert from 'node:assert/strict'
import { test } from 'node:test'
import { activeWindowAt } from './maintenance.ts'
import { windowRow } from './test-window.ts'

const w = windowRow
const iso = (o: { start: Date; end: Date } | null) => (o ? [o.start.toISOString(), o.end.toISOString()] : null)

test('one_off: open from starts_at (inclusive) to ends_at (exclusive)', () => {
  const win = w({ kind: 'one_off', startsAt: new Date('2026-05-01T10:00:00Z'), endsAt: new Date('2026-05-01T12:00:00Z') })
  assert.equal(activeWindowAt(win, new Date('2026-05-01T09:59:59Z')), null)
  assert.deepEqual(iso(activeWindowAt(win, new Date('2026-05-01T10:00:00Z'))), ['2026-05-01T10:00:00.000Z', '2026-05-01T12:00:00.000Z'])
  assert.equal(activeWindowAt(win, new Date('2026-05-01T12:00:00Z')), null)
})

test('cron: each fire opens the window for duration_sec, in the zone', () => {
  const win = w({ kind: 'cron', cron: '0 22 * * *', durationSec: 3 * 3600, timezone: 'Europe/Berlin' })
  // 22:00 CEST = 20:00Z; open until 23:00Z, across midnight UTC+2.
  assert.deepEqual(iso(activeWindowAt(win, new Date('2026-06-10T22:30:00Z'))), ['2026-06-10T20:00:00.000Z', '2026-06-10T23:00:00.000Z'])
  assert.equal(activeWindowAt(win, new Date('2026-06-10T23:00:00Z')), null)
  assert.equal(activeWindowAt(win, new Date('2026-06-10T19:59:59Z')), null)
})

test('weekly: a range crossing midnight is open on the next day until its end', () => {
  const win = w({ kind: 'weekly', timezone: 'America/New_York', ranges: [{ days: ['fri'], start: '22:00', end: '02:00' }] })
  // Fri 2026-06-12 22:00 EDT = Sat 02:00Z; ends Sat 02:00 EDT = 06:00Z.
  const open = ['2026-06-13T02:00:00.000Z', '2026-06-13T06:00:00.000Z']
  assert.deepEqual(iso(activeWindowAt(win, new Date('2026-06-13T05:30:00Z'))), open, 'Saturday 01:30 local')
  assert.deepEqual(iso(activeWindowAt(win, new Date('2026-06-13T02:00:00Z'))), open)
  assert.equal(activeWindowAt(win, new Date('2026-06-13T06:00:00Z')), null)
  assert.equal(activeWindowAt(win, new Date('2026-06-12T05:30:00Z')), null, 'Friday 01:30 local: Thursday has no range')
})

test('weekly on a DST day: wall-clock bounds, so a range over the spring-forward gap is an hour shorter', () => {
  // 2026-03-08 (Sunday) New York: 02:00 EST → 03:00 EDT.
  const win = w({ kind: 'weekly', timezone: 'America/New_York', ranges: [{ days: ['sun'], start: '01:00', end: '04:00' }] })
  const open = ['2026-03-08T06:00:00.000Z', '2026-03-08T08:00:00.000Z']
  assert.deepEqual(iso(activeWindowAt(win, new Date('2026-03-08T07:30:00Z'))), open)
  assert.equal(activeWindowAt(win, new Date('2026-03-08T08:00:00Z')), null)
  // A start inside the gap (02:30) is read with the offset before it: 03:30 EDT.
  const gap = w({ kind: 'weekly', timezone: 'America/New_York', ranges: [{ days: ['sun'], start: '02:30', end: '05:00' }] })
  assert.deepEqual(iso(activeWindowAt(gap, new Date('2026-03-08T08:00:00Z'))), ['2026-03-08T07:30:00.000Z', '2026-03-08T09:00:00.000Z'])
  // Fall back (2026-11-01): 01:00–03:00 local spans three real hours, starting at the first 01:00 (EDT).
  const back = w({ kind: 'weekly', timezone: 'America/New_York', ranges: [{ days: ['sun'], start: '01:00', end: '03:00' }] })
  assert.deepEqual(iso(activeWindowAt(back, new Date('2026-11-01T06:30:00Z'))), ['2026-11-01T05:00:00.000Z', '2026-11-01T08:00:00.000Z'])
})
