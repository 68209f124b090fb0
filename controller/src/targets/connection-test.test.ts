import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { call, createTestUser, type TestUser } from '../../../test/harness/auth.ts'
import { startWinrmPeer, winrmPeerUnavailable, type WinrmPeer } from '../../../test/harness/winrm-peer.ts'
import { sshdUnavailable } from '../../../test/harness/sshd.ts'
import { createApp } from '../app.ts'
import { createCredential } from '../credentials/service.ts'
import { sshFixture, type SshFixture } from '../executors/ssh/test-fixture.ts'
import { createTarget } from './service.ts'

/*
 * Connection tests against real peers: a real sshd (and a second one whose host keys change), the
 * WinRM test peer, and tiny TCP servers that misbehave the ways real networks do.
 */

const sshSkip = sshdUnavailable()

let f: SshFixture
let app: ReturnType<typeof createApp>
let op: TestUser
let viewer: TestUser
const servers: Server[] = []
const sockets = new Set<Socket>()

/** A loopback TCP server that greets every connection with `greeting` (nothing: a silent server) and holds it open. */
function tcpServer(greeting?: string): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer((sock) => {
      sockets.add(sock)
      sock.on('error', () => {})
      sock.on('close', () => sockets.delete(sock))
      if (greeting !== undefined) sock.end(greeting)
    })
    servers.push(srv)
    srv.listen(0, '127.0.0.1', () => resolve((srv.address() as { port: number }).port))
  })
}

async function closedPort(): Promise<number> {
  const port = await tcpServer()
  await new Promise<void>((resolve) => servers.pop()!.close(() => resolve()))
  return port
}

const testSsh = (id: string, body?: unknown, token = op.token) => call(app, 'POST', `/api/v1/targets/${id}/test-ssh`, { token, ...(body ? { body } : {}) })

before(async () => {
  if (sshSkip) return
  f = await sshFixture()
  app = createApp(f.tc.ctx, { uiDir: '/nonexistent' })
  op = await createTestUser(f.tc.ctx, 'operator')
  viewer = await createTestUser(f.tc.ctx, 'viewer')
})
after(async () => {
  for (const s of sockets) s.destroy()
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  await f?.close()
})

describe('POST /targets/:id/test-ssh', { skip: sshSkip }, () => {
  test('connects, collects facts into the target and reports the latency', async () => {
    const target = await f.target({ credential: 'ed25519' })
    const res = await testSsh(target.id)
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.equal(res.body.ok, true)
    assert.equal(res.body.transport, 'ssh')
    assert.ok(res.body.latency_ms >= 0)
    const facts = res.body.facts
    assert.equal(facts.kernel.startsWith('Linux') || /^\d/.test(facts.kernel), true, facts.kernel)
    assert.ok(facts.os_name.length > 0)
    assert.ok(facts.cpu_count >= 1)
    assert.ok(facts.memory_bytes > 1024 * 1024)
    assert.ok(facts.uptime_sec > 0)
    assert.ok(Array.isArray(facts.disks) && facts.disks.some((d: { mount: string }) => d.mount === '/'))
    const stored = await call(app, 'GET', `/api/v1/targets/${target.id}`, { token: viewer.token })
    assert.deepEqual(stored.body.facts, facts)
    assert.ok(stored.body.facts_updated_at)
  })

  test('a wrong password is auth_failed, and the password is not in the answer', async () => {
    const password = `wrong-${randomBytes(6).toString('hex')}`
    const cred = await createCredential(f.tc.ctx, undefined, { type: 'ssh_password', name: `bad-${randomBytes(3).toString('hex')}`, username: f.sshd.user, password })
    const target = await f.target({ credential: { id: cred.id } })
    const res = await testSsh(target.id)
    assert.equal(res.status, 200)
    assert.equal(res.body.ok, false)
    assert.equal(res.body.failure, 'auth_failed', res.body.message)
    assert.doesNotMatch(JSON.stringify(res.body), new RegExp(password))
  })

  test('a closed port is refused, a silent one a timeout, a non-SSH server a protocol failure', async () => {
    const refused = await f.target({ port: await closedPort() })
    assert.equal((await testSsh(refused.id)).body.failure, 'refused')
    const silent = await f.target({ port: await tcpServer() })
    const timedOut = await testSsh(silent.id, { timeout_sec: 2 })
    assert.equal(timedOut.body.failure, 'timeout', timedOut.body.message)
    const http = await f.target({ port: await tcpServer('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n') })
    const protocol = await testSsh(http.id)
    assert.equal(protocol.body.failure, 'protocol', protocol.body.message)
  })

  test('a name that does not resolve is a dns failure', async () => {
    const dto = await createTarget(f.tc.ctx, {
      name: `dns-${randomBytes(3).toString('hex')}`,
      address: 'no-such-host.invalid',
      os_type: 'linux',
      enabled: true,
      tags: {},
      connection: { type: 'ssh', port: 22, credential_id: f.creds.password, host_key_policy: 'tofu', jump: [] },
    })
    const res = await testSsh(dto.id)
    assert.equal(res.body.failure, 'dns', res.body.message)
  })

  test('strict policy with an unknown key: host_key_unknown, and the key waits for approval', async () => {
    const target = await f.target({ policy: 'strict' })
    const res = await testSsh(target.id)
    assert.equal(res.body.failure, 'host_key_unknown', res.body.message)
    assert.equal(res.body.pending_host_keys.length, 1)
    const pending = res.body.pending_host_keys[0]
    assert.ok([f.sshd.hostKeys.ed25519.fingerprint, f.sshd.hostKeys.rsa.fingerprint].includes(pending.fingerprint))
    const approved = await call(app, 'POST', `/api/v1/targets/${target.id}/host-keys/${pending.id}/approve`, { token: op.token })
    assert.equal(approved.status, 200)
    assert.equal((await testSsh(target.id)).body.ok, true)
  })

  test('bad requests: viewer 403, unknown target 404, wrong transport and bad body 400', async () => {
    const target = await f.target()
    assert.equal((await testSsh(target.id, undefined, viewer.token)).status, 403)
    assert.equal((await testSsh('00000000-0000-4000-8000-000000000000')).status, 404)
    const bad = await testSsh(target.id, { timeout_sec: 'soon' })
    assert.equal(bad.status, 400)
    assert.equal(bad.body.error.details[0].path, 'timeout_sec')
    const winrm = await call(app, 'POST', `/api/v1/targets/${target.id}/test-winrm`, { token: op.token })
    assert.equal(winrm.status, 400)
    assert.match(winrm.body.error.message, /reached over ssh, not WinRM/)
  })

  // Last: it gives the shared sshd new host keys.
  test('tofu: a changed host key is host_key_mismatch', async () => {
    const target = await f.target({ policy: 'tofu' })
    assert.equal((await testSsh(target.id)).body.ok, true)
    await f.sshd.restart({ newHostKeys: true })
    const res = await testSsh(target.id)
    assert.equal(res.body.ok, false)
    assert.equal(res.body.failure, 'host_key_mismatch', res.body.message)
    assert.equal(res.body.pending_host_keys.length, 1)
  })
})

