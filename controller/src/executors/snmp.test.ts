import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { freeUdpPort, snmpdUnavailable, startSnmpd, type TestSnmpd } from '../../../test/harness/snmpd.ts'
import { createCredential } from '../credentials/service.ts'
import { CreateCredentialInput } from '../credentials/types.ts'
import type { TargetRow } from '../targets/targets.sql.ts'
import { SnmpInput, snmpExecutor, type SnmpVarbind } from './snmp.ts'
import { executionContext } from './testing.ts'
import type { ExecutionContext } from './types.ts'

/*
 * Against a real Net-SNMP agent (test/harness/snmpd.ts): `snmpd` in the foreground on a free UDP
 * port of 127.0.0.1, with its own config, a v2c read-only community and v3 users.
 */

const skip = snmpdUnavailable() ?? false
if (skip) console.log(`# skipping snmp tests: ${skip}`)

let t: TestContext
let agent: TestSnmpd | undefined
let port: number
let SYS_NAME: string
let SYS_LOCATION: string

function target(address = '127.0.0.1'): TargetRow {
  const now = new Date()
  return {
    id: randomUUID(),
    name: 'switch-1',
    address,
    osType: 'network',
    description: null,
    enabled: true,
    tags: {},
    connection: { type: 'agent', agent_id: null },
    facts: null,
    factsUpdatedAt: null,
    lastSeenAt: null,
    createdAt: now,
    updatedAt: now,
  }
}

function run(type: string, input: Record<string, unknown>, overrides: Partial<ExecutionContext> = {}) {
  const x = executionContext(t.ctx, { target: target(), ...overrides })
  return { x, outcome: snmpExecutor.run(type, SnmpInput.parse({ port, ...input }), x) }
}

async function ok(type: string, input: Record<string, unknown>) {
  const { x, outcome } = run(type, input)
  const result = await outcome
  assert.equal(result.status, 'succeeded', result.error ?? '')
  return { x, result: result.result as { varbinds: SnmpVarbind[]; truncated?: boolean } }
}

before(async () => {
  t = await createTestContext()
  if (skip) return
  agent = await startSnmpd()
  port = agent.port
  SYS_NAME = agent.sysName
  SYS_LOCATION = agent.sysLocation
  const { sha: V3, md5: MD5, des: DES } = agent.v3
  const create = (body: Record<string, unknown>) => createCredential(t.ctx, undefined, CreateCredentialInput.parse({ type: 'snmp', ...body }))
  await create({ name: 'snmp-v2c', version: 'v2c', community: agent.community })
  await create({ name: 'snmp-wrong-community', version: 'v2c', community: 'not-the-community' })
  await create({ name: 'snmp-v3', version: 'v3', username: V3.user, auth_protocol: 'sha', auth_password: V3.auth, priv_protocol: 'aes', priv_password: V3.priv })
  await create({ name: 'snmp-v3-md5', version: 'v3', username: MD5.user, auth_protocol: 'md5', auth_password: MD5.auth, priv_protocol: 'aes', priv_password: MD5.priv })
  await create({ name: 'snmp-v3-des', version: 'v3', username: DES.user, auth_protocol: 'sha', auth_password: DES.auth, priv_protocol: 'des', priv_password: DES.priv })
  await create({ name: 'snmp-v3-bad', version: 'v3', username: V3.user, auth_protocol: 'sha', auth_password: 'wrong-auth-pass', priv_protocol: 'aes', priv_password: V3.priv })
  await createCredential(t.ctx, undefined, CreateCredentialInput.parse({ name: 'ssh-login', type: 'ssh_password', username: 'root', password: 'pw' }))
})

after(async () => {
  await agent?.stop()
  await t?.close()
})

