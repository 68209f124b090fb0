import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { eq, inArray } from 'drizzle-orm'
import { waitUntil } from '../../../test/harness/agents.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { RunsApi } from '../../../test/harness/runs.ts'
import type { AppContext } from '../context.ts'
import { createJob } from '../jobs/service.ts'
import { createTarget } from '../targets/service.ts'
import { RunEngine } from './engine.ts'
import { launchRun } from './launch.ts'
import { targetLock, targetLockWait } from './locks.sql.ts'
import { run, stepRun } from './runs.sql.ts'

// `lock: target` and `max_concurrent_runs`, with two controllers (two engines with their own node
// ids) sharing one database: runs launched on either wait for each other.

let t: TestContext
let controllers: AppContext[] = []
const engines: RunEngine[] = []
const targets: Record<string, string> = {}

before(async () => {
  t = await createTestContext()
  controllers = [t.ctx, { ...t.ctx, nodeId: randomUUID() }]
  for (const ctx of controllers) {
    const engine = new RunEngine(ctx, { leaseMs: 5000, localCapacity: 16, agentCapacity: 16 })
    ctx.runEngine = engine
    engines.push(engine)
    await engine.start()
  }
  for (const name of ['lk-a', 'lk-b', 'lk-c']) {
    const dto = await createTarget(t.ctx, {
      name,
      address: '127.0.0.1',
      os_type: 'linux',
      enabled: true,
      tags: { lk: 'yes' },
      connection: { type: 'ssh', port: 22, credential_id: null, host_key_policy: 'tofu', jump: [] },
    })
    targets[name] = dto.id
  }
})
after(async () => {
  for (const e of engines) await e.stop()
  await t?.close()
})

interface Interval {
  runId: string
  start: number
  end: number
}

/** Per target, each run's time on it: from its first step's start to its last step's end there. */
async function timeOnTargets(runIds: string[]): Promise<Map<string, Interval[]>> {
  const rows = await t.ctx.db.select().from(stepRun).where(inArray(stepRun.runId, runIds))
  const byTarget = new Map<string, Map<string, Interval>>()
  for (const s of rows) {
    if (!s.targetId || !s.startedAt || !s.finishedAt) continue
    const runs = byTarget.get(s.targetId) ?? new Map<string, Interval>()
    byTarget.set(s.targetId, runs)
    const i = runs.get(s.runId) ?? { runId: s.runId, start: s.startedAt.getTime(), end: s.finishedAt.getTime() }
    runs.set(s.runId, { runId: s.runId, start: Math.min(i.start, s.startedAt.getTime()), end: Math.max(i.end, s.finishedAt.getTime()) })
  }
  return new Map([...byTarget].map(([k, v]) => [k, [...v.values()].sort((a, b) => a.start - b.start)]))
}

const statuses = async (ids: string[]) => {
  const rows = await t.ctx.db.select({ id: run.id, status: run.status }).from(run).where(inArray(run.id, ids))
  return ids.map((id) => rows.find((r) => r.id === id)?.status)
}
const allOver = (ids: string[]) => async () => (await statuses(ids)).every((s) => !['queued', 'running'].includes(s ?? 'queued'))

