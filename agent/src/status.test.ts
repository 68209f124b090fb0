import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { before, test } from 'node:test'
import { pino } from 'pino'
import { ensureTls, type TlsMaterial } from '../../controller/src/tls/pki.ts'
import { VERSION } from '../../proto/src/product-version.ts'
import { RefusalError } from './exit-codes.ts'
import { StateError, writeEnrollment } from './state.ts'
import { agentStatus, formatStatus } from './status.ts'
import { readStatusFile, StatusPublisher, writeStatusFile, type AgentStatusFile } from './status-file.ts'
import { planUnenroll, unenroll } from './unenroll.ts'

let tls: TlsMaterial
before(async () => {
  tls = await ensureTls({ dataDir: mkdtempSync(path.join(tmpdir(), 'opsc-status-tls-')) })
})

function enrolledDir(): { dir: string; agentId: string } {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'opsc-status-')), 'state')
  const agentId = randomUUID()
  writeEnrollment(dir, {
    identity: { agent_id: agentId, controllers: ['ops.example.test:8444'], installation_id: randomUUID(), enrolled_at: '2025-01-02T03:04:05.000Z', signing_keys: [{ key_id: 'k1', public_key: randomBytes(32).toString('base64') }] },
    caCertPem: tls.caCertPem!,
    identitySeed: new Uint8Array(randomBytes(32)),
    boxSecretKey: new Uint8Array(randomBytes(32)),
  })
  return { dir, agentId }
}

const published = (over: Partial<AgentStatusFile> = {}): AgentStatusFile => ({
  pid: process.pid, state: 'connected', connected: true, controller: 'ops.example.test:8444', since: new Date().toISOString(), last_error: null,
  version: '0.0.9', protocol: '1.0', started_at: new Date().toISOString(), updated_at: new Date().toISOString(), spool: { bytes: 10, segments: 1, entries: 2 }, ...over,
})

/** A pid that belonged to a process which has exited. */
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!

test('not enrolled: exit 2 and a hint; damaged identity: exit 2 with the reason', () => {
  const empty = agentStatus(path.join(tmpdir(), `opsc-none-${randomUUID()}`))
  assert.deepEqual([empty.status, empty.exit_code, empty.enrolled, empty.version], ['not_enrolled', 2, false, VERSION])
  assert.match(formatStatus(empty), /^status {5}not enrolled: run `opsconductor-agent enroll` first\n/)
  const { dir } = enrolledDir()
  writeFileSync(path.join(dir, 'agent.json'), '{ torn')
  const damaged = agentStatus(dir)
  assert.deepEqual([damaged.status, damaged.exit_code], ['state_error', 2])
  assert.match(damaged.error!, /agent\.json is damaged/)
})

test('enrolled: identity, CA fingerprint and spool from disk; running, stale, gone and refused from status.json', () => {
  const { dir, agentId } = enrolledDir()
  const idle = agentStatus(dir)
  assert.deepEqual(
    [idle.status, idle.exit_code, idle.agent_id, idle.ca_fingerprint, idle.enrolled_at, idle.controllers, idle.running, idle.spool],
    ['not_running', 4, agentId, tls.fingerprint, '2025-01-02T03:04:05.000Z', ['ops.example.test:8444'], false, { bytes: 0, segments: 0, entries: 0 }],
  )

  writeStatusFile(dir, published())
  const live = agentStatus(dir)
  assert.deepEqual([live.status, live.exit_code, live.running, live.connected, live.pid, live.running_version], ['connected', 0, true, true, process.pid, '0.0.9'])
  assert.deepEqual(live.spool, { bytes: 10, segments: 1, entries: 2 }, "a running agent's own count")
  const text = formatStatus(live)
  assert.match(text, /^status +connected to ops\.example\.test:8444 since /)
  assert.match(text, new RegExp(`\\nagent id +${agentId}\\n`))
  assert.match(text, /\nversion +\S+ \(protocol 1\.0\); the agent that ran: 0\.0\.9\n/)
  assert.match(text, /\nspool +10 bytes in 1 segment, 2 entries not yet acknowledged\n/)
  const widths = new Set(text.trim().split('\n').map((l) => /^\S+(?: \S+)* {2,}/.exec(l)![0].length))
  assert.equal(widths.size, 1, 'values line up')

  writeStatusFile(dir, published({ state: 'connecting', connected: false, last_error: 'UNAVAILABLE: No connection established' }))
  assert.deepEqual([agentStatus(dir).status, agentStatus(dir).exit_code, agentStatus(dir).last_error], ['disconnected', 5, 'UNAVAILABLE: No connection established'])
  writeStatusFile(dir, published({ updated_at: new Date(Date.now() - 60_000).toISOString() }))
  assert.deepEqual([agentStatus(dir).status, agentStatus(dir).stale], ['disconnected', true], 'alive but silent is not connected')
  writeStatusFile(dir, published({ pid: deadPid() }))
  assert.deepEqual([agentStatus(dir).status, agentStatus(dir).exit_code], ['not_running', 4], 'killed without a last word')
  writeStatusFile(dir, published({ state: 'stopped', connected: false }))
  assert.deepEqual([agentStatus(dir).status, agentStatus(dir).exit_code], ['not_running', 4], 'stopped, even if the pid is still there')
  writeStatusFile(dir, published({ pid: deadPid(), state: 'refused', connected: false, last_error: 'this agent has been revoked' }))
  const refused = agentStatus(dir)
  assert.deepEqual([refused.status, refused.exit_code, refused.last_error], ['refused', 3, 'this agent has been revoked'])
})

