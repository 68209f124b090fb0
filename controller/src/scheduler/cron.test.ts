import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { canonicalZone, localTime, nextFireTimes, previewFires, validateCron } from './cron.ts'

const iso = (dates: Date[]) => dates.map((d) => d.toISOString())
const fires = (cron: string, timezone: string, from: string, count: number) => iso(nextFireTimes({ cron, timezone }, new Date(from), count))

describe('DST in America/New_York (2026: spring forward Mar 8 02:00→03:00, fall back Nov 1 02:00→01:00)', () => {
  test('30 2 * * * on spring-forward day fires once at 03:00 EDT, the first instant after the gap', () => {
    assert.deepEqual(fires('30 2 * * *', 'America/New_York', '2026-03-06T12:00:00Z', 4), [
      '2026-03-07T07:30:00.000Z', // 02:30 EST
      '2026-03-08T07:00:00.000Z', // 02:30 does not exist → 03:00 EDT
      '2026-03-09T06:30:00.000Z', // 02:30 EDT
      '2026-03-10T06:30:00.000Z',
    ])
    assert.deepEqual(
      previewFires({ cron: '30 2 * * *', timezone: 'America/New_York' }, new Date('2026-03-07T12:00:00Z'), 1),
      [{ at_utc: '2026-03-08T07:00:00.000Z', at_local: '2026-03-08T03:00:00-04:00', offset: '-04:00' }],
    )
  })

  test('30 2 * * * on fall-back day fires once at 02:30 EST (02:30 happens once; 01:00–02:00 is what repeats)', () => {
    assert.deepEqual(fires('30 2 * * *', 'America/New_York', '2026-10-30T12:00:00Z', 3), [
      '2026-10-31T06:30:00.000Z', // 02:30 EDT
      '2026-11-01T07:30:00.000Z', // 02:30 EST
      '2026-11-02T07:30:00.000Z',
    ])
  })

  test('30 1 * * * on fall-back day fires once, at the first 01:30 (EDT), not again at 01:30 EST', () => {
    assert.deepEqual(fires('30 1 * * *', 'America/New_York', '2026-10-30T12:00:00Z', 3), [
      '2026-10-31T05:30:00.000Z',
      '2026-11-01T05:30:00.000Z', // 01:30 EDT; 06:30Z (01:30 EST) is not a fire
      '2026-11-02T06:30:00.000Z',
    ])
    assert.equal(localTime(new Date('2026-11-01T05:30:00Z'), 'America/New_York').local, '2026-11-01T01:30:00-04:00')
  })

  test('a fixed time on the hour inside the gap (0 2 * * *) and a list of fixed times (30 2,14 * * *) also move to 03:00', () => {
    assert.deepEqual(fires('0 2 * * *', 'America/New_York', '2026-03-07T12:00:00Z', 2), ['2026-03-08T07:00:00.000Z', '2026-03-09T06:00:00.000Z'])
    assert.deepEqual(fires('30 2,14 * * *', 'America/New_York', '2026-03-07T12:00:00Z', 3), ['2026-03-07T19:30:00.000Z', '2026-03-08T07:00:00.000Z', '2026-03-08T18:30:00.000Z'])
  })

  test('an interval job (*/30 * * * *) follows real time: it skips the missing hour and runs through the repeated one', () => {
    assert.deepEqual(fires('*/30 * * * *', 'America/New_York', '2026-03-08T06:00:00Z', 3), [
      '2026-03-08T06:30:00.000Z', // 01:30 EST
      '2026-03-08T07:00:00.000Z', // 03:00 EDT: 02:00 and 02:30 do not exist
      '2026-03-08T07:30:00.000Z',
    ])
    assert.deepEqual(fires('*/30 * * * *', 'America/New_York', '2026-11-01T04:45:00Z', 5), [
      '2026-11-01T05:00:00.000Z', // 01:00 EDT
      '2026-11-01T05:30:00.000Z', // 01:30 EDT
      '2026-11-01T06:00:00.000Z', // 01:00 EST
      '2026-11-01T06:30:00.000Z', // 01:30 EST
      '2026-11-01T07:00:00.000Z', // 02:00 EST
    ])
  })
})