describe('lock: target', () => {
  test('runs launched on two controllers never share a target, and take it in launch order', async () => {
    const job = await createJob(t.ctx, undefined, {
      name: 'locked patch',
      lock: 'target',
      steps: [
        { id: 'stop', type: 'wait', seconds: 0.15 },
        { id: 'start', type: 'wait', seconds: 0.1 },
      ],
    })
    const sets = [['lk-a', 'lk-b'], ['lk-b', 'lk-c'], ['lk-a', 'lk-c'], ['lk-a'], ['lk-c', 'lk-b', 'lk-a'], ['lk-b']]
    const ids: string[] = []
    for (const [i, set] of sets.entries()) {
      ids.push((await launchRun(controllers[i % 2]!, undefined, job.id, { parameters: {}, targets: set }, { trigger: 'manual' })).runId)
    }
    // While the first run holds lk-a and lk-b, the second waits for lk-b, saying so.
    const second = await RunsApi.as(t.ctx, 'viewer').then((api) => api.call('GET', `/api/v1/runs/${ids[1]}`))
    if (second.body.status === 'queued' && second.body.waiting_for === 'target_lock') {
      assert.ok(second.body.lock_waits.some((w: { target_name: string; held_by_run: string }) => w.target_name === 'lk-b' && w.held_by_run === ids[0]))
    }
    await waitUntil(allOver(ids), 60_000, 'every locked run to finish')
    assert.deepEqual(await statuses(ids), ids.map(() => 'succeeded'))

    const onTargets = await timeOnTargets(ids)
    for (const [name, id] of Object.entries(targets)) {
      const intervals = onTargets.get(id) ?? []
      const expected = ids.filter((_, i) => sets[i]!.includes(name))
      // FIFO: the runs came to the target in the order they were launched …
      assert.deepEqual(intervals.map((i) => i.runId), expected, `order on ${name}`)
      // … and each left it before the next one began.
      for (let i = 1; i < intervals.length; i++) assert.ok(intervals[i]!.start >= intervals[i - 1]!.end, `runs overlap on ${name}`)
    }
    // Nothing is left held or queued for.
    const held = await t.ctx.db.select().from(targetLock).where(inArray(targetLock.holderRun, ids))
    assert.deepEqual(held, [])
    assert.deepEqual(await t.ctx.db.select().from(targetLockWait).where(inArray(targetLockWait.runId, ids)), [])
  })

  test('a run frees each target as soon as its own steps there are over, not at its end', async () => {
    const slow = await createJob(t.ctx, undefined, {
      name: 'locked slow and fast',
      lock: 'target',
      targets: 'tag:lk=yes',
      fan_out: { max_parallel: 1 },
      steps: [{ id: 'w', type: 'wait', seconds: 0.3 }],
    })
    const long = (await launchRun(t.ctx, undefined, slow.id, { parameters: {}, targets: ['lk-a', 'lk-b', 'lk-c'] }, { trigger: 'manual' })).runId
    const next = (await launchRun(t.ctx, undefined, slow.id, { parameters: {}, targets: ['lk-a'] }, { trigger: 'manual' })).runId
    await waitUntil(allOver([long, next]), 30_000, 'both runs to finish')
    const onA = (await timeOnTargets([long, next])).get(targets['lk-a']!)!
    const longEnd = (await t.ctx.db.select({ f: run.finishedAt }).from(run).where(eq(run.id, long)))[0]!.f!.getTime()
    assert.deepEqual(onA.map((i) => i.runId), [long, next])
    // The second run had lk-a while the first was still working through lk-b and lk-c.
    assert.ok(onA[1]!.start < longEnd, 'the waiting run started on lk-a before the first run ended')
  })

  test('cancelling a run that holds a target hands it to the next run; a cancelled waiter leaves the queue', async () => {
    const job = await createJob(t.ctx, undefined, { name: 'locked long', lock: 'target', steps: [{ id: 'w', type: 'wait', seconds: 30 }] })
    const quick = await createJob(t.ctx, undefined, { name: 'locked quick', lock: 'target', steps: [{ id: 'w', type: 'wait', seconds: 0.05 }] })
    const holder = (await launchRun(t.ctx, undefined, job.id, { parameters: {}, targets: ['lk-c'] }, { trigger: 'manual' })).runId
    const leaver = (await launchRun(t.ctx, undefined, quick.id, { parameters: {}, targets: ['lk-c'] }, { trigger: 'manual' })).runId
    const follower = (await launchRun(t.ctx, undefined, quick.id, { parameters: {}, targets: ['lk-c'] }, { trigger: 'manual' })).runId
    await waitUntil(async () => (await statuses([holder]))[0] === 'running', 10_000, 'the holder to start')
    const waits = await t.ctx.db.select({ w: run.waitingFor }).from(run).where(inArray(run.id, [leaver, follower]))
    assert.deepEqual(waits.map((r) => r.w), ['target_lock', 'target_lock'])
    await engines[1]!.cancelRun(leaver, null)
    await engines[0]!.cancelRun(holder, null)
    await waitUntil(allOver([holder, leaver, follower]), 20_000, 'all three to end')
    assert.deepEqual(await statuses([holder, leaver, follower]), ['cancelled', 'cancelled', 'succeeded'])
    assert.deepEqual(await t.ctx.db.select().from(targetLock).where(inArray(targetLock.holderRun, [holder, leaver, follower])), [])
  })
})

