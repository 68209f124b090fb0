import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { sql } from 'drizzle-orm'
import { createTestDatabase, type TestDatabase } from '../../../test/harness/db.ts'
import type { Db } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'
import { ValidationError } from '../errors.ts'
import { target, targetGroup, targetGroupMember, type Connection, type OsType } from '../targets/targets.sql.ts'
import { checkGroupSelector, countSelector, groupMembershipConditions, MAX_EXPANDED_TERMS, previewSelector, resolveSelector, selectorCondition } from './compile.ts'
import { parseSelector, SelectorError, type SelectorAst, type SelectorTerm } from './parse.ts'

let t: TestDatabase
let db: Db

const HOSTILE = "x'); drop table target; --"

interface Fixture {
  id: string
  name: string
  address: string
  os: OsType
  connection: Connection['type']
  enabled: boolean
  tags: Record<string, string>
}

/** 50 generated targets plus a few odd ones: every os, connection type, missing tags, disabled targets. */
function fixtures(): Omit<Fixture, 'id'>[] {
  const roles = ['web', 'db', 'cache', 'api', 'batch']
  const envs = ['prod', 'stage', 'dev']
  const out: Omit<Fixture, 'id'>[] = []
  for (let i = 0; i < 50; i++) {
    const os: OsType = i % 10 < 6 ? 'linux' : i % 10 < 9 ? 'windows' : i % 20 === 9 ? 'unix' : 'network'
    const connection = os === 'linux' ? (i % 2 ? 'ssh' : 'agent') : os === 'windows' ? (i % 4 === 3 ? 'agent' : 'winrm') : 'ssh'
    const tags: Record<string, string> = { role: roles[i % 5]! }
    if (i % 7 !== 0) tags.env = envs[i % 3]!
    if (i % 4 === 0) tags.backup = 'yes'
    out.push({ name: `${roles[i % 5]}-${String(i).padStart(2, '0')}`, address: `10.0.${i % 4}.${i}`, os, connection, enabled: i % 11 !== 10, tags })
  }
  out.push(
    { name: 'Web-Edge', address: 'EDGE.example.com', os: 'linux', connection: 'agent', enabled: true, tags: { env: 'prod', role: 'web' } },
    { name: 'odd%name', address: '192.0.2.1', os: 'other', connection: 'ssh', enabled: true, tags: { env: HOSTILE } },
    { name: 'odd_name', address: '192.0.2.2', os: 'other', connection: 'ssh', enabled: true, tags: { os: 'custom' } },
    { name: 'oddxname', address: '192.0.2.3', os: 'other', connection: 'ssh', enabled: true, tags: { 'k8s.io/zone': 'a b, c' } },
  )
  return out
}

const CONNECTIONS: { [K in Connection['type']]: Connection & { type: K } } = {
  agent: { type: 'agent', agent_id: null },
  ssh: { type: 'ssh', port: 22, credential_id: null, host_key_policy: 'tofu', jump: [] },
  winrm: { type: 'winrm', port: 5986, https: true, credential_id: null, verify_tls: true },
}

/** name → static members (target names) and dynamic selector. */
const GROUPS: Record<string, { members?: string[]; selector?: string }> = {
  canary: { members: ['web-00', 'db-01', 'web-10'] },
  'prod-web': { selector: 'env=prod,role=web' },
  frontends: { members: ['cache-02'], selector: 'group:prod-web | role=api,env=prod' },
  'linux-fronts': { selector: 'group:FRONTENDS,os=linux' },
  'Prod DB': { selector: 'env=prod, role=db' },
  decommissioned: { selector: 'enabled=false' },
  'cyc-a': { selector: 'group:cyc-b' },
  'cyc-b': { selector: 'role=db | group:cyc-a' },
  self: { members: ['web-00'], selector: 'group:self' },
  broken: { selector: 'env=' },
  dangling: { selector: 'group:nope' },
}

let all: Fixture[] = []
const byName = (name: string) => all.find((f) => f.name === name)!

