import assert from 'node:assert/strict'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { eq } from 'drizzle-orm'
import { sshdUnavailable } from '../../../../test/harness/sshd.ts'
import { decideStoredHostKey, listHostKeys } from '../../targets/host-keys.ts'
import { getTargetRow } from '../../targets/service.ts'
import { target as targetTable, type TargetRow } from '../../targets/targets.sql.ts'
import { ExecInput } from '../exec-input.ts'
import { resolveCredential } from '../testing.ts'
import { runSshExec, sshPoolStats } from './index.ts'
import { poolOptions, SshPool, sshPool } from './pool.ts'
import { sshFixture, type SshFixture } from './test-fixture.ts'

const skip = sshdUnavailable()
const input = (command: string) => ExecInput.parse({ command })

/**
 * A TCP front for sshd that drops its first `drops` connections before a byte is exchanged, as
 * sshd does past MaxStartups, then forwards the rest to the real server.
 */
async function droppingProxy(sshdPort: number, drops: number): Promise<{ port: number; dropped(): number; close(): Promise<void> }> {
  let dropped = 0
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    sockets.add(client)
    client.on('close', () => sockets.delete(client))
    client.on('error', () => {})
    if (dropped < drops) {
      dropped++
      client.destroy()
      return
    }
    const upstream = createConnection({ host: '127.0.0.1', port: sshdPort })
    sockets.add(upstream)
    upstream.on('close', () => sockets.delete(upstream))
    upstream.on('error', () => client.destroy())
    client.on('close', () => upstream.destroy())
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    port: (server.address() as { port: number }).port,
    dropped: () => dropped,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise((r) => server.close(r))
    },
  }
}

