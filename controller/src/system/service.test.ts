import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { sql } from 'drizzle-orm'
import { createTestDatabase, type TestDatabase } from '../../../test/harness/db.ts'
import { rowsOf } from '../db/migrate.ts'
import { CONTROLLER_ALIVE_SECONDS, controllerAlive, heartbeatControllerNode, markControllerNodeStopped, registerControllerNode } from './service.ts'

let t: TestDatabase
before(async () => (t = await createTestDatabase()))
after(() => t.drop())

test('a controller is alive until it stops or its heartbeat is older than the window (one rule for dispatch, the CA check and /metrics)', async () => {
  const db = t.database.db
  const node = () => ({ id: randomUUID(), version: 't', httpPort: 1, grpcPort: 2 })
  const [fresh, stale, stopped, justInside] = [node(), node(), node(), node()]
  for (const n of [fresh, stale, stopped, justInside]) await registerControllerNode(db, n)
  const now = Date.now()
  await heartbeatControllerNode(db, stale.id, new Date(now - (CONTROLLER_ALIVE_SECONDS + 5) * 1000))
  await heartbeatControllerNode(db, justInside.id, new Date(now - (CONTROLLER_ALIVE_SECONDS - 5) * 1000))
  await markControllerNodeStopped(db, stopped.id, new Date(now))
  const alive = rowsOf<{ id: string }>(await db.execute(sql`select id from controller_node n where ${controllerAlive('n')}`)).map((r) => r.id)
  assert.deepEqual(alive.sort(), [fresh.id, justInside.id].sort())
})
