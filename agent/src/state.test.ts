import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, readdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { defaultStateDir, isEnrolled, readEnrollment, writeControllers, writeEnrollment, type EnrollmentState } from './state.ts'

const sample = (): EnrollmentState => ({
  identity: {
    agent_id: randomUUID(),
    controllers: ['ops.example.test:8444'],
    installation_id: randomUUID(),
    enrolled_at: new Date().toISOString(),
    signing_keys: [{ key_id: 'k1', public_key: randomBytes(32).toString('base64') }],
  },
  caCertPem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
  identitySeed: new Uint8Array(randomBytes(32)),
  boxSecretKey: new Uint8Array(randomBytes(32)),
})

test('platform defaults', () => {
  assert.equal(defaultStateDir('linux'), '/var/lib/opsconductor-agent')
  assert.equal(defaultStateDir('win32', { ProgramData: 'C:\\ProgramData' }), path.join('C:\\ProgramData', 'OpsConductor', 'Agent'))
})

test('writes keys readable only by the owner and reads the enrollment back', () => {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'opsc-agent-')), 'state')
  const state = sample()
  writeEnrollment(dir, state)
  for (const f of ['identity.key', 'box.key', 'agent.json']) assert.equal(statSync(path.join(dir, f)).mode & 0o777, 0o600, f)
  assert.equal(statSync(dir).mode & 0o777, 0o700)
  const back = readEnrollment(dir)
  assert.deepEqual(back.identity, state.identity)
  assert.deepEqual(Buffer.from(back.identitySeed), Buffer.from(state.identitySeed))
  assert.deepEqual(Buffer.from(back.boxSecretKey), Buffer.from(state.boxSecretKey))
  assert.throws(() => writeEnrollment(dir, sample()), /already holds an enrolled agent/)
  assert.deepEqual(readdirSync(dir).sort(), ['agent.json', 'box.key', 'ca.crt', 'identity.key'])
})

test('an invalid identity writes nothing that looks enrolled', () => {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'opsc-agent-')), 'state')
  const bad = sample()
  bad.identity.agent_id = 'not-a-uuid'
  assert.throws(() => writeEnrollment(dir, bad), /cannot write the agent state/)
  assert.equal(isEnrolled(dir), false)
  assert.deepEqual(readdirSync(dir), [])
  assert.throws(() => readEnrollment(dir), /holds no enrolled agent/)
})

test('the controller list can be replaced later; the rest of the identity stays', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'opsc-state-'))
  const state = sample()
  writeEnrollment(dir, state)
  writeControllers(dir, ['a.example.test:8444', 'b.example.test:8444'])
  const back = readEnrollment(dir)
  assert.deepEqual(back.identity, { ...state.identity, controllers: ['a.example.test:8444', 'b.example.test:8444'] })
  assert.equal(statSync(path.join(dir, 'agent.json')).mode & 0o777, 0o600)
  assert.throws(() => writeControllers(dir, []), /too_small|>=1|at least/i, 'an empty list is never stored')
  assert.deepEqual(readEnrollment(dir).identity.controllers, ['a.example.test:8444', 'b.example.test:8444'])
})
