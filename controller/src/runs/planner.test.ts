import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { planRun, type Attempt, type PlannedStep, type RunPolicy } from './planner.ts'
import type { RunStatus } from './runs.sql.ts'

const now = new Date('2026-11-27T12:00:00Z')
const step = (index: number, over: Partial<PlannedStep> = {}): PlannedStep => ({ index, runIf: 'success', continueOnError: false, retries: 0, retryBackoffSec: 10, ...over })
const policy = (over: Partial<RunPolicy> = {}): RunPolicy => ({ strategy: 'per_target', maxParallel: 100, backoffMultiplier: 2, ...over })

/** Attempts for `targets` × `steps`, all queued, ids `<target>/<step>`. */
function grid(targets: (string | null)[], steps: number): Attempt[] {
  return targets.flatMap((t) =>
    Array.from({ length: steps }, (_, i) => ({ id: `${t ?? 'none'}/${i}`, stepIndex: i, targetId: t, attempt: 1, status: 'queued' as RunStatus, ready: false, finishedAt: null })),
  )
}
const positions = (targets: string[]) => new Map(targets.map((t, i) => [t, i]))
function set(attempts: Attempt[], id: string, status: RunStatus, ready = false): void {
  const a = attempts.find((x) => x.id === id)!
  a.status = status
  a.ready = ready
  if (status !== 'queued' && status !== 'running') a.finishedAt = now
}

