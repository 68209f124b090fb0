import assert from 'node:assert/strict'
import { test } from 'node:test'
import { cronToPreset, DEFAULT_PRESET, describeCron, presetToCron, type Preset } from './cron-presets.ts'

const p = (v: Partial<Preset>): Preset => ({ ...DEFAULT_PRESET, ...v })

test('presets make 5-field expressions', () => {
  assert.equal(presetToCron(p({ kind: 'minutes', every: 15 })), '*/15 * * * *')
  assert.equal(presetToCron(p({ kind: 'minutes', every: 1 })), '* * * * *')
  assert.equal(presetToCron(p({ kind: 'hourly', minute: 5 })), '5 * * * *')
  assert.equal(presetToCron(p({ kind: 'daily', time: '02:30' })), '30 2 * * *')
  assert.equal(presetToCron(p({ kind: 'weekly', time: '22:05', days: [5, 1, 3] })), '5 22 * * 1,3,5')
  assert.equal(presetToCron(p({ kind: 'monthly', time: '00:00', day: 31 })), '0 0 31 * *')
})

test('a preset with a field not filled in yet has no expression', () => {
  assert.equal(presetToCron(p({ kind: 'minutes', every: 0 })), null)
  assert.equal(presetToCron(p({ kind: 'daily', time: '' })), null)
  assert.equal(presetToCron(p({ kind: 'weekly', days: [] })), null)
  assert.equal(presetToCron(p({ kind: 'custom' })), null)
})

test('expressions the builder made open in the builder again', () => {
  for (const v of [p({ kind: 'minutes', every: 15 }), p({ kind: 'hourly', minute: 5 }), p({ kind: 'daily', time: '02:30' }), p({ kind: 'weekly', time: '22:05', days: [1, 3, 5] }), p({ kind: 'monthly', time: '06:00', day: 15 })]) {
    const expr = presetToCron(v)!
    const back = cronToPreset(expr)
    assert.equal(back.kind, v.kind, expr)
    assert.equal(presetToCron(back), expr)
  }
  assert.deepEqual(cronToPreset('0 9 * * 1-5').days, [1, 2, 3, 4, 5])
  assert.deepEqual(cronToPreset('0 9 * * 0,7').days, [0])
})

test('anything else is custom', () => {
  for (const expr of ['0 0 30 2 *', '0 9 * * MON-FRI', '*/5 9-17 * * *', '0 0 1 1 *', '0 0 0 * * *', '@daily', 'nonsense', '0 9 1 * 1']) assert.equal(cronToPreset(expr).kind, 'custom', expr)
})

test('describeCron says what a known shape does', () => {
  assert.equal(describeCron('*/15 * * * *'), 'Every 15 minutes')
  assert.equal(describeCron('5 * * * *'), 'Every hour at :05')
  assert.equal(describeCron('30 2 * * *'), 'Every day at 02:30')
  assert.equal(describeCron('0 9 * * 1-5'), 'Weekdays at 09:00')
  assert.equal(describeCron('0 9 * * 1,3'), 'Mon, Wed at 09:00')
  assert.equal(describeCron('0 6 2 * *'), 'On the 2nd of every month at 06:00')
  assert.equal(describeCron('@daily'), 'Every day at 00:00')
  assert.equal(describeCron('0 9 * * MON'), null)
})
