import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { call, createTestUser, type TestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createApp } from '../app.ts'
import { credential } from '../credentials/credentials.sql.ts'
import { sealSecret } from '../crypto/secret-box.ts'

let t: TestContext
let app: ReturnType<typeof createApp>
let op: TestUser
before(async () => {
  t = await createTestContext()
  app = createApp(t.ctx, { uiDir: '/nonexistent' })
  op = await createTestUser(t.ctx, 'operator')
  const id = randomUUID()
  await t.ctx.db.insert(credential).values({ id, name: 'fleet-key', type: 'ssh_key', metadata: {}, secret: sealSecret(t.ctx.keyring, '{}', `credential:${id}`) })
  await call(app, 'POST', '/api/v1/target-groups', { token: op.token, body: { name: 'web' } })
})
after(() => t.close())

const HEADER = 'name,address,os_type,description,enabled,tags,connection_type,port,credential,host_key_policy,https,verify_tls,groups'

function importCsv(csv: string, dryRun: boolean) {
  return app.request(`/api/v1/targets/import?dry_run=${dryRun}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${op.token}`, 'content-type': 'text/csv' },
    body: csv,
  })
}

async function count(q: string): Promise<number> {
  let n = 0
  let cursor: string | null = null
  do {
    const res: { body: { items: unknown[]; next: string | null } } = await call(app, 'GET', `/api/v1/targets?q=${q}&limit=500${cursor ? `&cursor=${cursor}` : ''}`, { token: op.token })
    n += res.body.items.length
    cursor = res.body.next
  } while (cursor)
  return n
}

test('10,000 targets from CSV: a dry run reports exactly the 3 bad rows and writes nothing; the import creates the rest', async () => {
  const lines = [HEADER]
  for (let i = 1; i <= 10_000; i++) {
    const os = i % 5 === 0 ? 'windows' : 'linux'
    const conn = os === 'windows' ? 'winrm,5986,,,true,true' : 'ssh,22,fleet-key,tofu,,'
    lines.push(`bulk-${i},10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255},${os},"host ${i}, imported",true,env=prod;rack=r${i % 40},${conn},${i % 10 === 0 ? 'web' : ''}`)
  }
  lines[101] = 'bulk-101,not an address!,linux,,true,,ssh,22,fleet-key,tofu,,,' // bad address
  lines[2002] = 'bulk-2002,10.0.7.210,beos,,true,,ssh,22,fleet-key,tofu,,,' // bad os_type
  lines[7777] = 'bulk-7777,10.0.30.97,linux,,true,,ssh,22,no-such-key,tofu,,,' // unknown credential
  const csv = lines.join('\n')

  const dry = await importCsv(csv, true)
  assert.equal(dry.status, 200)
  const report = (await dry.json()) as { created: number; updated: number; rejected: number; rows: { row: number; action: string; errors?: { path: string }[] }[] }
  assert.deepEqual({ created: report.created, updated: report.updated, rejected: report.rejected }, { created: 9997, updated: 0, rejected: 3 })
  const rejected = report.rows.filter((r) => r.action === 'reject')
  assert.deepEqual(rejected.map((r) => r.row), [101, 2002, 7777])
  assert.deepEqual(rejected.map((r) => r.errors!.map((e) => e.path)), [['address'], ['os_type'], ['connection.credential']])
  assert.equal(await count('bulk-'), 0, 'a dry run writes nothing')

  const real = await importCsv(csv, false)
  assert.equal(real.status, 200)
  assert.equal(((await real.json()) as { created: number }).created, 9997)
  assert.equal(await count('bulk-'), 9997)
  const web = await call(app, 'GET', '/api/v1/targets?group=web&limit=500', { token: op.token })
  assert.equal(web.body.items.length, 500)
  const one = await call(app, 'GET', '/api/v1/targets?q=bulk-20&limit=1', { token: op.token })
  assert.equal(one.body.items[0].description, 'host 20, imported')
  assert.deepEqual(one.body.items[0].tags, { env: 'prod', rack: 'r20' })

  // Importing the same file again updates instead of duplicating.
  const again = (await (await importCsv(csv, true)).json()) as { created: number; updated: number }
  assert.deepEqual({ created: again.created, updated: again.updated }, { created: 0, updated: 9997 })
})

test('export round-trips through import (JSON and CSV) without changes', async () => {
  await call(app, 'POST', '/api/v1/targets', { token: op.token, body: { name: 'rt-1', address: 'rt1.example.test', tags: { a: 'b' }, connection: { type: 'agent' } } })
  for (const format of ['json', 'csv'] as const) {
    const exported = await app.request(`/api/v1/targets/export?format=${format}`, { headers: { authorization: `Bearer ${op.token}` } })
    assert.equal(exported.status, 200)
    const body = await exported.text()
    const res = await app.request('/api/v1/targets/import?dry_run=true', {
      method: 'POST',
      headers: { authorization: `Bearer ${op.token}`, 'content-type': format === 'csv' ? 'text/csv' : 'application/json' },
      body,
    })
    const report = (await res.json()) as { created: number; rejected: number; updated: number }
    assert.equal(report.created, 0, format)
    assert.equal(report.rejected, 0, format)
    assert.ok(report.updated > 0, format)
  }
})

test('rejects malformed input with a 400, never a 500', async () => {
  assert.equal((await importCsv('name,address\n"unterminated,10.0.0.1\n', true)).status, 400)
  const unknownColumn = await importCsv('name,address,colour\nx-1,10.0.0.1,red\n', true)
  const body = (await unknownColumn.json()) as { rows: { action: string; errors: { message: string }[] }[] }
  assert.equal(body.rows[0]!.action, 'reject')
  assert.match(body.rows[0]!.errors[0]!.message, /unknown columns: colour/)
  const json = await call(app, 'POST', '/api/v1/targets/import', { token: op.token, body: { nope: true } })
  assert.equal(json.status, 400)
  const dupes = await call(app, 'POST', '/api/v1/targets/import?dry_run=true', {
    token: op.token,
    body: [
      { name: 'twin', address: '10.0.0.1', connection: { type: 'agent' } },
      { name: 'TWIN', address: '10.0.0.2', connection: { type: 'agent' } },
      'not an object',
    ],
  })
  assert.deepEqual(dupes.body.rows.map((r: { action: string }) => r.action), ['create', 'reject', 'reject'])
})