before(async () => {
  t = await createTestDatabase()
  db = t.database.db
  const rows = fixtures()
  const inserted = await db
    .insert(target)
    .values(rows.map((r) => ({ name: r.name, address: r.address, osType: r.os, enabled: r.enabled, tags: r.tags, connection: CONNECTIONS[r.connection] })))
    .returning({ id: target.id, name: target.name })
  all = rows.map((r) => ({ ...r, id: inserted.find((i) => i.name === r.name)!.id }))
  for (const [name, g] of Object.entries(GROUPS)) {
    const [row] = await db.insert(targetGroup).values({ name, selector: g.selector ?? null }).returning({ id: targetGroup.id })
    if (g.members) await db.insert(targetGroupMember).values(g.members.map((m) => ({ groupId: row!.id, targetId: byName(m).id })))
  }
})
after(() => t.drop())

/** An independent reading of the grammar over the fixtures, to check the SQL against. */
function oracle(ast: SelectorAst, includeDisabled: boolean): Set<string> {
  const glob = (pattern: string, value: string) =>
    new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'is').test(value)
  const inGroup = (name: string, f: Fixture): boolean => {
    const [, g] = Object.entries(GROUPS).find(([k]) => k.toLowerCase() === name.toLowerCase())!
    return (g.members ?? []).includes(f.name) || (g.selector !== undefined && matches(parseSelector(g.selector), f, true))
  }
  const term = (x: SelectorTerm, f: Fixture): boolean => {
    switch (x.kind) {
      case 'all': return true
      case 'id': return (f.id === x.id) !== x.negated
      case 'name': return glob(x.pattern, f.name) !== x.negated
      case 'group': return inGroup(x.name, f) !== x.negated
      case 'tag': return (f.tags[x.key] === x.value) === (x.op === '=')
      case 'tag_exists': return (x.key in f.tags) !== x.negated
      case 'os': return (f.os === x.value) === (x.op === '=')
      case 'connection': return (f.connection === x.value) === (x.op === '=')
      case 'enabled': return (f.enabled === x.value) === (x.op === '=')
      case 'address': return glob(x.pattern, f.address) === (x.op === '=')
    }
  }
  const matches = (a: SelectorAst, f: Fixture, disabledToo: boolean) =>
    a.alternatives.some((terms) => terms.every((x) => term(x, f)) && (disabledToo || f.enabled || terms.some((x) => x.kind === 'enabled')))
  return new Set(all.filter((f) => matches(ast, f, includeDisabled)).map((f) => f.name))
}

async function names(selector: string, opts: { includeDisabled?: boolean } = {}): Promise<string[]> {
  const { ids, count } = await resolveSelector(db, selector, opts)
  assert.equal(count, ids.length)
  return ids.map((id) => all.find((f) => f.id === id)!.name).sort()
}

const sorted = (xs: Iterable<string>) => [...xs].sort()

