import assert from 'node:assert/strict'
import { after, before, beforeEach, describe, test } from 'node:test'
import { eq, sql } from 'drizzle-orm'
import { z } from 'zod'
import { createTestDatabase, type TestDatabase } from '../../../test/harness/db.ts'
import { SYSTEM_ACTOR, type Actor } from '../auth/principal.ts'
import type { Db } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'
import { ValidationError } from '../errors.ts'
import { decodeCursor } from '../http/pagination.ts'
import { auditLog } from './audit.sql.ts'
import { CHAIN_BREAK_MESSAGE, rowHash } from './chain.ts'
import { appendAudit, listAudit, verifyAuditChain, type AuditEntry } from './service.ts'

let t: TestDatabase
let db: Db

before(async () => {
  t = await createTestDatabase()
  db = t.database.db
})
after(() => t.drop())

const alice: Actor = { type: 'user', id: 'u-alice', name: 'alice' }
const bob: Actor = { type: 'api_token', id: 't-bob', name: 'bob/ci' }
const entry = (over: Partial<AuditEntry> = {}): AuditEntry => ({ actor: alice, action: 'users.update', outcome: 'success', ...over })

async function freshChain(n: number): Promise<void> {
  await db.delete(auditLog)
  for (let i = 0; i < n; i++) await appendAudit(db, entry({ resourceId: `r-${i}`, summary: { i } }), new Date())
}

async function ids(): Promise<number[]> {
  return (await db.select({ id: auditLog.id }).from(auditLog).orderBy(auditLog.id)).map((r) => r.id)
}

describe('appendAudit', () => {
  beforeEach(() => db.delete(auditLog))

  test('stores every field, and the stored row still matches its hash', async () => {
    const at = new Date('2025-06-01T12:34:56.789Z')
    const event = await appendAudit(db, entry({
      resourceType: 'users', resourceId: 'u-2', clientAddress: '192.0.2.7', requestId: 'req-1', outcome: 'denied', summary: { role: 'admin' },
    }), at)
    const [row] = await db.select().from(auditLog)
    assert.ok(row)
    assert.equal(row.id, event.id)
    assert.equal(row.at.toISOString(), '2025-06-01T12:34:56.789Z')
    assert.deepEqual(
      { type: row.actorType, id: row.actorId, name: row.actorName, action: row.action, rt: row.resourceType, rid: row.resourceId, ca: row.clientAddress, req: row.requestId, outcome: row.outcome, summary: row.summary, prev: row.prevHash },
      { type: 'user', id: 'u-alice', name: 'alice', action: 'users.update', rt: 'users', rid: 'u-2', ca: '192.0.2.7', req: 'req-1', outcome: 'denied', summary: { role: 'admin' }, prev: null },
    )
    assert.equal(row.hash, event.hash)
    assert.deepEqual(await verifyAuditChain(db), { ok: true, rows: 1, head: event.hash })
  })

  test('stores the summary as a jsonb object, not a JSON string', async () => {
    await appendAudit(db, entry({ summary: { role: 'admin', nested: { n: 1 } } }), new Date())
    const [r] = rowsOf<{ kind: string; role: string }>(await db.execute(sql`select jsonb_typeof(summary) as kind, summary->>'role' as role from audit_log`))
    assert.deepEqual(r, { kind: 'object', role: 'admin' })
  })

  test('never stores a secret from the summary', async () => {
    await appendAudit(db, entry({ summary: { username: 'carol', password: 'hunter2-plain', user: { totpSecret: 'JBSWY3DPEHPK3PXP' } } }), new Date())
    const [r] = rowsOf<{ text: string }>(await db.execute(sql`select row_to_json(audit_log)::text as text from audit_log`))
    assert.ok(r)
    assert.doesNotMatch(r.text, /hunter2|JBSWY3DP/)
    assert.match(r.text, /carol/)
  })

  test('stores text Postgres would reject (NUL, lone surrogates) instead of losing the row', async () => {
    await appendAudit(db, entry({ resourceId: 'a\u0000b', summary: { name: 'x\uD800' } }), new Date())
    const [row] = await db.select().from(auditLog)
    assert.equal(row?.resourceId, 'ab')
    assert.equal((await verifyAuditChain(db)).ok, true)
  })

  test('a leading byte-order mark is not stored, so every backend reads back what was hashed', async () => {
    await appendAudit(db, entry({ resourceId: '\uFEFF\uFEFFid\uFEFF', actor: { type: 'user', id: '\uFEFF', name: 'n' } }), new Date())
    const [row] = await db.select().from(auditLog)
    assert.equal(row?.resourceId, 'id\uFEFF')
    assert.equal(row?.actorId, '')
    assert.equal((await verifyAuditChain(db)).ok, true)
  })

  test('links each row to the one before it', async () => {
    const a = await appendAudit(db, entry(), new Date())
    const b = await appendAudit(db, entry({ actor: SYSTEM_ACTOR, action: 'system.start' }), new Date())
    assert.equal(b.prev_hash, a.hash)
    assert.ok(b.id > a.id)
  })

  test('concurrent appends produce one intact chain', async () => {
    const n = 50
    const events = await Promise.all(Array.from({ length: n }, (_, i) => appendAudit(db, entry({ resourceId: `r-${i}` }), new Date())))
    assert.equal(new Set(events.map((e) => e.prev_hash)).size, n, 'no two rows share a predecessor')
    const result = await verifyAuditChain(db)
    assert.equal(result.ok, true, JSON.stringify(result))
    assert.equal(result.rows, n)
  })

  test('a row written inside a rolled-back transaction leaves no trace, and the chain still verifies', async () => {
    await appendAudit(db, entry(), new Date())
    await assert.rejects(
      db.transaction(async (tx) => {
        await appendAudit(tx, entry({ action: 'users.delete' }), new Date())
        throw new Error('the change failed')
      }),
      /the change failed/,
    )
    await appendAudit(db, entry(), new Date())
    const [first, second] = await ids()
    assert.ok(second! > first! + 1, 'the rolled-back id is a gap')
    assert.deepEqual((await verifyAuditChain(db)).ok, true)
  })
})