describe('max_concurrent_runs', () => {
  test('no more than the cap run at once, across controllers; the others start oldest first', async () => {
    const job = await createJob(t.ctx, undefined, { name: 'capped', max_concurrent_runs: 2, steps: [{ id: 'w', type: 'wait', seconds: 0.2 }] })
    const ids: string[] = []
    for (let i = 0; i < 6; i++) ids.push((await launchRun(controllers[i % 2]!, undefined, job.id, { parameters: {} }, { trigger: 'manual' })).runId)
    const launched = await t.ctx.db.select({ status: run.status, w: run.waitingFor, admitted: run.admitted }).from(run).where(inArray(run.id, ids))
    const active = launched.filter((r) => r.admitted && ['queued', 'running'].includes(r.status))
    assert.ok(active.length <= 2, `${active.length} runs admitted at once`)
    assert.ok(launched.filter((r) => !r.admitted).every((r) => r.w === 'job_concurrency'))
    await waitUntil(allOver(ids), 60_000, 'every capped run to finish')
    assert.deepEqual(await statuses(ids), ids.map(() => 'succeeded'))
    const steps = await t.ctx.db.select().from(stepRun).where(inArray(stepRun.runId, ids))
    const spans = steps.map((s) => ({ runId: s.runId, start: s.startedAt!.getTime(), end: s.finishedAt!.getTime() }))
    // At every start, at most 2 runs are inside their step.
    for (const s of spans) assert.ok(spans.filter((o) => o.start <= s.start && o.end > s.start).length <= 2, 'more than 2 runs at once')
    // Oldest first: when a run starts, fewer than the cap of the runs launched before it are unfinished.
    // (Two runs admitted in one pass, when two slots free at once, may start in either order.)
    for (const [j, id] of ids.entries()) {
      const start = spans.find((s) => s.runId === id)!.start
      const olderUnfinished = spans.filter((s) => ids.indexOf(s.runId) < j && s.end > start)
      assert.ok(olderUnfinished.length < 2, `run ${j + 1} started while ${olderUnfinished.length} older runs were unfinished`)
    }
  })

  test('a cancelled waiting run ends at once and takes no slot', async () => {
    const job = await createJob(t.ctx, undefined, { name: 'capped one', max_concurrent_runs: 1, steps: [{ id: 'w', type: 'wait', seconds: 0.3 }] })
    const first = (await launchRun(t.ctx, undefined, job.id, { parameters: {} }, { trigger: 'manual' })).runId
    const second = (await launchRun(t.ctx, undefined, job.id, { parameters: {} }, { trigger: 'manual' })).runId
    const third = (await launchRun(t.ctx, undefined, job.id, { parameters: {} }, { trigger: 'manual' })).runId
    assert.equal((await t.ctx.db.select({ w: run.waitingFor }).from(run).where(eq(run.id, second)))[0]!.w, 'job_concurrency')
    await engines[0]!.cancelRun(second, null)
    assert.deepEqual(await statuses([second]), ['cancelled'])
    await waitUntil(allOver([first, third]), 20_000, 'the others to finish')
    assert.deepEqual(await statuses([first, second, third]), ['succeeded', 'cancelled', 'succeeded'])
  })
})
