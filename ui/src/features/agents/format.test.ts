import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { factRows, osLabel, parseTags, percent } from './format.ts'

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
