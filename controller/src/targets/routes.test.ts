import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { call, createTestUser, type TestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createApp } from '../app.ts'
import { credential } from '../credentials/credentials.sql.ts'
import { sealSecret } from '../crypto/secret-box.ts'
import { checkHostKey } from './host-keys.ts'

let t: TestContext
let app: ReturnType<typeof createApp>
let op: TestUser
let viewer: TestUser
let sshCred: string
let winrmCred: string
before(async () => {
  t = await createTestContext()
  app = createApp(t.ctx, { uiDir: '/nonexistent' })
  op = await createTestUser(t.ctx, 'operator')
  viewer = await createTestUser(t.ctx, 'viewer')
  const cred = async (name: string, type: 'ssh_key' | 'winrm') => {
    const id = randomUUID()
    await t.ctx.db.insert(credential).values({ id, name, type, metadata: {}, secret: sealSecret(t.ctx.keyring, '{}', `credential:${id}`) })
    return id
  }
  sshCred = await cred('deploy-key', 'ssh_key')
  winrmCred = await cred('win-admin', 'winrm')
})
after(() => t.close())

const ssh = (extra: Record<string, unknown> = {}) => ({ type: 'ssh', credential_id: sshCred, ...extra })
const create = (body: Record<string, unknown>, token = op.token) => call(app, 'POST', '/api/v1/targets', { token, body })

describe('targets', () => {
  test('create with defaults, read, update, delete', async () => {
    const res = await create({ name: 'web-01', address: '10.0.0.1', tags: { env: 'prod', role: 'web' }, connection: ssh() })
    assert.equal(res.status, 201)
    assert.deepEqual(res.body.connection, { type: 'ssh', port: 22, credential_id: sshCred, host_key_policy: 'tofu', jump: [] })
    assert.equal(res.body.os_type, 'linux')
    assert.equal(res.body.enabled, true)
    assert.deepEqual(res.body.warnings, [])
    const id = res.body.id
    assert.equal((await call(app, 'GET', `/api/v1/targets/${id}`, { token: viewer.token })).body.name, 'web-01')
    const win = await call(app, 'PUT', `/api/v1/targets/${id}`, { token: op.token, body: { os_type: 'windows', connection: { type: 'winrm', credential_id: winrmCred, https: false } } })
    assert.equal(win.status, 200)
    assert.deepEqual(win.body.connection, { type: 'winrm', https: false, port: 5985, credential_id: winrmCred, verify_tls: true })
    assert.deepEqual(win.body.warnings, ['WinRM over plain HTTP'])
    assert.equal((await call(app, 'DELETE', `/api/v1/targets/${id}`, { token: op.token })).status, 200)
    assert.equal((await call(app, 'GET', `/api/v1/targets/${id}`, { token: op.token })).status, 404)
  })

  test('viewers read but cannot write', async () => {
    assert.equal((await create({ name: 'v-1', address: 'v1.example.test', connection: ssh() }, viewer.token)).status, 403)
  })

  test('reports every problem with its path: bad fields, wrong credential type, unknown jump host', async () => {
    const res = await create({ name: '-bad', address: 'not an address!', os_type: 'beos', tags: { 'bad key': 'x' }, connection: { type: 'ssh', port: 70000 } })
    assert.equal(res.status, 400)
    const paths = res.body.error.details.map((d: { path: string }) => d.path).sort()
    assert.deepEqual(paths, ['address', 'connection.port', 'name', 'os_type', 'tags.bad key'])
    const refs = await create({ name: 'refs', address: '10.0.0.9', connection: ssh({ credential_id: winrmCred, jump: [{ target_id: randomUUID(), credential_id: randomUUID() }] }) })
    assert.equal(refs.status, 400)
    assert.deepEqual(
      refs.body.error.details.map((d: { path: string }) => d.path).sort(),
      ['connection.credential_id', 'connection.jump[0].credential_id', 'connection.jump[0].target_id'],
    )
    const dup = await create({ name: 'dup-1', address: '10.0.0.2', connection: ssh() })
    assert.equal(dup.status, 201)
    const again = await create({ name: 'DUP-1', address: '10.0.0.3', connection: ssh() })
    assert.equal(again.status, 409)
  })

  test('host-key verification off is allowed only explicitly, and flagged', async () => {
    const res = await create({ name: 'lab-1', address: '10.9.0.1', connection: ssh({ host_key_policy: 'off' }) })
    assert.deepEqual(res.body.warnings, ['SSH host-key verification is off for this target'])
  })

  test('a jump host in use cannot be deleted', async () => {
    const bastion = await create({ name: 'bastion', address: '10.1.0.1', connection: ssh() })
    const inner = await create({ name: 'inner', address: '10.1.0.2', connection: ssh({ jump: [{ target_id: bastion.body.id, credential_id: sshCred }] }) })
    assert.equal(inner.status, 201)
    const res = await call(app, 'DELETE', `/api/v1/targets/${bastion.body.id}`, { token: op.token })
    assert.equal(res.status, 409)
    assert.deepEqual(res.body.error.details.targets.map((x: { name: string }) => x.name), ['inner'])
  })
})