describe('DST in Europe/Berlin (2026: spring forward Mar 29 02:00→03:00, fall back Oct 25 03:00→02:00)', () => {
  test('30 2 * * * on spring-forward day fires once at 03:00 CEST', () => {
    assert.deepEqual(fires('30 2 * * *', 'Europe/Berlin', '2026-03-27T12:00:00Z', 3), [
      '2026-03-28T01:30:00.000Z', // 02:30 CET
      '2026-03-29T01:00:00.000Z', // 03:00 CEST
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
    ])
    assert.equal(localTime(new Date('2026-03-29T01:00:00Z'), 'Europe/Berlin').local, '2026-03-29T03:00:00+02:00')
  })

  test('30 2 * * * on fall-back day fires once, at the first 02:30 (CEST)', () => {
    assert.deepEqual(fires('30 2 * * *', 'Europe/Berlin', '2026-10-23T12:00:00Z', 3), [
      '2026-10-24T00:30:00.000Z',
      '2026-10-25T00:30:00.000Z', // 02:30 CEST; 01:30Z (02:30 CET) is not a fire
      '2026-10-26T01:30:00.000Z',
    ])
    assert.deepEqual(
      previewFires({ cron: '30 2 * * *', timezone: 'Europe/Berlin' }, new Date('2026-10-24T12:00:00Z'), 2).map((f) => f.at_local),
      ['2026-10-25T02:30:00+02:00', '2026-10-26T02:30:00+01:00'],
    )
  })

  test('30 1 * * * is untouched by either transition', () => {
    assert.deepEqual(fires('30 1 * * *', 'Europe/Berlin', '2026-03-28T12:00:00Z', 2), ['2026-03-29T00:30:00.000Z', '2026-03-29T23:30:00.000Z'])
    assert.deepEqual(fires('30 1 * * *', 'Europe/Berlin', '2026-10-24T12:00:00Z', 2), ['2026-10-24T23:30:00.000Z', '2026-10-26T00:30:00.000Z'])
  })
})

describe('nextFireTimes', () => {
  test('is strictly after `after`, and honours start (inclusive) and end (inclusive)', () => {
    assert.deepEqual(fires('0 12 * * *', 'UTC', '2026-01-01T12:00:00Z', 1), ['2026-01-02T12:00:00.000Z'])
    assert.deepEqual(fires('0 12 * * *', 'UTC', '2026-01-01T11:59:59.999Z', 1), ['2026-01-01T12:00:00.000Z'])
    const spec = { cron: '0 12 * * *', timezone: 'UTC', startAt: new Date('2026-01-05T12:00:00Z'), endAt: new Date('2026-01-07T12:00:00Z') }
    assert.deepEqual(iso(nextFireTimes(spec, new Date('2026-01-01T00:00:00Z'), 10)), ['2026-01-05T12:00:00.000Z', '2026-01-06T12:00:00.000Z', '2026-01-07T12:00:00.000Z'])
    assert.deepEqual(iso(nextFireTimes(spec, new Date('2026-01-07T12:00:00Z'), 10)), [])
    assert.deepEqual(iso(nextFireTimes(spec, new Date('2026-01-06T00:00:00Z'), 1)), ['2026-01-06T12:00:00.000Z'])
    assert.deepEqual(nextFireTimes(spec, new Date(), 0), [])
  })

  test('reads presets and 6-field expressions (seconds first)', () => {
    assert.deepEqual(fires('@daily', 'Europe/Berlin', '2026-06-01T12:00:00Z', 1), ['2026-06-01T22:00:00.000Z'])
    assert.deepEqual(fires('@hourly', 'UTC', '2026-06-01T12:10:00Z', 2), ['2026-06-01T13:00:00.000Z', '2026-06-01T14:00:00.000Z'])
    assert.deepEqual(fires('*/5 * * * * *', 'UTC', '2026-06-01T12:00:00Z', 2), ['2026-06-01T12:00:05.000Z', '2026-06-01T12:00:10.000Z'])
    assert.deepEqual(fires('0 9 * * MON-FRI', 'Asia/Kolkata', '2026-06-05T12:00:00Z', 1), ['2026-06-08T03:30:00.000Z'])
  })
})

describe('validateCron', () => {
  test('accepts 5 and 6 fields and presets in a real zone', () => {
    for (const cron of ['30 2 * * *', '*/5 * * * * *', '@daily', '@hourly', '@weekly', '@monthly', '@yearly', '0 0 L * *', '0 12 * * MON-FRI']) {
      assert.deepEqual(validateCron(cron, 'America/New_York'), [], cron)
    }
  })

  test('names the field of every problem', () => {
    assert.deepEqual(validateCron('30 2 * * *', 'Mars/Olympus').map((p) => p.path), ['timezone'])
    for (const cron of ['', 'bogus', '60 * * * *', '* * * * * * *', '0 0 1 1 * 2027', '@reboot', '@every 5s', '2026-01-01T00:00:00', '0 0 30 2 *', '5/5 * * * *']) {
      const problems = validateCron(cron, 'UTC')
      assert.deepEqual(problems.map((p) => p.path), ['cron'], `${cron}: ${JSON.stringify(problems)}`)
      assert.doesNotMatch(problems[0]!.message, /CronPattern/)
    }
    assert.deepEqual(validateCron('nope', 'Nowhere/Land').map((p) => p.path).sort(), ['cron', 'timezone'])
  })

  test('canonicalZone gives the IANA spelling', () => {
    assert.equal(canonicalZone('america/new_york'), 'America/New_York')
    assert.equal(canonicalZone('utc'), 'UTC')
    assert.equal(canonicalZone('Not/A_Zone'), undefined)
    assert.equal(canonicalZone(''), undefined)
  })
})
