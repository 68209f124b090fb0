import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { formatBytes, formatDuration, relativeTime } from './format.ts'

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

describe('formatDuration', () => {
  test('names every non-zero unit down to minutes', () => {
    assert.equal(formatDuration(45), '45 s')
    assert.equal(formatDuration(45 * 60), '45 min')
    assert.equal(formatDuration(90 * 60), '1 h 30 min')
    assert.equal(formatDuration(2 * 86_400 + 3 * 3600), '2 d 3 h')
  })
})

describe('formatBytes', () => {
  test('uses binary units with one decimal below ten', () => {
    assert.equal(formatBytes(512), '512 B')
    assert.equal(formatBytes(1536), '1.5 KiB')
    assert.equal(formatBytes(16 * 1024 ** 3), '16 GiB')
  })
})