describe('resolveSelector', () => {
  test('os=linux,env=prod picks exactly the enabled linux targets tagged env=prod', async () => {
    const expected = all.filter((f) => f.os === 'linux' && f.tags.env === 'prod' && f.enabled).map((f) => f.name)
    assert.ok(expected.length >= 5)
    assert.deepEqual(await names('os=linux,env=prod'), sorted(expected))
  })

  test('hand-checked answers', async () => {
    assert.deepEqual(await names('name:web-0*'), ['web-00', 'web-05'])
    assert.deepEqual(await names('name:WEB-E*'), ['Web-Edge'])
    assert.deepEqual(await names('name:web-edge'), ['Web-Edge'])
    assert.deepEqual(await names('name:odd*'), ['odd%name', 'odd_name', 'oddxname'])
    assert.deepEqual(await names('name:odd_name'), ['odd_name'], '_ is not a wildcard')
    assert.deepEqual(await names('name:odd%*'), ['odd%name'], '% is not a wildcard')
    assert.deepEqual(await names('name:%'), [])
    assert.deepEqual(await names('tag:os=custom'), ['odd_name'])
    assert.deepEqual(await names('os=other'), ['odd%name', 'odd_name', 'oddxname'])
    assert.deepEqual(await names('k8s.io/zone="a b, c"'), ['oddxname'])
    assert.deepEqual(await names('address=edge.*'), ['Web-Edge'])
    assert.deepEqual(await names('os=unix'), ['batch-09', 'batch-29', 'batch-49'])
    assert.deepEqual(await names('os=unix | os=network'), ['batch-09', 'batch-19', 'batch-29', 'batch-39', 'batch-49'])
    assert.deepEqual(await names(`id:${byName('db-01').id} | !id:${byName('db-01').id},name:db-1*`), ['db-01', 'db-11', 'db-16'])
  })

  test('key!=value also matches targets without the tag; !key only those without it', async () => {
    const noEnv = all.filter((f) => f.enabled && !('env' in f.tags)).map((f) => f.name)
    assert.ok(noEnv.length > 0)
    assert.deepEqual(await names('!env'), sorted(noEnv))
    const notProd = await names('env!=prod')
    for (const n of noEnv) assert.ok(notProd.includes(n), n)
    assert.deepEqual(await names('env'), sorted(all.filter((f) => f.enabled && 'env' in f.tags).map((f) => f.name)))
  })

  test('disabled targets count only when the alternative tests enabled, or includeDisabled is set', async () => {
    const disabled = all.filter((f) => !f.enabled).map((f) => f.name)
    assert.ok(disabled.length >= 4)
    assert.equal(await countSelector(db, '*'), all.length - disabled.length)
    assert.equal(await countSelector(db, '*', { includeDisabled: true }), all.length)
    assert.deepEqual(await names('enabled=false'), sorted(disabled))
    assert.deepEqual(await names('enabled!=true'), sorted(disabled))
    assert.equal(await countSelector(db, 'enabled=true'), all.length - disabled.length)
    const linuxOn = all.filter((f) => f.enabled && f.os === 'linux').map((f) => f.name)
    assert.deepEqual(await names('enabled=false | os=linux'), sorted(new Set([...disabled, ...linuxOn])))
    assert.deepEqual(await names('group:decommissioned'), [], 'a group does not lift the rule')
    assert.deepEqual(await names('group:decommissioned', { includeDisabled: true }), sorted(disabled))
  })

  test('matches an independent evaluation of the grammar for many selectors', async () => {
    const selectors = [
      'os=linux,env=prod',
      'env=prod,role!=db',
      'env=prod,role=web,backup=yes,env=prod',
      'env=prod,os=linux,env=dev | role=db,env=dev',
      'os!=linux,connection=agent',
      'connection=winrm | connection=ssh,backup',
      'connection!=ssh,!backup',
      'address=10.0.1.*,role=web|address=10.0.2.*',
      'address!=10.*',
      'name:*-1*,env!=dev',
      '!name:web-*,os=windows',
      '*,env=stage',
      'group:canary',
      'group:canary,enabled=false',
      'group:prod-web',
      'group:frontends',
      'group:linux-fronts',
      '!group:frontends,env=prod',
      'group:"Prod DB" | group:canary',
      'group:canary | role=cache,!backup',
      `env="${HOSTILE.replace(/"/g, '\\"')}"`,
    ]
    for (const selector of selectors) {
      for (const includeDisabled of [false, true]) {
        const expected = sorted(oracle(parseSelector(selector), includeDisabled))
        assert.deepEqual(await names(selector, { includeDisabled }), expected, `${selector} (includeDisabled ${includeDisabled})`)
      }
    }
  })

  test('orders ids by name, case-insensitively', async () => {
    const { ids } = await resolveSelector(db, 'name:w*')
    const got = ids.map((id) => all.find((f) => f.id === id)!.name.toLowerCase())
    assert.deepEqual(got, [...got].sort())
    assert.ok(got.includes('web-edge'))
  })

  test('accepts a parsed selector as well as text', async () => {
    const ast = parseSelector('os=linux,env=prod')
    assert.deepEqual(await resolveSelector(db, ast), await resolveSelector(db, 'os=linux,env=prod'))
  })
})

