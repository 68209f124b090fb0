import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { executionContext } from './testing.ts'
import { WaitInput, waitExecutor } from './wait.ts'

let t: TestContext
before(async () => {
  t = await createTestContext()
})
after(() => t.close())

describe('wait executor', () => {
  test('succeeds after the given time', async () => {
    const x = executionContext(t.ctx)
    const started = Date.now()
    assert.deepEqual(await waitExecutor.run('wait', WaitInput.parse({ seconds: 0.2 }), x), { status: 'succeeded' })
    assert.ok(Date.now() - started >= 195)
    assert.equal(x.stdout(), 'waited 0.2 s\n')
  })

  test('a cancel or an engine timeout ends the wait at once with that status', async () => {
    for (const reason of ['cancelled', 'timed_out'] as const) {
      const x = executionContext(t.ctx)
      const started = Date.now()
      setTimeout(() => x.abort(reason), 50)
      assert.deepEqual(await waitExecutor.run('wait', { seconds: 3600 }, x), { status: reason })
      assert.ok(Date.now() - started < 1000)
    }
  })

  test('a wait longer than the step timeout ends as timed_out when the timeout passes', async () => {
    const x = executionContext(t.ctx, { timeoutMs: 100 })
    const started = Date.now()
    assert.deepEqual(await waitExecutor.run('wait', { seconds: 60 }, x), { status: 'timed_out' })
    assert.ok(Date.now() - started < 1000)
  })

  test('an already aborted signal returns without waiting', async () => {
    const x = executionContext(t.ctx)
    x.abort('cancelled')
    assert.deepEqual(await waitExecutor.run('wait', { seconds: 10 }, x), { status: 'cancelled' })
  })

  test('seconds must be positive and at most a day', () => {
    assert.equal(WaitInput.safeParse({ seconds: 0 }).success, false)
    assert.equal(WaitInput.safeParse({ seconds: -1 }).success, false)
    assert.equal(WaitInput.safeParse({ seconds: 86_401 }).success, false)
    assert.equal(WaitInput.safeParse({ seconds: 5, extra: 1 }).success, false)
    assert.equal(WaitInput.safeParse({ seconds: 86_400 }).success, true)
    assert.equal(waitExecutor.needsTarget, false)
  })
})
