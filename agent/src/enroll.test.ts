import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createServer, type Server } from 'node:tls'
import { after, before, test } from 'node:test'
import { ensureTls, type TlsMaterial } from '../../controller/src/tls/pki.ts'
import { enroll, parseControllerList } from './enroll.ts'

const AGENT_BIN = path.resolve(import.meta.dirname, '../bin/opsconductor-agent.js')

// Two "controllers" with different CAs: what a multi-controller deployment must not look like.
let tls: TlsMaterial
let other: TlsMaterial
const servers: Server[] = []
let good: string
let wrongCa: string
let closed: string

async function serve(material: TlsMaterial): Promise<string> {
  const server = createServer({ key: material.keyPem, cert: `${material.certPem.trimEnd()}\n${material.caCertPem.trimEnd()}\n` }, (s) => s.end())
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  servers.push(server)
  return `127.0.0.1:${(server.address() as { port: number }).port}`
}

before(async () => {
  tls = await ensureTls({ dataDir: mkdtempSync(path.join(tmpdir(), 'opsc-enroll-')) })
  other = await ensureTls({ dataDir: mkdtempSync(path.join(tmpdir(), 'opsc-enroll-other-')) })
  good = await serve(tls)
  wrongCa = await serve(other)
  const gone = await serve(tls)
  await new Promise<void>((r) => servers.pop()!.close(() => r()))
  closed = gone
})
after(() => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))))

const emptyStateDir = () => path.join(mkdtempSync(path.join(tmpdir(), 'opsc-enroll-state-')), 'state')
const written = (dir: string) => {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}

test('controller lists: repeated flags and comma lists, normalised, duplicates dropped, order kept', () => {
  assert.deepEqual(parseControllerList('a.example.test:8444'), ['a.example.test:8444'])
  assert.deepEqual(parseControllerList(['a:8444,b:8444', ' c:8444 ', 'a:8444']), ['a:8444', 'b:8444', 'c:8444'])
  assert.deepEqual(parseControllerList(['[::1]:8444', '::1:8444', '10.0.0.5:1']), ['[::1]:8444', '10.0.0.5:1'])
  assert.throws(() => parseControllerList(''), /--controller needs at least one HOST:PORT/)
  assert.throws(() => parseControllerList(['a:8444,,b:8444']), /--controller has an empty entry \(got "a:8444,,b:8444"\)/)
  assert.throws(() => parseControllerList(['a:8444', 'b']), /--controller must be HOST:PORT, or several separated by commas \(got "b"\)/)
  assert.throws(() => parseControllerList('a:8444,b:70000', 'OPSC_AGENT_CONTROLLERS'), /OPSC_AGENT_CONTROLLERS must be HOST:PORT.*\(got "b:70000"\)/)
})

test('a controller in the list with another CA fails the enrolment, naming it; nothing is written', async () => {
  const dir = emptyStateDir()
  await assert.rejects(enroll({ controller: [good, wrongCa], token: 't', caFingerprint: tls.fingerprint, stateDir: dir, timeoutMs: 5_000 }), (err: Error) => {
    assert.equal(err.name, 'EnrollError')
    assert.match(err.message, new RegExp(`^controller ${wrongCa}: the controller's CA does not match --ca-fingerprint`))
    assert.ok(err.message.includes(other.fingerprint), 'names the CA that controller presented')
    return true
  })
  assert.deepEqual(written(dir), [])
})

test('no controller of the list reachable: one error naming each; nothing is written', async () => {
  const dir = emptyStateDir()
  const unreachable: string[] = []
  await assert.rejects(
    enroll({ controller: `${closed},127.0.0.1:1`, token: 't', caFingerprint: tls.fingerprint, stateDir: dir, timeoutMs: 5_000, onUnreachable: (a) => unreachable.push(a) }),
    (err: Error) => {
      assert.equal(err.name, 'EnrollError')
      assert.match(err.message, new RegExp(`^no controller could be reached: cannot reach ${closed}: ECONNREFUSED; cannot reach 127.0.0.1:1: ECONNREFUSED$`))
      return true
    },
  )
  assert.deepEqual(unreachable, [closed, '127.0.0.1:1'])
  assert.deepEqual(written(dir), [])
})

test('an unreachable controller is reported and kept; the token goes to the first that presents the pinned CA', async () => {
  const dir = emptyStateDir()
  const unreachable: string[] = []
  // The TLS peer here is no gRPC server: reaching the Enroll call at all shows the dead one was skipped.
  await assert.rejects(
    enroll({ controller: [closed, good], token: 't', caFingerprint: tls.fingerprint, stateDir: dir, timeoutMs: 3_000, onUnreachable: (a) => unreachable.push(a) }),
    /^EnrollError: enrollment refused/,
  )
  assert.deepEqual(unreachable, [closed])
  assert.deepEqual(written(dir), [])
})

function cli(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const proc = spawn(process.execPath, [AGENT_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    proc.stderr.on('data', (d) => (stderr += d))
    proc.on('exit', (code) => resolve({ code, stderr }))
  })
}

test('CLI: a bad controller list is a configuration error (exit 2) with one clear line, for enroll and run', async () => {
  const fp = `sha256:${'ab'.repeat(32)}`
  const enrolled = await cli(['enroll', '--controller', 'a.example.test:8444', '--controller', 'b.example.test', '--token', 't', '--ca-fingerprint', fp, '--state-dir', emptyStateDir()])
  assert.equal(enrolled.code, 2)
  assert.equal(enrolled.stderr, 'opsconductor-agent: --controller must be HOST:PORT, or several separated by commas (got "b.example.test")\n')
  const ran = await cli(['run', '--state-dir', emptyStateDir()], { OPSC_AGENT_CONTROLLERS: 'a.example.test:8444,,b.example.test:8444' })
  assert.equal(ran.code, 2)
  assert.equal(ran.stderr, 'opsconductor-agent: OPSC_AGENT_CONTROLLERS has an empty entry (got "a.example.test:8444,,b.example.test:8444")\n')
  const flag = await cli(['run', '--state-dir', emptyStateDir(), '--controller', 'x:0'])
  assert.equal(flag.code, 2)
  assert.match(flag.stderr, /^opsconductor-agent: --controller must be HOST:PORT, or several separated by commas \(got "x:0"\)\n$/)
})