test('the publisher writes status.json atomically on every change and marks its last word', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'opsc-publish-'))
  let entries = 0
  let clock = Date.parse('2025-01-01T00:00:00Z')
  const publisher = new StatusPublisher(dir, () => ({ bytes: 5, segments: 1, entries }), pino({ level: 'silent' }), () => new Date(clock))
  publisher.start()
  assert.deepEqual([readStatusFile(dir)!.state, readStatusFile(dir)!.pid, readStatusFile(dir)!.version], ['connecting', process.pid, VERSION])
  clock += 1000
  entries = 3
  publisher.update({ state: 'connected', controller: 'c:1', last_error: null })
  const up = readStatusFile(dir)!
  assert.deepEqual([up.connected, up.since, up.spool.entries], [true, '2025-01-01T00:00:01.000Z', 3])
  clock += 1000
  publisher.update({ controller: 'c:1' })
  assert.equal(readStatusFile(dir)!.since, up.since, 'since moves only when connected changes')
  publisher.stop('refused', 'this agent has been revoked')
  assert.deepEqual([readStatusFile(dir)!.state, readStatusFile(dir)!.connected, readStatusFile(dir)!.last_error], ['refused', false, 'this agent has been revoked'])
  assert.deepEqual(readdirSync(dir), ['status.json'], 'no temp file left')
  writeFileSync(path.join(dir, 'status.json'), 'garbage')
  assert.equal(readStatusFile(dir), undefined)
})

test('unenroll refuses while the agent runs, then removes identity, journal, spool and status but keeps the dir', () => {
  const { dir, agentId } = enrolledDir()
  mkdirSync(path.join(dir, 'journal'))
  writeFileSync(path.join(dir, 'journal', 'journal.log'), '')
  mkdirSync(path.join(dir, 'spool'))
  writeFileSync(path.join(dir, 'keep-me.txt'), 'operator file')
  writeStatusFile(dir, published())
  assert.throws(() => planUnenroll(dir), (err: unknown) => err instanceof RefusalError && /the agent is running \(pid \d+\)/.test(err.message))
  writeStatusFile(dir, published({ updated_at: new Date(Date.now() - 60_000).toISOString() }))
  assert.throws(() => planUnenroll(dir), /is alive but has not updated it since .*delete that file if the process is not the agent/)

  writeStatusFile(dir, published({ state: 'stopped', connected: false }))
  assert.deepEqual(planUnenroll(dir), { agentId, spool: { bytes: 0, segments: 0, entries: 0 } })
  assert.deepEqual(unenroll(dir).sort(), ['agent.json', 'box.key', 'ca.crt', 'identity.key', 'journal', 'spool', 'status.json'])
  assert.deepEqual(readdirSync(dir), ['keep-me.txt'])
  assert.equal(readFileSync(path.join(dir, 'keep-me.txt'), 'utf8'), 'operator file')
  assert.throws(() => planUnenroll(dir), (err: unknown) => err instanceof StateError && /holds no enrolled agent; nothing to unenroll/.test(err.message))
  assert.equal(existsSync(dir), true)
})