describe('snmp executor', { skip }, () => {
  test('snmp.get reads sysName and sysLocation with a v2c community', async () => {
    const { x, result } = await ok('snmp.get', { credential: 'snmp-v2c', oids: ['1.3.6.1.2.1.1.5.0', '.1.3.6.1.2.1.1.6.0'] })
    assert.deepEqual(result, {
      varbinds: [
        { oid: '1.3.6.1.2.1.1.5.0', type: 'OctetString', value: SYS_NAME },
        { oid: '1.3.6.1.2.1.1.6.0', type: 'OctetString', value: SYS_LOCATION },
      ],
    })
    assert.equal(x.stdout(), `1.3.6.1.2.1.1.5.0 = OctetString: ${SYS_NAME}\n1.3.6.1.2.1.1.6.0 = OctetString: ${SYS_LOCATION}\n`)
  })

  test('snmp.walk of the system group returns its varbinds in order, typed', async () => {
    const { x, result } = await ok('snmp.walk', { credential: 'snmp-v2c', oid: '1.3.6.1.2.1.1' })
    assert.equal(result.truncated, false)
    const byOid = new Map(result.varbinds.map((vb) => [vb.oid, vb]))
    assert.ok(result.varbinds.length >= 7, `got ${result.varbinds.length} varbinds`)
    assert.ok(result.varbinds.every((vb) => vb.oid.startsWith('1.3.6.1.2.1.1.')))
    assert.equal(byOid.get('1.3.6.1.2.1.1.5.0')?.value, SYS_NAME)
    assert.equal(byOid.get('1.3.6.1.2.1.1.2.0')?.type, 'OID')
    assert.match(String(byOid.get('1.3.6.1.2.1.1.2.0')?.value), /^1\.3\.6\.1\.4\.1\.8072\./)
    assert.equal(byOid.get('1.3.6.1.2.1.1.3.0')?.type, 'TimeTicks')
    assert.equal(typeof byOid.get('1.3.6.1.2.1.1.3.0')?.value, 'number')
    assert.match(x.stdout(), /^1\.3\.6\.1\.2\.1\.1\.1\.0 = OctetString: Linux/m)
  })

  test('snmp.walk stops at max_rows and says so', async () => {
    const { x, result } = await ok('snmp.walk', { credential: 'snmp-v2c', oid: '1.3.6.1.2.1.1', max_rows: 3 })
    assert.equal(result.varbinds.length, 3)
    assert.equal(result.truncated, true)
    assert.match(x.stderr(), /walk stopped at max_rows 3/)
  })

  test('an OID the agent does not have fails the step, naming it, with the varbinds as result', async () => {
    const { outcome } = run('snmp.get', { credential: 'snmp-v2c', oids: ['1.3.6.1.2.1.1.5.0', '1.3.6.1.2.1.1.99.0'] })
    const result = await outcome
    assert.equal(result.status, 'failed')
    assert.equal(result.error, '1.3.6.1.2.1.1.99.0: NoSuchObject')
    assert.deepEqual((result.result as { varbinds: SnmpVarbind[] }).varbinds[1], { oid: '1.3.6.1.2.1.1.99.0', type: 'NoSuchObject', value: null })
  })

  test('a wrong community gets no answer: failed with a timeout message', async () => {
    const started = Date.now()
    const { outcome } = run('snmp.get', { credential: 'snmp-wrong-community', oids: ['1.3.6.1.2.1.1.5.0'], timeout_ms: 300, retries: 1 })
    const result = await outcome
    assert.equal(result.status, 'failed')
    assert.equal(result.error, `no response from 127.0.0.1:${port}: timed out after 2 attempts of 300 ms (agent down or unreachable, or wrong community or credentials)`)
    assert.ok(!result.error!.includes('not-the-community'))
    assert.ok(Date.now() - started < 3000)
  })

  test('SNMPv3 authPriv works with sha/aes and md5/aes', async () => {
    const sha = await ok('snmp.get', { credential: 'snmp-v3', oids: ['1.3.6.1.2.1.1.5.0'] })
    assert.equal(sha.result.varbinds[0]?.value, SYS_NAME)
    const md5 = await ok('snmp.walk', { credential: 'snmp-v3-md5', oid: '1.3.6.1.2.1.1' })
    assert.ok(md5.result.varbinds.some((vb) => vb.value === SYS_LOCATION))
  })

  test('SNMPv3 DES privacy works where OpenSSL offers DES, else fails saying what to do', async () => {
    const desAvailable = spawnSync(process.execPath, ['-e', "require('crypto').createCipheriv('des-cbc', Buffer.alloc(8), Buffer.alloc(8))"], { env: process.env }).status === 0
    const { outcome } = run('snmp.get', { credential: 'snmp-v3-des', oids: ['1.3.6.1.2.1.1.6.0'] })
    const result = await outcome
    if (desAvailable) {
      assert.equal(result.status, 'succeeded', result.error ?? '')
      assert.equal((result.result as { varbinds: SnmpVarbind[] }).varbinds[0]?.value, SYS_LOCATION)
    } else {
      assert.equal(result.status, 'failed')
      assert.match(result.error!, /^SNMPv3 DES privacy needs the OpenSSL legacy provider/)
    }
  })

  test('SNMPv3 with a wrong password fails with the agent report, never the password', async () => {
    const { x, outcome } = run('snmp.get', { credential: 'snmp-v3-bad', oids: ['1.3.6.1.2.1.1.5.0'], timeout_ms: 1000, retries: 0 })
    const result = await outcome
    assert.equal(result.status, 'failed')
    assert.match(result.error!, new RegExp(`^SNMP agent at 127\\.0\\.0\\.1:${port} rejected the request: Wrong Digest`))
    assert.ok(!(result.error! + x.stdout() + x.stderr()).includes('wrong-auth-pass'))
  })

  test('a cancel ends a pending request at once', async () => {
    const silent = await freeUdpPort()
    const { x, outcome } = run('snmp.get', { credential: 'snmp-v2c', oids: ['1.3.6.1.2.1.1.5.0'], port: silent, timeout_ms: 10_000 })
    setTimeout(() => x.abort('cancelled'), 100)
    const started = Date.now()
    assert.deepEqual(await outcome, { status: 'cancelled' })
    assert.ok(Date.now() - started < 2000)
  })

  test('no target, or a credential of another type, fails the step', async () => {
    const none = await run('snmp.get', { credential: 'snmp-v2c', oids: ['1.3.6.1.2.1.1.5.0'] }, { target: null }).outcome
    assert.deepEqual(none, { status: 'failed', error: 'snmp.get needs a target' })
    const wrong = await run('snmp.get', { credential: 'ssh-login', oids: ['1.3.6.1.2.1.1.5.0'] }).outcome
    assert.deepEqual(wrong, { status: 'failed', error: 'credential "ssh-login" is a ssh_password credential, expected snmp' })
  })
})

describe('snmp executor input', () => {
  test('numeric OIDs only; oids for get, oid for walk; strict', () => {
    assert.equal(SnmpInput.safeParse({ credential: 'c', oids: ['sysName.0'] }).success, false)
    assert.equal(SnmpInput.safeParse({ credential: 'c', oids: [] }).success, false)
    assert.equal(SnmpInput.safeParse({ credential: 'c' }).success, false)
    assert.equal(SnmpInput.safeParse({ credential: 'c', oid: '1.3.6', oids: ['1.3.6'] }).success, false)
    assert.equal(SnmpInput.safeParse({ credential: 'c', oid: '1.3.6', community: 'x' }).success, false)
    assert.deepEqual(SnmpInput.parse({ credential: 'c', oid: '.1.3.6.1.2.1.1' }), { credential: 'c', oid: '1.3.6.1.2.1.1', port: 161, retries: 1, timeout_ms: 5000, max_rows: 10_000 })
    assert.equal(snmpExecutor.needsTarget, true)
    assert.deepEqual(snmpExecutor.types, ['snmp.get', 'snmp.walk'])
  })
})