describe('listing, selectors and groups', () => {
  before(async () => {
    for (let i = 0; i < 12; i++) {
      await create({
        name: `fleet-${String(i).padStart(2, '0')}`,
        address: `10.2.0.${i + 1}`,
        os_type: i % 3 === 0 ? 'windows' : 'linux',
        tags: { env: i % 2 ? 'prod' : 'dev', tier: String(i % 4) },
        connection: i % 3 === 0 ? { type: 'winrm', credential_id: winrmCred } : ssh(),
      })
    }
  })

  test('filters combine and pages follow the cursor', async () => {
    const names = async (qs: string) => {
      const res = await call(app, 'GET', `/api/v1/targets?q=fleet-&${qs}`, { token: viewer.token })
      assert.equal(res.status, 200, JSON.stringify(res.body))
      return res.body.items.map((x: { name: string }) => x.name)
    }
    assert.deepEqual(await names('os=windows'), ['fleet-00', 'fleet-03', 'fleet-06', 'fleet-09'])
    assert.deepEqual(await names('os=linux&tag=env=prod&tag=tier=1'), ['fleet-01', 'fleet-05'])
    assert.deepEqual(await names('connection=winrm&tag=env=prod'), ['fleet-03', 'fleet-09'])
    assert.deepEqual(await names('selector=os=linux,env=dev,tier!=2'), ['fleet-04', 'fleet-08'])
    assert.deepEqual(await names('online=true'), [])
    const first = await call(app, 'GET', '/api/v1/targets?q=fleet-&limit=5', { token: viewer.token })
    assert.equal(first.body.items.length, 5)
    const second = await call(app, 'GET', `/api/v1/targets?q=fleet-&limit=5&cursor=${first.body.next}`, { token: viewer.token })
    assert.equal(second.body.items[0].name, 'fleet-05')
    assert.equal((await call(app, 'GET', '/api/v1/targets?tag=noequals', { token: viewer.token })).status, 400)
    assert.equal((await call(app, 'GET', '/api/v1/targets?selector=os%3D%3D', { token: viewer.token })).status, 400)
  })

  test('resolve previews a selector', async () => {
    const res = await call(app, 'GET', `/api/v1/targets/resolve?selector=${encodeURIComponent('os=linux,env=prod')}&limit=3`, { token: viewer.token })
    assert.equal(res.status, 200)
    assert.equal(res.body.count, 4)
    assert.deepEqual(res.body.targets.map((x: { name: string }) => x.name), ['fleet-01', 'fleet-05', 'fleet-07'])
    const bad = await call(app, 'GET', '/api/v1/targets/resolve?selector=os%3Dlinux%2C%2C', { token: viewer.token })
    assert.equal(bad.status, 400)
    assert.match(bad.body.error.message, /^selector: /)
  })

  test('groups: static members, a dynamic selector, nesting; cycles and dangling references refused', async () => {
    const fleet = (await call(app, 'GET', '/api/v1/targets?q=fleet-&limit=20', { token: viewer.token })).body.items as { id: string; name: string }[]
    const id = (name: string) => fleet.find((f) => f.name === name)!.id
    const stat = await call(app, 'POST', '/api/v1/target-groups', { token: op.token, body: { name: 'canaries', members: [id('fleet-00'), id('fleet-02')] } })
    assert.equal(stat.status, 201)
    assert.equal(stat.body.static_members, 2)
    const dyn = await call(app, 'POST', '/api/v1/target-groups', { token: op.token, body: { name: 'prod-windows', selector: 'os=windows,env=prod' } })
    const nested = await call(app, 'POST', '/api/v1/target-groups', { token: op.token, body: { name: 'watched', selector: 'group:canaries|group:prod-windows' } })
    assert.equal(nested.status, 201)
    const members = await call(app, 'GET', `/api/v1/target-groups/${nested.body.id}/members`, { token: viewer.token })
    assert.deepEqual(members.body.items.map((x: { name: string }) => x.name), ['fleet-00', 'fleet-02', 'fleet-03', 'fleet-09'])
    const cycle = await call(app, 'PUT', `/api/v1/target-groups/${dyn.body.id}`, { token: op.token, body: { selector: 'group:watched' } })
    assert.equal(cycle.status, 400)
    assert.match(cycle.body.error.message, /cycle/i)
    const dangling = await call(app, 'POST', '/api/v1/target-groups', { token: op.token, body: { name: 'ghost', selector: 'group:nope' } })
    assert.equal(dangling.status, 400)
    const rename = await call(app, 'PUT', `/api/v1/target-groups/${stat.body.id}`, { token: op.token, body: { name: 'canaries-2' } })
    assert.equal(rename.status, 409)
    assert.equal((await call(app, 'DELETE', `/api/v1/target-groups/${dyn.body.id}`, { token: op.token })).status, 409)
    const listed = await call(app, 'GET', '/api/v1/target-groups?limit=2', { token: viewer.token })
    assert.deepEqual(listed.body.items.map((g: { name: string; static_members: number }) => [g.name, g.static_members]), [['canaries', 2], ['prod-windows', 0]])
    assert.ok(listed.body.next)
    const byGroup = await call(app, 'GET', '/api/v1/targets?group=canaries', { token: viewer.token })
    assert.deepEqual(byGroup.body.items.map((x: { name: string }) => x.name), ['fleet-00', 'fleet-02'])
  })

  test('agentless filter and with_groups name each target\'s groups (static and by selector)', async () => {
    const names = async (qs: string) => (await call(app, 'GET', `/api/v1/targets?q=fleet-&${qs}`, { token: viewer.token })).body.items.map((x: { name: string }) => x.name)
    assert.deepEqual(await names('connection=agentless&os=windows'), ['fleet-00', 'fleet-03', 'fleet-06', 'fleet-09'])
    const agentBox = await create({ name: 'fleet-agent', address: '10.2.1.1', connection: { type: 'agent' } })
    assert.deepEqual(await names('connection=agent'), ['fleet-agent'])
    assert.ok(!(await names('connection=agentless')).includes('fleet-agent'))
    const fleet = (await call(app, 'GET', '/api/v1/targets?q=fleet-&limit=20', { token: viewer.token })).body.items as { id: string; name: string; groups?: unknown }[]
    assert.equal(fleet[0]!.groups, undefined, 'groups only when asked')
    const id = (name: string) => fleet.find((f) => f.name === name)!.id
    await call(app, 'POST', '/api/v1/target-groups', { token: op.token, body: { name: 'zz-pinned', members: [id('fleet-01'), id('fleet-agent')] } })
    await call(app, 'POST', '/api/v1/target-groups', { token: op.token, body: { name: 'aa-dev-tier1', selector: 'env=dev,tier=1' } })
    await call(app, 'POST', '/api/v1/target-groups', { token: op.token, body: { name: 'mm-nested', selector: 'group:zz-pinned' } })
    const listed = await call(app, 'GET', '/api/v1/targets?q=fleet-&limit=20&with_groups=true', { token: viewer.token })
    assert.equal(listed.status, 200)
    const groupsOf = (name: string) => (listed.body.items as { name: string; groups: { name: string }[] }[]).find((t) => t.name === name)!.groups.map((g) => g.name).filter((g) => /^(aa|mm|zz)-/.test(g))
    assert.deepEqual(groupsOf('fleet-01'), ['mm-nested', 'zz-pinned'])
    assert.deepEqual(groupsOf('fleet-agent'), ['mm-nested', 'zz-pinned'])
    assert.deepEqual(groupsOf('fleet-02'), [])
    assert.equal(agentBox.status, 201)
    await call(app, 'DELETE', `/api/v1/targets/${agentBox.body.id}`, { token: op.token })
  })

  test('bulk tag, disable, group and delete', async () => {
    const a = await create({ name: 'bulk-a', address: '10.3.0.1', tags: { keep: 'yes', drop: 'me' }, connection: ssh() })
    const b = await create({ name: 'bulk-b', address: '10.3.0.2', connection: ssh() })
    const ids = [a.body.id, b.body.id]
    const bulk = (body: Record<string, unknown>) => call(app, 'POST', '/api/v1/targets/bulk', { token: op.token, body: { target_ids: ids, ...body } })
    assert.equal((await bulk({ action: 'add_tags', tags: { wave: '2' } })).body.changed, 2)
    assert.equal((await bulk({ action: 'remove_tags', keys: ['drop'] })).body.changed, 2)
    const after = await call(app, 'GET', `/api/v1/targets/${a.body.id}`, { token: op.token })
    assert.deepEqual(after.body.tags, { keep: 'yes', wave: '2' })
    await bulk({ action: 'set_enabled', enabled: false })
    assert.equal((await call(app, 'GET', `/api/v1/targets/${b.body.id}`, { token: op.token })).body.enabled, false)
    const group = await call(app, 'POST', '/api/v1/target-groups', { token: op.token, body: { name: 'bulk-group' } })
    await bulk({ action: 'add_to_group', group_id: group.body.id })
    assert.equal((await call(app, 'GET', `/api/v1/target-groups/${group.body.id}`, { token: op.token })).body.static_members, 2)
    assert.equal((await bulk({ action: 'explode' })).status, 400)
    assert.equal((await bulk({ action: 'delete' })).body.changed, 2)
  })
})

