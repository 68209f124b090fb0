import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { factRows, formatBytes, osLabel, parseTags, percent, relativeTime } from './format.ts'

describe('relativeTime', () => {
  const now = Date.parse('2025-03-01T12:00:00Z')
  const ago = (s: number) => new Date(now - s * 1000).toISOString()
  test('counts up from just now through seconds, minutes, hours and days', () => {
    assert.equal(relativeTime(ago(2), now), 'just now')
    assert.equal(relativeTime(ago(42), now), '42 s ago')
    assert.equal(relativeTime(ago(5 * 60 + 30), now), '5 min ago')
    assert.equal(relativeTime(ago(3 * 3600), now), '3 h ago')
    assert.equal(relativeTime(ago(2 * 86400 + 5), now), '2 d ago')
  })
  test('reads future times as "in …" and missing ones as never', () => {
    assert.equal(relativeTime(ago(-300), now), 'in 5 min')
    assert.equal(relativeTime(ago(-1), now), 'in a moment')
    assert.equal(relativeTime(null, now), 'never')
    assert.equal(relativeTime('not a date', now), 'unknown')
  })
})

describe('formatBytes', () => {
  test('uses binary units with one decimal below ten', () => {
    assert.equal(formatBytes(512), '512 B')
    assert.equal(formatBytes(1536), '1.5 KiB')
    assert.equal(formatBytes(16 * 1024 ** 3), '16 GiB')
  })
})

describe('factRows', () => {
  test('puts known facts first with labels, formats memory and lists, leaves out empty ones', () => {
    const rows = factRows({ zeta: 'last', memory_bytes: 8 * 1024 ** 3, hostname: 'web-1', fqdn: null, os: 'linux', ip_addresses: ['10.0.0.5', 'fd00::5'], extra: { a: 1 } })
    assert.deepEqual(
      rows.map((r) => [r.label, r.value]),
      [
        ['Host name', 'web-1'],
        ['Operating system', 'Linux'],
        ['IP addresses', '10.0.0.5, fd00::5'],
        ['Memory', '8 GiB'],
        ['extra', '{"a":1}'],
        ['zeta', 'last'],
      ],
    )
  })
  test('names the OS for the list', () => {
    assert.equal(osLabel({ os: 'windows' }), 'Windows')
    assert.equal(osLabel({ os: 'unknown' }), '')
    assert.equal(osLabel({}), '')
  })
})

describe('parseTags', () => {
  test('reads key=value pairs separated by commas or lines', () => {
    assert.deepEqual(parseTags('env=prod, role = web\nteam=ops\n\n'), { env: 'prod', role: 'web', team: 'ops' })
    assert.deepEqual(parseTags('canary'), { canary: '' })
    assert.deepEqual(parseTags('  '), {})
  })
})

describe('percent', () => {
  test('is a whole percentage, 0 for nothing to do', () => {
    assert.equal(percent(1, 3), 33)
    assert.equal(percent(3, 3), 100)
    assert.equal(percent(0, 0), 0)
  })
})
