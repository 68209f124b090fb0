import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { canonicalContent, checkRow, rowHash, stableStringify, type AuditContent } from './chain.ts'

const content = (over: Partial<AuditContent> = {}): AuditContent => ({
  id: 7,
  at: new Date('2025-03-04T05:06:07.089Z'),
  actorType: 'user',
  actorId: 'u-1',
  actorName: 'alice',
  action: 'users.update',
  resourceType: 'users',
  resourceId: 'u-2',
  clientAddress: '10.0.0.5',
  requestId: 'req-1',
  outcome: 'success',
  summary: { role: 'operator', status: 200 },
  ...over,
})

describe('canonical content', () => {
  test('sorts keys at every depth, so jsonb key order cannot change the hash', () => {
    const a = content({ summary: { b: 1, a: { y: [{ d: 1, c: 2 }], x: null } } })
    const b = content({ summary: { a: { x: null, y: [{ c: 2, d: 1 }] }, b: 1 } })
    assert.equal(canonicalContent(a), canonicalContent(b))
    assert.equal(stableStringify({ b: 1, a: [3, { z: 1, y: 2 }] }), '{"a":[3,{"y":2,"z":1}],"b":1}')
  })

  test('writes the time as ISO with milliseconds and names fields as the columns', () => {
    const json = JSON.parse(canonicalContent(content())) as Record<string, unknown>
    assert.equal(json.at, '2025-03-04T05:06:07.089Z')
    assert.deepEqual(Object.keys(json), [
      'action', 'actor_id', 'actor_name', 'actor_type', 'at', 'client_address', 'id', 'outcome',
      'request_id', 'resource_id', 'resource_type', 'summary',
    ])
  })

  test('keeps null and absent apart from empty strings', () => {
    assert.notEqual(canonicalContent(content({ resourceId: null })), canonicalContent(content({ resourceId: '' })))
  })
})

describe('rowHash', () => {
  test('is hex SHA-256 over the previous hash and the content', () => {
    const h = rowHash(null, content())
    assert.match(h, /^[0-9a-f]{64}$/)
    assert.equal(rowHash(null, content()), h)
    assert.notEqual(rowHash('a'.repeat(64), content()), h)
  })

  test('changes when any field changes, including the id and the time', () => {
    const base = rowHash(null, content())
    const variants: Partial<AuditContent>[] = [
      { id: 8 }, { at: new Date('2025-03-04T05:06:07.090Z') }, { actorType: 'api_token' }, { actorId: 'u-9' },
      { actorName: 'mallory' }, { action: 'users.delete' }, { resourceType: 'jobs' }, { resourceId: null },
      { clientAddress: null }, { requestId: 'req-2' }, { outcome: 'failure' }, { summary: { role: 'admin', status: 200 } },
    ]
    for (const v of variants) assert.notEqual(rowHash(null, content(v)), base, JSON.stringify(v))
  })
})

describe('checkRow', () => {
  const first = content({ id: 1 })
  const firstHash = rowHash(null, first)
  const second = content({ id: 2, action: 'jobs.run' })
  const secondHash = rowHash(firstHash, second)

  test('accepts rows that link and match', () => {
    assert.equal(checkRow({ ...first, prevHash: null, hash: firstHash }, null), null)
    assert.equal(checkRow({ ...second, prevHash: firstHash, hash: secondHash }, firstHash), null)
  })

  test('reports edited content on the edited row', () => {
    assert.equal(checkRow({ ...second, summary: { role: 'admin' }, prevHash: firstHash, hash: secondHash }, firstHash), 'content_mismatch')
  })

  test('reports a row whose predecessor is gone as a broken link', () => {
    assert.equal(checkRow({ ...second, prevHash: firstHash, hash: secondHash }, 'f'.repeat(64)), 'link_broken')
    assert.equal(checkRow({ ...second, prevHash: firstHash, hash: secondHash }, null), 'link_broken')
  })
})