describe('verifyAuditChain', () => {
  test('an empty log is intact', async () => {
    await db.delete(auditLog)
    assert.deepEqual(await verifyAuditChain(db), { ok: true, rows: 0, head: null })
  })

  test('walks chains longer than one batch', async () => {
    await db.delete(auditLog)
    const values = Array.from({ length: 1205 }, (_, i) => i)
    for (let i = 0; i < values.length; i += 100) {
      await Promise.all(values.slice(i, i + 100).map((v) => appendAudit(db, entry({ summary: { v } }), new Date())))
    }
    const result = await verifyAuditChain(db)
    assert.equal(result.ok, true)
    assert.equal(result.rows, 1205)
  })

  test('names the row whose summary was edited', async () => {
    await freshChain(5)
    const [, , third] = await ids()
    await db.execute(sql`update audit_log set summary = '{"i": 99}'::jsonb where id = ${third}`)
    assert.deepEqual(await verifyAuditChain(db), {
      ok: false, rows: 2, brokenAt: { id: third, reason: 'content_mismatch', message: 'content does not match its hash' },
    })
  })

  test('names the row after a deleted one', async () => {
    await freshChain(5)
    const [, second, third] = await ids()
    await db.execute(sql`delete from audit_log where id = ${second}`)
    const result = await verifyAuditChain(db)
    assert.equal(result.ok, false)
    assert.deepEqual(!result.ok && result.brokenAt, { id: third, reason: 'link_broken', message: CHAIN_BREAK_MESSAGE.link_broken })
  })

  test('detects a deleted first row', async () => {
    await freshChain(3)
    const [first, second] = await ids()
    await db.execute(sql`delete from audit_log where id = ${first}`)
    const result = await verifyAuditChain(db)
    assert.deepEqual(!result.ok && result.brokenAt, { id: second, reason: 'link_broken', message: CHAIN_BREAK_MESSAGE.link_broken })
  })

  test('an edited row whose own hash was recomputed breaks the link from the row after it', async () => {
    await freshChain(3)
    const [, mid, last] = await ids()
    const [row] = await db.select().from(auditLog).where(eq(auditLog.id, mid!))
    const forged = rowHash(row!.prevHash, { ...row!, outcome: 'failure' })
    await db.execute(sql`update audit_log set outcome = 'failure', hash = ${forged} where id = ${mid}`)
    const result = await verifyAuditChain(db)
    assert.deepEqual(!result.ok && result.brokenAt, { id: last, reason: 'link_broken', message: CHAIN_BREAK_MESSAGE.link_broken })
  })

  test('detects an edited timestamp, even by a microsecond', async () => {
    await freshChain(2)
    const [first] = await ids()
    await db.execute(sql`update audit_log set at = at + interval '1 microsecond' where id = ${first}`)
    const result = await verifyAuditChain(db)
    assert.deepEqual(!result.ok && result.brokenAt.id, first)
  })
})

