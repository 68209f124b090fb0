import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { call, createTestUser, type TestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { createApp } from '../app.ts'
import { ConfigError, DEFAULT_AGENT_MIN_VERSION, loadConfig } from '../config.ts'
import { agent } from './agents.sql.ts'
import { isVersionSupported } from './version-support.ts'

const MIN = '1.2.0'
// [reported version, supported with MIN]
const VERSIONS: [string, boolean][] = [
  ['1.2.0', true],
  ['1.2.1', true],
  ['1.10.0', true], // numbers, not text: 10 > 2
  ['2.0.0-rc.1', true],
  ['1.2.0+build.7', true],
  ['1.2.0-rc.1', false], // a pre-release of the minimum comes before it
  ['1.1.9', false],
  ['0.99.99', false],
  ['unknown', false],
  ['', false],
  ['1.2', false],
  ['v1.2.0', false],
  ['1.2.0.1', false],
  ['1234567890.0.0', false], // does not parse (parts are capped at 9 digits)
  ["1.3.0'; drop table agent; --", false],
]

let t: TestContext
let app: ReturnType<typeof createApp>
let operator: TestUser
const ids = new Map<string, string>()
let revokedOld: string

before(async () => {
  t = await createTestContext({ env: { OPSC_AGENT_MIN_VERSION: MIN } })
  app = createApp(t.ctx, { uiDir: '/nonexistent' })
  operator = await createTestUser(t.ctx, 'operator')
  const row = (name: string, agentVersion: string) => ({ name, hostname: name, identityPublicKey: 'k', boxPublicKey: 'b', agentVersion, protocolVersion: '1.0' })
  for (const [i, [version]] of VERSIONS.entries()) {
    const [inserted] = await t.ctx.db.insert(agent).values(row(`agent-${String(i).padStart(2, '0')}`, version)).returning()
    ids.set(version, inserted!.id)
  }
  const [old] = await t.ctx.db.insert(agent).values({ ...row('revoked-old', '0.1.0'), revokedAt: new Date() }).returning()
  revokedOld = old!.id
})
after(() => t.close())

test('OPSC_AGENT_MIN_VERSION defaults to major.minor.0 of this release and must be MAJOR.MINOR.PATCH', () => {
  assert.match(DEFAULT_AGENT_MIN_VERSION, /^\d+\.\d+\.0$/)
  assert.equal(loadConfig({}).OPSC_AGENT_MIN_VERSION, DEFAULT_AGENT_MIN_VERSION)
  assert.equal(loadConfig({ OPSC_AGENT_MIN_VERSION: ' 2.3.4 ' }).OPSC_AGENT_MIN_VERSION, '2.3.4')
  for (const bad of ['1.2', 'v1.2.0', '1.2.0-rc.1', 'latest', '']) {
    assert.throws(() => loadConfig({ OPSC_AGENT_MIN_VERSION: bad }), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.match(err.message, /^OPSC_AGENT_MIN_VERSION must be a version MAJOR\.MINOR\.PATCH/)
      return true
    })
  }
})

test('semver precedence; a version that does not parse is unsupported', () => {
  for (const [version, supported] of VERSIONS) assert.equal(isVersionSupported(version, MIN), supported, version)
  assert.equal(isVersionSupported('0.1.0', '0.1.0'), true)
  assert.equal(isVersionSupported('0.0.9', '0.1.0'), false)
})

test('list and detail carry version_supported; ?outdated= and the counts agree with it (revoked agents are not outdated)', async () => {
  const all = await call(app, 'GET', '/api/v1/agents?limit=100', { token: operator.token })
  assert.equal(all.status, 200, JSON.stringify(all.body))
  const byId = new Map(all.body.items.map((a: { id: string; version_supported: boolean }) => [a.id, a.version_supported]))
  for (const [version, supported] of VERSIONS) assert.equal(byId.get(ids.get(version)), supported, `list: ${version}`)
  assert.equal(byId.get(revokedOld), false)
  const one = await call(app, 'GET', `/api/v1/agents/${ids.get('1.2.0-rc.1')}`, { token: operator.token })
  assert.equal(one.body.version_supported, false)

  const unsupported = VERSIONS.filter(([, ok]) => !ok).map(([v]) => ids.get(v)).sort()
  const outdated = await call(app, 'GET', '/api/v1/agents?outdated=true&limit=100', { token: operator.token })
  assert.deepEqual(outdated.body.items.map((a: { id: string }) => a.id).sort(), unsupported, 'the SQL test matches isVersionSupported')
  const current = await call(app, 'GET', '/api/v1/agents?outdated=false&limit=100', { token: operator.token })
  assert.deepEqual(
    current.body.items.map((a: { id: string }) => a.id).sort(),
    [...VERSIONS.filter(([, ok]) => ok).map(([v]) => ids.get(v)), revokedOld].sort(),
  )
  const revokedOutdated = await call(app, 'GET', '/api/v1/agents?outdated=true&status=revoked', { token: operator.token })
  assert.deepEqual(revokedOutdated.body.items, [])
  assert.equal((await call(app, 'GET', '/api/v1/agents?outdated=yes', { token: operator.token })).status, 400)

  const counts = await call(app, 'GET', '/api/v1/agents/counts', { token: operator.token })
  assert.equal(counts.status, 200)
  assert.deepEqual([counts.body.outdated, counts.body.total, counts.body.revoked, counts.body.min_version], [unsupported.length, VERSIONS.length + 1, 1, MIN])
})