describe('groups', () => {
  test('static members, a dynamic selector, both, and nesting', async () => {
    assert.deepEqual(await names('group:canary'), ['db-01', 'web-00'], 'web-10 is disabled')
    const prodWeb = all.filter((f) => f.enabled && f.tags.env === 'prod' && f.tags.role === 'web').map((f) => f.name)
    assert.deepEqual(await names('group:PROD-WEB'), sorted(prodWeb), 'group names are case-insensitive')
    const prodApi = all.filter((f) => f.enabled && f.tags.env === 'prod' && f.tags.role === 'api').map((f) => f.name)
    assert.deepEqual(await names('group:frontends'), sorted(['cache-02', ...prodWeb, ...prodApi]))
    assert.deepEqual(await names('group:linux-fronts'), sorted(['cache-02', ...prodWeb, ...prodApi].filter((n) => byName(n).os === 'linux')))
  })

  test('groupMembershipConditions: the same members as group:NAME, compiled from rows held without a query', async () => {
    const groups = (await db.select({ id: targetGroup.id, name: targetGroup.name, selector: targetGroup.selector }).from(targetGroup)).filter((g) =>
      ['canary', 'prod-web', 'frontends', 'linux-fronts'].includes(g.name.toLowerCase()),
    )
    assert.equal(groups.length, 4)
    let queries = 0
    const counting = new Proxy(db, { get: (d, key, r) => (['select', 'execute'].includes(String(key)) && queries++, Reflect.get(d, key, r)) })
    const conditions = await groupMembershipConditions(counting, groups)
    assert.equal(queries, 0, 'nested groups come from the rows given')
    for (const [i, g] of groups.entries()) {
      const members = await db.select({ id: target.id }).from(target).where(conditions[i]!)
      const expected = await resolveSelector(db, `group:${g.name}`, { includeDisabled: true })
      assert.deepEqual(members.map((m) => m.id).sort(), [...expected.ids].sort(), g.name)
    }
  })

  test('a cycle is an error naming it', async () => {
    await assert.rejects(resolveSelector(db, 'os=linux | group:cyc-a'), { name: 'SelectorError', message: 'selector: group cycle: "cyc-a" → "cyc-b" → "cyc-a"' })
    await assert.rejects(resolveSelector(db, 'group:cyc-b'), { message: 'selector: group cycle: "cyc-b" → "cyc-a" → "cyc-b"' })
    await assert.rejects(resolveSelector(db, 'group:self'), { message: 'selector: group cycle: "self" → "self"' })
  })

  test('unknown groups and invalid stored selectors are errors', async () => {
    await assert.rejects(resolveSelector(db, 'group:nope'), { message: 'selector: unknown group "nope"' })
    await assert.rejects(resolveSelector(db, 'group:dangling'), { message: 'selector: unknown group "nope" (in group "dangling")' })
    await assert.rejects(resolveSelector(db, 'group:broken'), {
      message: 'selector: group "broken" has an invalid selector: unexpected end of selector at 5, expected a value',
    })
    await assert.rejects(resolveSelector(db, `group:"${HOSTILE}"`), (err) => err instanceof ValidationError && err.message === `selector: unknown group "${HOSTILE}"`)
  })

  test(`a diamond of groups may not expand past ${MAX_EXPANDED_TERMS} terms`, async () => {
    for (let i = 0; i < 11; i++) {
      await db.insert(targetGroup).values({ name: `diamond-${i}`, selector: i === 10 ? 'role=web' : `group:diamond-${i + 1} | group:diamond-${i + 1}` })
    }
    assert.ok((await countSelector(db, 'group:diamond-3')) > 0)
    await assert.rejects(countSelector(db, 'group:diamond-0'), { message: `selector: expands to more than ${MAX_EXPANDED_TERMS} terms through its groups` })
  })

  test('checkGroupSelector sees the new selector in place of the stored one', async () => {
    await assert.rejects(checkGroupSelector(db, { name: 'prod-web', selector: 'group:linux-fronts' }), {
      message: 'selector: group cycle: "prod-web" → "linux-fronts" → "frontends" → "prod-web"',
    })
    await assert.rejects(checkGroupSelector(db, { name: 'new-group', selector: 'env=prod | group:new-group' }), { message: 'selector: group cycle: "new-group" → "new-group"' })
    await assert.rejects(checkGroupSelector(db, { name: 'new-group', selector: 'group:nope' }), { message: 'selector: unknown group "nope" (in group "new-group")' })
    await assert.rejects(checkGroupSelector(db, { name: 'x', selector: 'env=,' }), SelectorError)
    assert.deepEqual(await checkGroupSelector(db, { name: 'cyc-a', selector: 'group:canary | env=dev' }), parseSelector('group:canary | env=dev'), 'fixing a cycle is allowed')
  })
})