describe('the SSH connection pool against a real sshd', { skip }, () => {
  let f: SshFixture
  before(async () => {
    f = await sshFixture({ env: { OPSC_SSH_MAX_HANDSHAKES: '2' } })
  })
  after(async () => {
    await f?.close()
  })

  test('N concurrent steps on one target share at most ceil(N/8) connections, and later steps reuse them', async () => {
    const target = await f.target({ credential: 'ed25519' })
    const before = f.sshd.accepted()
    const n = 20
    const xs = Array.from({ length: n }, () => f.exec(target))
    const outs = await Promise.all(xs.map((x) => runSshExec(target, input('sleep 0.3; echo ok'), x)))
    assert.deepEqual(
      outs.map((o) => o.status),
      Array(n).fill('succeeded'),
      xs.map((x) => x.stderr()).join(''),
    )
    const opened = f.sshd.accepted() - before
    assert.ok(opened >= 1 && opened <= Math.ceil(n / 8), `${opened} connections for ${n} steps`)
    for (let i = 0; i < 3; i++) assert.equal((await runSshExec(target, input('true'), f.exec(target))).status, 'succeeded')
    assert.equal(f.sshd.accepted() - before, opened, 'sequential steps reuse a pooled connection')
  })

  test('never more handshakes at once than OPSC_SSH_MAX_HANDSHAKES (2 here) over 10 targets', async () => {
    const pool = sshPoolStats(f.tc.ctx)
    const startedBefore = pool.handshakes.started
    const targets = await Promise.all(Array.from({ length: 10 }, () => f.target({ credential: 'password' })))
    const outs = await Promise.all(targets.map((t) => runSshExec(t, input('true'), f.exec(t))))
    assert.deepEqual(
      outs.map((o) => o.status),
      Array(10).fill('succeeded'),
    )
    const stats = sshPoolStats(f.tc.ctx)
    assert.ok(stats.handshakes.started - startedBefore >= 10)
    assert.ok(stats.handshakes.peak <= 2, `peak ${stats.handshakes.peak}`)
    assert.equal(stats.handshakes.peak, 2, 'the limit was reached, so it was what held them back')
  })

  test('a handshake dropped before the banner (MaxStartups) is retried with jitter and succeeds', async () => {
    const proxy = await droppingProxy(f.sshd.port, 2)
    try {
      const target = await f.target({ port: proxy.port })
      const retriesBefore = sshPoolStats(f.tc.ctx).handshakes.retries
      const x = f.exec(target)
      assert.deepEqual(await runSshExec(target, input('echo through'), x), { status: 'succeeded', exitCode: 0 }, x.stderr())
      assert.equal(x.stdout(), 'through\n')
      assert.equal(proxy.dropped(), 2)
      assert.equal(sshPoolStats(f.tc.ctx).handshakes.retries - retriesBefore, 2)
    } finally {
      await proxy.close()
    }
  })

  test('a server that keeps dropping fails after the retries, as a lost connection', async () => {
    const proxy = await droppingProxy(f.sshd.port, 1000)
    try {
      const target = await f.target({ port: proxy.port })
      const out = await runSshExec(target, input('true'), f.exec(target))
      assert.equal(out.status, 'failed')
      assert.match(out.error!, /Connection lost before handshake|reset|closed the connection/)
      assert.equal(proxy.dropped(), 1 + f.tc.ctx.config.OPSC_SSH_HANDSHAKE_RETRIES)
    } finally {
      await proxy.close()
    }
  })

  test('an authentication failure is not retried', async () => {
    const before = sshPoolStats(f.tc.ctx).handshakes.started
    const { createCredential } = await import('../../credentials/service.ts')
    const cred = await createCredential(f.tc.ctx, undefined, { type: 'ssh_password', name: 'pool-wrong', username: f.sshd.user, password: 'wrong' })
    const target = await f.target({ credential: cred })
    assert.equal((await runSshExec(target, input('true'), f.exec(target))).status, 'failed')
    assert.equal(sshPoolStats(f.tc.ctx).handshakes.started - before, 1)
  })

  test('a changed credential or address never reuses the old connection', async () => {
    const target = await f.target({ credential: 'password' })
    assert.equal((await runSshExec(target, input('true'), f.exec(target))).status, 'succeeded')
    const before = f.sshd.accepted()
    assert.equal((await runSshExec(target, input('true'), f.exec(target))).status, 'succeeded')
    assert.equal(f.sshd.accepted(), before, 'same target: reused')
    if (target.connection.type !== 'ssh') throw new Error('ssh target')
    await f.tc.ctx.db
      .update(targetTable)
      .set({ connection: { ...target.connection, credential_id: f.creds.ed25519 } })
      .where(eq(targetTable.id, target.id))
    const changed = await getTargetRow(f.tc.ctx.db, target.id)
    const x = f.exec(changed)
    assert.equal((await runSshExec(changed, input('true'), x)).status, 'succeeded')
    assert.equal(f.sshd.accepted(), before + 1, 'new credential: new connection')
    assert.match(f.sshd.log().split('\n').filter((l) => l.startsWith('Accepted')).at(-1)!, /^Accepted publickey/)
  })

  test('a host key revoked while its connection is pooled stops the reuse', async () => {
    const target = await f.target({ policy: 'tofu' })
    assert.equal((await runSshExec(target, input('true'), f.exec(target))).status, 'succeeded')
    const [key] = await listHostKeys(f.tc.ctx, target.id)
    await decideStoredHostKey(f.tc.ctx, target.id, key!.id, 'revoked', 'test')
    const out = await runSshExec(target, input('true'), f.exec(target))
    assert.equal(out.status, 'failed')
    assert.match(out.error!, /was revoked/)
  })

  test('after the server drops every connection, the next step connects afresh', async () => {
    const target = await f.target()
    assert.equal((await runSshExec(target, input('true'), f.exec(target))).status, 'succeeded')
    await f.sshd.restart()
    const x = f.exec(target)
    assert.deepEqual(await runSshExec(target, input('echo again'), x), { status: 'succeeded', exitCode: 0 }, x.stderr())
    assert.equal(x.stdout(), 'again\n')
  })

  test('an idle connection is closed after the idle time', async () => {
    const target: TargetRow = await f.target()
    const pool = new SshPool(f.tc.ctx.db, { ...poolOptions(f.tc.ctx.config), idleMs: 100 })
    try {
      const deps = { ctx: f.tc.ctx, log: f.tc.ctx.log, credential: (ref: string) => resolveCredential(f.tc.ctx, ref) }
      const conn = await pool.lease(target, deps)
      assert.equal(pool.stats().connections, 1)
      conn.close()
      assert.equal(pool.stats().connections, 1, 'kept while the idle time runs')
      const deadline = Date.now() + 10_000
      while (pool.stats().connections > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
      assert.equal(pool.stats().connections, 0)
    } finally {
      pool.close()
    }
  })

  test('with idle time 0 a connection closes as soon as its step ends, and waiting steps still get one', async () => {
    const target: TargetRow = await f.target()
    const pool = new SshPool(f.tc.ctx.db, { ...poolOptions(f.tc.ctx.config), idleMs: 0 })
    try {
      const deps = { ctx: f.tc.ctx, log: f.tc.ctx.log, credential: (ref: string) => resolveCredential(f.tc.ctx, ref) }
      const conns = await Promise.all([pool.lease(target, deps), pool.lease(target, deps), pool.lease(target, deps)])
      assert.equal(pool.stats().connections, 1, 'three steps on one connection')
      for (const c of conns) c.close()
      assert.equal(pool.stats().connections, 0)
    } finally {
      pool.close()
    }
  })

  test('a reused connection that cannot open a channel any more is replaced once by a fresh one', async () => {
    const target = await f.target()
    assert.equal((await runSshExec(target, input('true'), f.exec(target))).status, 'succeeded')
    const deps = { ctx: f.tc.ctx, log: f.tc.ctx.log, credential: (ref: string) => resolveCredential(f.tc.ctx, ref) }
    const pooled = await sshPool(f.tc.ctx).lease(target, deps)
    assert.equal(pooled.reused, true)
    // What ssh2 says when the socket went away before the pool heard of it.
    ;(pooled.client as unknown as { exec: () => never }).exec = () => {
      throw new Error('Not connected')
    }
    pooled.close()
    const before = f.sshd.accepted()
    const x = f.exec(target)
    assert.deepEqual(await runSshExec(target, input('echo fresh'), x), { status: 'succeeded', exitCode: 0 }, x.stderr())
    assert.equal(x.stdout(), 'fresh\n')
    assert.equal(f.sshd.accepted(), before + 1)
  })
})