const winrmSkip = sshSkip ?? winrmPeerUnavailable()

describe('POST /targets/:id/test-winrm', { skip: winrmSkip }, () => {
  let http: WinrmPeer
  let https: WinrmPeer
  before(async () => {
    http = await startWinrmPeer({ https: false })
    https = await startWinrmPeer({ https: true })
  })
  after(async () => {
    await http?.stop()
    await https?.stop()
  })

  async function winrmTarget(peer: WinrmPeer, opts: { password?: string; auth?: 'basic' | 'ntlm'; tlsCa?: string } = {}): Promise<string> {
    const cred = await createCredential(f.tc.ctx, undefined, {
      type: 'winrm',
      name: `win-${randomBytes(3).toString('hex')}`,
      username: peer.username,
      password: opts.password ?? peer.password,
      domain: peer.domain,
      auth: opts.auth ?? 'ntlm',
      transport: peer.https ? 'https' : 'http',
    })
    const dto = await createTarget(f.tc.ctx, {
      name: `win-${randomBytes(4).toString('hex')}`,
      address: peer.host,
      os_type: 'windows',
      enabled: true,
      tags: {},
      connection: { type: 'winrm', https: peer.https, port: peer.port, credential_id: cred.id, verify_tls: true, ...(opts.tlsCa ? { tls_ca: opts.tlsCa } : {}) },
    })
    return dto.id
  }
  const testWinrm = (id: string) => call(app, 'POST', `/api/v1/targets/${id}/test-winrm`, { token: op.token })

  test('NTLM over HTTP with message encryption: ok, facts stored', async () => {
    const id = await winrmTarget(http)
    const res = await testWinrm(id)
    assert.equal(res.body.ok, true, JSON.stringify(res.body))
    assert.equal(res.body.transport, 'winrm')
    assert.ok(res.body.facts.os_name)
    assert.ok(res.body.facts.cpu_count >= 1)
    assert.deepEqual((await call(app, 'GET', `/api/v1/targets/${id}`, { token: op.token })).body.facts, res.body.facts)
  })

  test('Basic over HTTPS with the host CA: ok; without it: tls', async () => {
    assert.equal((await testWinrm(await winrmTarget(https, { auth: 'basic', tlsCa: https.caPem }))).body.ok, true)
    const untrusted = await testWinrm(await winrmTarget(https, { auth: 'basic' }))
    assert.equal(untrusted.body.failure, 'tls', untrusted.body.message)
  })

  test('a wrong password is auth_failed', async () => {
    const res = await testWinrm(await winrmTarget(http, { password: `nope-${randomBytes(4).toString('hex')}` }))
    assert.equal(res.body.failure, 'auth_failed', res.body.message)
  })

  test('a closed port is refused', async () => {
    const peer = { ...http, port: await closedPort() }
    const res = await testWinrm(await winrmTarget(peer))
    assert.equal(res.body.failure, 'refused', res.body.message)
  })
})
