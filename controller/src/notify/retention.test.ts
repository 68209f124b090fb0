import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { eq } from 'drizzle-orm'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { notification, notificationAttempt, notificationChannel, type NotificationStatus } from './notify.sql.ts'
import { pruneNotifications } from './retention.ts'

let t: TestContext
before(async () => {
  t = await createTestContext()
})
after(() => t?.close())

test('finished notifications past the retention go with their attempts; unfinished ones and recent ones stay', async () => {
  const [channel] = await t.ctx.db.insert(notificationChannel).values({ name: 'kept hook', type: 'webhook', config: {} }).returning()
  const old = new Date(Date.now() - 100 * 86_400_000)
  const put = async (status: NotificationStatus, createdAt: Date) => {
    const [row] = await t.ctx.db.insert(notification).values({ channelId: channel!.id, event: 'run.failed', subject: status, payload: {}, status, createdAt }).returning()
    await t.ctx.db.insert(notificationAttempt).values({ notificationId: row!.id, attempt: 1, outcome: 'failed', error: 'x' })
    return row!.id
  }
  const gone = await Promise.all((['delivered', 'discarded', 'batched', 'dead'] as const).map((s) => put(s, old)))
  const kept = await Promise.all([put('pending', old), put('held', old), put('sending', old), put('delivered', new Date())])
  t.ctx.config = { ...t.ctx.config, OPSC_NOTIFY_RETENTION_DAYS: 90 }
  assert.equal(await pruneNotifications(t.ctx), 4)
  const left = new Set((await t.ctx.db.select({ id: notification.id }).from(notification)).map((r) => r.id))
  assert.deepEqual(gone.filter((id) => left.has(id)), [])
  assert.deepEqual(kept.filter((id) => !left.has(id)), [])
  for (const id of gone) assert.equal((await t.ctx.db.select().from(notificationAttempt).where(eq(notificationAttempt.notificationId, id))).length, 0)
  t.ctx.config = { ...t.ctx.config, OPSC_NOTIFY_RETENTION_DAYS: 0 }
  await t.ctx.db.update(notification).set({ status: 'delivered', createdAt: old })
  assert.equal(await pruneNotifications(t.ctx), 0, '0 keeps everything')
})