describe('previewSelector', () => {
  test('returns the total and one page of API-shaped rows, with keyset paging by name', async () => {
    const everything = await resolveSelector(db, 'os=linux')
    const first = await previewSelector(db, 'os=linux', { limit: 5 })
    assert.equal(first.count, everything.count)
    assert.deepEqual(first.targets.map((r) => r.id), everything.ids.slice(0, 5))
    const web00 = byName(first.targets[0]!.name)
    assert.deepEqual(first.targets[0], { id: web00.id, name: web00.name, address: web00.address, os_type: 'linux', enabled: true })
    const second = await previewSelector(db, 'os=linux', { limit: 5, after: first.targets.at(-1)!.name })
    assert.equal(second.count, everything.count)
    assert.deepEqual(second.targets.map((r) => r.id), everything.ids.slice(5, 10))
  })

  test('rejects a limit out of range', async () => {
    await assert.rejects(previewSelector(db, '*', { limit: 0 }), ValidationError)
    await assert.rejects(previewSelector(db, '*', { limit: 501 }), ValidationError)
  })
})

describe('values are bound parameters', () => {
  test('hostile values select by value and change nothing', async () => {
    assert.deepEqual(await names(`env="${HOSTILE}"`), ['odd%name'])
    assert.deepEqual(await names(`name:"${HOSTILE}*"`), [])
    assert.deepEqual(await names(`address="'; delete from target where ''='*"`), [])
    assert.deepEqual(await names(`env!="${HOSTILE}",name:odd*`), ['odd_name', 'oddxname'])
    const [row] = rowsOf<{ n: number }>(await db.execute(sql`select count(*)::int as n from target`))
    assert.equal(Number(row!.n), all.length)
  })

  test('the compiled SQL carries no selector text', async () => {
    const condition = await selectorCondition(db, `env="${HOSTILE}",name:"a'b*",address="x\\"y",k8s.io/zone=z`)
    const query = db.select({ id: target.id }).from(target).where(condition).toSQL()
    for (const fragment of ["drop table", "a'b", 'x"y', 'k8s.io/zone', 'zone']) assert.ok(!query.sql.includes(fragment), `${fragment} in ${query.sql}`)
    assert.ok(query.params.includes(JSON.stringify({ env: HOSTILE, 'k8s.io/zone': 'z' })), 'tag equalities of one intersection are one containment')
  })

  test('a tag key named __proto__ is an ordinary key', async () => {
    const condition = await selectorCondition(db, '__proto__=x,env=prod')
    const query = db.select({ id: target.id }).from(target).where(condition).toSQL()
    assert.ok(query.params.includes('{"__proto__":"x","env":"prod"}'), JSON.stringify(query.params))
    assert.deepEqual(await names('__proto__=x,env=prod'), [])
  })
})