describe('listAudit', () => {
  before(async () => {
    await db.delete(auditLog)
    const base = Date.parse('2025-01-01T00:00:00Z')
    const rows: [Actor, string, string | null, number][] = [
      [alice, 'auth.login', null, 0],
      [alice, 'users.create', 'u-1', 1],
      [bob, 'jobs.run', 'j-1', 2],
      [alice, 'auth.logout', null, 3],
      [bob, 'auth_x.thing', null, 4],
      [alice, 'users.update', 'u-1', 5],
    ]
    for (const [actor, action, resourceId, hour] of rows) {
      const resourceType = resourceId ? action.split('.')[0]! : null
      await appendAudit(db, { actor, action, resourceType, resourceId, outcome: 'success' }, new Date(base + hour * 3_600_000))
    }
  })

  const actions = async (filters: Parameters<typeof listAudit>[1], limit = 50) => (await listAudit(db, filters, { limit })).items.map((e) => e.action)

  test('lists newest first', async () => {
    assert.deepEqual(await actions({}), ['users.update', 'auth_x.thing', 'auth.logout', 'jobs.run', 'users.create', 'auth.login'])
  })

  test('filters by actor id or name', async () => {
    assert.deepEqual(await actions({ actor: 't-bob' }), ['auth_x.thing', 'jobs.run'])
    assert.deepEqual(await actions({ actor: 'bob/ci' }), ['auth_x.thing', 'jobs.run'])
  })

  test('filters by exact action or by prefix, treating _ and % literally', async () => {
    assert.deepEqual(await actions({ action: 'auth.login' }), ['auth.login'])
    assert.deepEqual(await actions({ action: 'auth.*' }), ['auth.logout', 'auth.login'])
    assert.deepEqual(await actions({ action: 'auth_*' }), ['auth_x.thing'])
    assert.deepEqual(await actions({ action: 'auth%*' }), [])
    assert.deepEqual(await actions({ action: 'auth.' }), [])
  })

  test('filters by resource and by time window (from inclusive, to exclusive)', async () => {
    assert.deepEqual(await actions({ resourceType: 'users', resourceId: 'u-1' }), ['users.update', 'users.create'])
    assert.deepEqual(await actions({ resourceType: 'jobs' }), ['jobs.run'])
    assert.deepEqual(
      await actions({ from: new Date('2025-01-01T01:00:00Z'), to: new Date('2025-01-01T03:00:00Z') }),
      ['jobs.run', 'users.create'],
    )
  })

  test('pages with a keyset cursor until next is null', async () => {
    const seen: string[] = []
    let cursor: string | undefined
    let pages = 0
    do {
      const page = await listAudit(db, {}, { limit: 4, cursor })
      seen.push(...page.items.map((e) => e.action))
      cursor = page.next ?? undefined
      pages++
    } while (cursor)
    assert.equal(pages, 2)
    assert.deepEqual(seen, await actions({}))
  })

  test('keeps filters across pages', async () => {
    const first = await listAudit(db, { actor: 'alice' }, { limit: 2 })
    assert.deepEqual(first.items.map((e) => e.action), ['users.update', 'auth.logout'])
    assert.ok(first.next)
    assert.equal(decodeCursor(first.next, z.object({ id: z.number() })).id, first.items[1]!.id)
    const second = await listAudit(db, { actor: 'alice' }, { limit: 2, cursor: first.next })
    assert.deepEqual(second.items.map((e) => e.action), ['users.create', 'auth.login'])
    assert.equal(second.next, null)
  })

  test('returns API-shaped events', async () => {
    const [event] = (await listAudit(db, { action: 'jobs.run' }, { limit: 1 })).items
    assert.deepEqual(
      { ...event, hash: typeof event?.hash, prev_hash: typeof event?.prev_hash, id: typeof event?.id },
      {
        id: 'number', at: '2025-01-01T02:00:00.000Z', actor: { type: 'api_token', id: 't-bob', name: 'bob/ci' }, action: 'jobs.run',
        resource: { type: 'jobs', id: 'j-1' }, client_address: null, request_id: null, outcome: 'success', summary: {}, prev_hash: 'string', hash: 'string',
      },
    )
  })

  test('rejects a cursor it did not issue', async () => {
    await assert.rejects(listAudit(db, {}, { limit: 5, cursor: 'bm9wZQ' }), ValidationError)
  })
})