describe('planRun, per target', () => {
  test('a blocked target (another run holds its lock) is passed over without taking a slot', () => {
    const targets = ['a', 'b', 'c']
    const d = planRun([step(0)], grid(targets, 1), positions(targets), policy({ maxParallel: 2, blocked: new Set(['a']) }), now, 'queued')
    assert.deepEqual(d.ready, ['b/0', 'c/0'])
    const all = planRun([step(0)], grid(targets, 1), positions(targets), policy({ blocked: new Set(targets) }), now, 'queued')
    assert.deepEqual(all.ready, [])
    assert.equal(all.runStatus, undefined, 'a run blocked everywhere stays queued')
  })

  test('step by step: a blocked target holds the next step back for every target', () => {
    const targets = ['a', 'b']
    const attempts = grid(targets, 2)
    const d = planRun([step(0), step(1)], attempts, positions(targets), policy({ strategy: 'step_by_step', blocked: new Set(['b']) }), now, 'queued')
    assert.deepEqual(d.ready, ['a/0'])
    set(attempts, 'a/0', 'succeeded')
    const d2 = planRun([step(0), step(1)], attempts, positions(targets), policy({ strategy: 'step_by_step', blocked: new Set(['b']) }), now, 'running')
    assert.deepEqual(d2.ready, [])
  })

  test('starts the first step on every target, up to max_parallel targets', () => {
    const targets = ['a', 'b', 'c']
    const d = planRun([step(0), step(1)], grid(targets, 2), positions(targets), policy({ maxParallel: 2 }), now, 'queued')
    assert.deepEqual(d.ready, ['a/0', 'b/0'])
    assert.equal(d.runStatus, 'running')
  })

  test('a target moves to its next step on its own; a finished target frees a slot', () => {
    const targets = ['a', 'b', 'c']
    const attempts = grid(targets, 2)
    set(attempts, 'a/0', 'succeeded')
    set(attempts, 'b/0', 'running')
    const d = planRun([step(0), step(1)], attempts, positions(targets), policy({ maxParallel: 2 }), now, 'running')
    assert.deepEqual(d.ready, ['a/1'])
    set(attempts, 'a/1', 'succeeded')
    const d2 = planRun([step(0), step(1)], attempts, positions(targets), policy({ maxParallel: 2 }), now, 'running')
    assert.deepEqual(d2.ready, ['c/0'])
  })

  test('after a failure, run_if success steps are skipped and failure/always steps run', () => {
    const attempts = grid(['a'], 4)
    set(attempts, 'a/0', 'failed')
    const steps = [step(0), step(1), step(2, { runIf: 'failure' }), step(3, { runIf: 'always' })]
    const d = planRun(steps, attempts, positions(['a']), policy(), now, 'running')
    assert.deepEqual(d.end, [{ id: 'a/1', status: 'skipped', reason: 'an earlier step failed' }])
    assert.deepEqual(d.ready, ['a/2'])
  })

  test('continue_on_error lets the next step run and does not fail the run', () => {
    const attempts = grid(['a'], 2)
    set(attempts, 'a/0', 'failed')
    const steps = [step(0, { continueOnError: true }), step(1)]
    assert.deepEqual(planRun(steps, attempts, positions(['a']), policy(), now, 'running').ready, ['a/1'])
    set(attempts, 'a/1', 'succeeded')
    assert.equal(planRun(steps, attempts, positions(['a']), policy(), now, 'running').runStatus, 'succeeded')
  })

  test('a failed step with retries left gets another attempt after its backoff', () => {
    const attempts = grid(['a'], 1)
    set(attempts, 'a/0', 'failed')
    const d = planRun([step(0, { retries: 2, retryBackoffSec: 5 })], attempts, positions(['a']), policy({ backoffMultiplier: 3 }), now, 'running')
    assert.deepEqual(d.retry, [{ stepIndex: 0, targetId: 'a', attempt: 2, availableAt: new Date(now.getTime() + 5000) }])
    assert.equal(d.runStatus, undefined, 'the run goes on while a retry is coming')
    attempts.push({ id: 'a/0#2', stepIndex: 0, targetId: 'a', attempt: 2, status: 'failed', ready: false, finishedAt: now })
    const d2 = planRun([step(0, { retries: 2, retryBackoffSec: 5 })], attempts, positions(['a']), policy({ backoffMultiplier: 3 }), now, 'running')
    assert.deepEqual(d2.retry[0]?.availableAt, new Date(now.getTime() + 15000), 'backoff grows by the multiplier')
    attempts.push({ id: 'a/0#3', stepIndex: 0, targetId: 'a', attempt: 3, status: 'failed', ready: false, finishedAt: now })
    const d3 = planRun([step(0, { retries: 2, retryBackoffSec: 5 })], attempts, positions(['a']), policy(), now, 'running')
    assert.deepEqual(d3.retry, [])
    assert.equal(d3.runStatus, 'failed')
  })

  test('the failure threshold stops starting targets and skips those not started', () => {
    const targets = ['a', 'b', 'c', 'd']
    const attempts = grid(targets, 1)
    set(attempts, 'a/0', 'failed')
    set(attempts, 'b/0', 'running')
    const d = planRun([step(0)], attempts, positions(targets), policy({ maxParallel: 2, failureCount: 1 }), now, 'running')
    assert.deepEqual(d.ready, [])
    assert.deepEqual(d.end.map((e) => [e.id, e.status, e.reason]), [
      ['c/0', 'skipped', 'the failure threshold was reached'],
      ['d/0', 'skipped', 'the failure threshold was reached'],
    ])
  })

  test('percent threshold counts failed targets against all targets', () => {
    const targets = ['a', 'b', 'c', 'd']
    const attempts = grid(targets, 1)
    set(attempts, 'a/0', 'failed')
    const under = planRun([step(0)], attempts, positions(targets), policy({ maxParallel: 1, failurePercent: 50 }), now, 'running')
    assert.deepEqual(under.ready, ['b/0'], '1 of 4 failed is under 50%')
    set(attempts, 'b/0', 'failed')
    const over = planRun([step(0)], attempts, positions(targets), policy({ maxParallel: 1, failurePercent: 50 }), now, 'running')
    assert.deepEqual(over.ready, [])
    assert.equal(over.end.length, 2)
    assert.equal(over.runStatus, 'failed')
  })

  test('cancel ends queued work as cancelled; the run ends cancelled once nothing runs', () => {
    const attempts = grid(['a', 'b'], 2)
    set(attempts, 'a/0', 'running')
    const d = planRun([step(0), step(1)], attempts, positions(['a', 'b']), policy({ stopping: 'cancelled' }), now, 'running')
    assert.deepEqual(d.end.map((e) => e.id).sort(), ['a/1', 'b/0', 'b/1'])
    assert.equal(d.runStatus, undefined)
    set(attempts, 'a/0', 'cancelled')
    for (const id of ['a/1', 'b/0', 'b/1']) set(attempts, id, 'cancelled')
    assert.equal(planRun([step(0), step(1)], attempts, positions(['a', 'b']), policy({ stopping: 'cancelled' }), now, 'running').runStatus, 'cancelled')
  })

  test('a run without targets has one lane', () => {
    const attempts = grid([null], 2)
    assert.deepEqual(planRun([step(0), step(1)], attempts, new Map(), policy(), now, 'queued').ready, ['none/0'])
  })

  test('only system errors make the run a system_error', () => {
    const attempts = grid(['a'], 1)
    set(attempts, 'a/0', 'system_error')
    assert.equal(planRun([step(0)], attempts, positions(['a']), policy(), now, 'running').runStatus, 'system_error')
  })
})

describe('planRun, step by step', () => {
  test('step 2 starts on no target until step 1 is over on all', () => {
    const targets = ['a', 'b']
    const attempts = grid(targets, 2)
    const d = planRun([step(0), step(1)], attempts, positions(targets), policy({ strategy: 'step_by_step' }), now, 'queued')
    assert.deepEqual(d.ready, ['a/0', 'b/0'])
    set(attempts, 'a/0', 'succeeded')
    set(attempts, 'b/0', 'running')
    assert.deepEqual(planRun([step(0), step(1)], attempts, positions(targets), policy({ strategy: 'step_by_step' }), now, 'running').ready, [])
    set(attempts, 'b/0', 'failed')
    const d3 = planRun([step(0), step(1)], attempts, positions(targets), policy({ strategy: 'step_by_step' }), now, 'running')
    assert.deepEqual(d3.ready, ['a/1'])
    assert.deepEqual(d3.end.map((e) => e.id), ['b/1'])
  })

  test('max_parallel limits targets within a step', () => {
    const targets = ['a', 'b', 'c']
    const d = planRun([step(0)], grid(targets, 1), positions(targets), policy({ strategy: 'step_by_step', maxParallel: 2 }), now, 'queued')
    assert.deepEqual(d.ready, ['a/0', 'b/0'])
  })
})
