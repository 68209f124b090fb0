import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { sql } from 'drizzle-orm'
import { createTestDatabase, type TestDatabase } from '../../../test/harness/db.ts'
import { SYSTEM_ACTOR } from '../auth/principal.ts'
import { auditLog } from './audit.sql.ts'
import { auditVerifyCommand } from './cli.ts'
import { appendAudit } from './service.ts'

let t: TestDatabase
before(async () => {
  t = await createTestDatabase()
})
after(() => t.drop())

test('reports an intact chain with its row count and head hash, exit 0', async () => {
  const { db } = t.database
  assert.deepEqual(await auditVerifyCommand(db), { exitCode: 0, output: 'audit chain intact: 0 rows' })
  let head = ''
  for (let i = 0; i < 3; i++) head = (await appendAudit(db, { actor: SYSTEM_ACTOR, action: 'system.test', outcome: 'success' }, new Date())).hash
  assert.deepEqual(await auditVerifyCommand(db), { exitCode: 0, output: `audit chain intact: 3 rows; head ${head}` })
})

test('names the first broken row, exit 1', async () => {
  const { db } = t.database
  const [, second] = await db.select({ id: auditLog.id }).from(auditLog).orderBy(auditLog.id)
  await db.execute(sql`update audit_log set action = 'system.other' where id = ${second!.id}`)
  assert.deepEqual(await auditVerifyCommand(db), {
    exitCode: 1,
    output: `audit chain broken at row ${second!.id}: content does not match its hash (1 row before it verified)`,
  })
})