describe('host keys', () => {
  test('tofu records the first key; a changed key waits for approval; approve and revoke', async () => {
    const tgt = await create({ name: 'hk-1', address: '10.4.0.1', connection: ssh() })
    const id = tgt.body.id
    const key = (n: number) => ({ keyType: 'ssh-ed25519', publicKey: Buffer.alloc(51, n) })
    const first = await checkHostKey(t.ctx.db, id, 'tofu', key(1), new Date())
    assert.equal(first.accept, true)
    const changed = await checkHostKey(t.ctx.db, id, 'tofu', key(2), new Date())
    assert.deepEqual({ accept: changed.accept, reason: 'reason' in changed ? changed.reason : null }, { accept: false, reason: 'changed_key' })
    const keys = (await call(app, 'GET', `/api/v1/targets/${id}/host-keys`, { token: viewer.token })).body.items
    assert.deepEqual(keys.map((k: { status: string }) => k.status), ['trusted', 'pending'])
    assert.match(keys[0].fingerprint, /^SHA256:/)
    assert.equal(keys[0].decided_by, 'trust on first use')
    const approved = await call(app, 'POST', `/api/v1/targets/${id}/host-keys/${keys[1].id}/approve`, { token: op.token })
    assert.equal(approved.status, 200)
    assert.equal(approved.body.decided_by, op.user.username)
    const now = (await call(app, 'GET', `/api/v1/targets/${id}/host-keys`, { token: viewer.token })).body.items
    assert.deepEqual(now.map((k: { status: string }) => k.status), ['revoked', 'trusted'])
    assert.equal((await checkHostKey(t.ctx.db, id, 'tofu', key(2), new Date())).accept, true)
    assert.equal((await checkHostKey(t.ctx.db, id, 'strict', key(1), new Date())).accept, false)
    assert.equal((await call(app, 'POST', `/api/v1/targets/${id}/host-keys/${keys[1].id}/revoke`, { token: viewer.token })).status, 403)
    assert.equal((await call(app, 'POST', `/api/v1/targets/${id}/host-keys/${randomUUID()}/revoke`, { token: op.token })).status, 404)
  })
})
