import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { sql } from 'drizzle-orm'
import { waitUntil } from '../../../test/harness/agents.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import type { AppContext } from '../context.ts'
import { openDatabase, type Database } from '../db/client.ts'
import { createLeadership } from './leader.ts'
import { schedulerState } from './scheduler.sql.ts'
import { Scheduler } from './tick.ts'

let t: TestContext
let other: Database | undefined
const skip = process.env.OPSC_TEST_DB === 'pglite' ? 'advisory-lock leadership needs Postgres' : false

before(async () => {
  t = await createTestContext()
  if (t.testDb.backend === 'postgres') other = await openDatabase({ kind: 'postgres', url: t.testDb.url! })
})
after(async () => {
  await other?.close()
  await t?.close()
})

test('one session holds the leadership; it passes on when released or when the session dies', { skip }, async (tt) => {
  if (!other) return tt.skip('needs Postgres')
  const a = createLeadership(t.ctx.database, t.ctx.log)
  const b = createLeadership(other, t.ctx.log)
  try {
    assert.equal(await a.acquire(), true)
    assert.equal(await a.acquire(), true, 'acquiring again while holding is still true')
    assert.equal(await b.acquire(), false)
    await a.release()
    assert.equal(await b.acquire(), true)
    assert.equal(await a.acquire(), false)
    // The leader's session is killed (a dead controller): the lock frees with it.
    await t.ctx.db.execute(sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'opsconductor-scheduler' and pid in (select pid from pg_locks where locktype = 'advisory' and granted and objid = 1)`)
    assert.equal(await b.holds(), false)
    assert.equal(await a.acquire(), true)
  } finally {
    await a.release()
    await b.release()
  }
})

test('two schedulers: one leads and records itself; when it stops the other takes over', { skip }, async (tt) => {
  if (!other) return tt.skip('needs Postgres')
  const opts = { tickMs: 100, leaderRetryMs: 100, graceMs: 1000, batchSize: 100, parallel: 2 }
  const ctxB: AppContext = { ...t.ctx, database: other, db: other.db, nodeId: 'node-b' }
  const a = new Scheduler({ ...t.ctx, nodeId: 'node-a' }, opts)
  const b = new Scheduler(ctxB, opts)
  try {
    a.start()
    await waitUntil(async () => a.isLeader, 10_000, 'a leads')
    b.start()
    await new Promise((r) => setTimeout(r, 400))
    assert.equal(b.isLeader, false)
    const state = async () => (await t.ctx.db.select().from(schedulerState))[0]!
    assert.equal((await state()).leaderNode, 'node-a')
    await waitUntil(async () => (await state()).lastTickAt !== null, 10_000, 'the leader ticks')
    await a.stop()
    await waitUntil(async () => b.isLeader, 10_000, 'b takes over')
    await waitUntil(async () => (await state()).leaderNode === 'node-b', 10_000, 'b recorded as leader')
  } finally {
    await a.stop()
    await b.stop()
  }
})
