import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { eq } from 'drizzle-orm'
import { generateSshKey } from '../../../../test/harness/keys.ts'
import { startSshd, sshdUnavailable } from '../../../../test/harness/sshd.ts'
import { createCredential } from '../../credentials/service.ts'
import { decideStoredHostKey, listHostKeys } from '../../targets/host-keys.ts'
import { targetHostKey } from '../../targets/targets.sql.ts'
import { ExecInput } from '../exec-input.ts'
import { resolveCredential } from '../testing.ts'
import { connectSsh, runSshExec, SshError } from './index.ts'
import { sshFixture, type SshFixture } from './test-fixture.ts'

const skip = sshdUnavailable()
const whoami = ExecInput.parse({ command: 'id -un' })

describe('SSH connections against a real sshd', { skip }, () => {
  let f: SshFixture
  before(async () => {
    f = await sshFixture()
  })
  after(async () => {
    await f?.close()
  })

  async function runs(credential: 'password' | 'ed25519' | 'rsa' | 'ecdsa') {
    const target = await f.target({ credential })
    const x = f.exec(target)
    const out = await runSshExec(target, whoami, x)
    assert.deepEqual(out, { status: 'succeeded', exitCode: 0 }, x.stderr())
    assert.equal(x.stdout(), `${f.sshd.user}\n`)
    return target
  }

  test('logs in with a password', async () => {
    await runs('password')
  })
  test('logs in with an Ed25519 key', async () => {
    await runs('ed25519')
  })
  test('logs in with an RSA key that has a passphrase', async () => {
    await runs('rsa')
  })

  test('logs in with an ECDSA key', async () => {
    await runs('ecdsa')
  })

  test('logs in with an encrypted Ed25519 key (opened off the main thread)', async () => {
    const key = generateSshKey('ed25519', { passphrase: 'correct horse battery' })
    f.sshd.authorize(key.publicKey)
    const cred = await createCredential(f.tc.ctx, undefined, { type: 'ssh_key', name: 'ed25519-passphrase', username: f.sshd.user, private_key: key.privateKey, passphrase: 'correct horse battery' })
    const target = await f.target({ credential: cred })
    const x = f.exec(target)
    assert.deepEqual(await runSshExec(target, whoami, x), { status: 'succeeded', exitCode: 0 }, x.stderr())
  })

  test('a key the server does not accept fails as an authentication failure', async () => {
    const key = generateSshKey('ed25519')
    const cred = await createCredential(f.tc.ctx, undefined, { type: 'ssh_key', name: 'unknown-key', username: f.sshd.user, private_key: key.privateKey })
    const target = await f.target({ credential: cred })
    const out = await runSshExec(target, whoami, f.exec(target))
    assert.equal(out.status, 'failed')
    assert.match(out.error!, /^authentication as .* failed on .*: the server refused the key$/)
  })

  test('a wrong password fails with a clear message', async () => {
    const cred = await createCredential(f.tc.ctx, undefined, { type: 'ssh_password', name: 'wrong-password', username: f.sshd.user, password: 'not-the-password' })
    const target = await f.target({ credential: cred })
    const out = await runSshExec(target, whoami, f.exec(target))
    assert.equal(out.status, 'failed')
    assert.equal(out.error, `authentication as ${f.sshd.user} failed on ${target.name} (127.0.0.1:${f.sshd.port}): the server refused the password`)
  })

  test('a target without a credential fails before connecting', async () => {
    const target = await f.target({ credential: null })
    const out = await runSshExec(target, whoami, f.exec(target))
    assert.equal(out.status, 'failed')
    assert.match(out.error!, /has no SSH credential/)
  })

  test('a closed port is reported as connection refused', async () => {
    const probe = createServer()
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
    const port = (probe.address() as { port: number }).port
    await new Promise((r) => probe.close(r))
    const target = await f.target({ port })
    const out = await runSshExec(target, whoami, f.exec(target))
    assert.equal(out.status, 'failed')
    assert.equal(out.error, `${target.name} (127.0.0.1:${port}): connection refused (is sshd listening on that port?)`)
  })

  test('a server that never completes the handshake times out', async () => {
    let server: Server | undefined
    try {
      server = createServer((sock) => sock.on('error', () => {}))
      await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r))
      const target = await f.target({ port: (server.address() as { port: number }).port })
      const x = f.exec(target)
      const started = Date.now()
      await assert.rejects(
        connectSsh(target, { ctx: f.tc.ctx, log: f.tc.ctx.log, credential: (ref) => resolveCredential(f.tc.ctx, ref) }, { readyTimeoutMs: 500 }),
        (err: unknown) => err instanceof SshError && err.kind === 'timeout' && /no SSH handshake with .* within 1 s/.test(err.message),
      )
      assert.ok(Date.now() - started < 5000)
      // Cancelled while connecting: the outcome is the cancel, not a connection error.
      const run = runSshExec(target, whoami, x)
      setTimeout(() => x.abort('cancelled'), 100)
      assert.equal((await run).status, 'cancelled')
    } finally {
      server?.close()
    }
  })

  test('tofu trusts the first host key and records it', async () => {
    const target = await runs('password')
    const keys = await listHostKeys(f.tc.ctx, target.id)
    assert.equal(keys.length, 1)
    assert.equal(keys[0]!.status, 'trusted')
    assert.equal(keys[0]!.fingerprint, f.sshd.hostKeys.ed25519.fingerprint)
    assert.equal(keys[0]!.key_type, 'ssh-ed25519')
  })

  test('strict refuses an unknown key, naming its fingerprint, and connects once it is approved', async () => {
    const target = await f.target({ policy: 'strict' })
    const out = await runSshExec(target, whoami, f.exec(target))
    const fp = f.sshd.hostKeys.ed25519.fingerprint
    assert.equal(out.status, 'failed')
    assert.equal(out.error, `host key of ${target.name} (127.0.0.1:${f.sshd.port}) is not trusted: ${fp} (ssh-ed25519) is unknown and host_key_policy is strict; approve it in the target's host keys`)
    const [pending] = await listHostKeys(f.tc.ctx, target.id)
    assert.equal(pending?.status, 'pending')
    assert.equal(pending?.fingerprint, fp)
    await decideStoredHostKey(f.tc.ctx, target.id, pending!.id, 'trusted', 'test')
    const x = f.exec(target)
    assert.equal((await runSshExec(target, whoami, x)).status, 'succeeded')
  })

  test('off connects without recording anything', async () => {
    const target = await f.target({ policy: 'off' })
    assert.equal((await runSshExec(target, whoami, f.exec(target))).status, 'succeeded')
    assert.equal((await listHostKeys(f.tc.ctx, target.id)).length, 0)
  })

  test('a key that differs from the trusted one is refused', async () => {
    const target = await f.target({ policy: 'tofu' })
    await f.tc.ctx.db.insert(targetHostKey).values({ targetId: target.id, keyType: 'ssh-ed25519', fingerprint: 'SHA256:someOtherKeyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', publicKey: 'AAAA', status: 'trusted', decidedAt: new Date(), decidedBy: 'test' })
    const out = await runSshExec(target, whoami, f.exec(target))
    assert.equal(out.status, 'failed')
    assert.match(out.error!, new RegExp(`host key of .* has changed: it presented ${f.sshd.hostKeys.ed25519.fingerprint.replace(/[+/]/g, '\\$&')} \\(ssh-ed25519\\)`))
  })

  test('connects through a jump host, checking each hop’s own host key', async () => {
    const jump = await f.target({ credential: 'password' })
    const target = await f.target({ credential: 'ed25519', jump: [{ target_id: jump.id, credential_id: null }] })
    const x = f.exec(target)
    const out = await runSshExec(target, whoami, x)
    assert.deepEqual(out, { status: 'succeeded', exitCode: 0 }, x.stderr())
    assert.equal(x.stdout(), `${f.sshd.user}\n`)
    for (const id of [jump.id, target.id]) assert.equal((await listHostKeys(f.tc.ctx, id))[0]?.status, 'trusted')
  })

  test('a jump host that cannot reach the target says so', async () => {
    const jump = await f.target({ credential: 'password' })
    const target = await f.target({ port: 1, jump: [{ target_id: jump.id, credential_id: f.creds.ed25519 }] })
    const out = await runSshExec(target, whoami, f.exec(target))
    assert.equal(out.status, 'failed')
    assert.match(out.error!, new RegExp(`^jump host ${jump.name} .* could not reach ${target.name} \\(127\\.0\\.0\\.1:1\\)`))
  })

  test('a jump host whose key is not trusted stops the connection there', async () => {
    const jump = await f.target({ credential: 'password', policy: 'strict' })
    const target = await f.target({ credential: 'ed25519', jump: [{ target_id: jump.id, credential_id: null }] })
    const out = await runSshExec(target, whoami, f.exec(target))
    assert.equal(out.status, 'failed')
    assert.match(out.error!, new RegExp(`^host key of ${jump.name} .* is not trusted`))
    assert.equal((await listHostKeys(f.tc.ctx, target.id)).length, 0, 'the final host was never contacted')
  })

  const deps = () => ({ ctx: f.tc.ctx, log: f.tc.ctx.log, credential: (ref: string) => resolveCredential(f.tc.ctx, ref) })
  async function failureOf(target: Awaited<ReturnType<SshFixture['target']>>, readyTimeoutMs?: number): Promise<SshError> {
    try {
      const conn = await connectSsh(target, deps(), { readyTimeoutMs })
      conn.close()
    } catch (err) {
      assert.ok(err instanceof SshError, String(err))
      return err
    }
    assert.fail('connected')
  }
  async function listen(onConnection: (sock: import('node:net').Socket) => void): Promise<{ port: number; close(): void }> {
    const server = createServer((sock) => {
      sock.on('error', () => {})
      onConnection(sock)
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    return { port: (server.address() as { port: number }).port, close: () => server.close() }
  }

  test('each way of failing has its own failure class for connection tests', async () => {
    const dns = await failureOf(await f.target({ address: 'no-such-host.invalid' }))
    assert.equal(dns.failure, 'dns', dns.message)
    const closed = await listen(() => {})
    closed.close()
    assert.equal((await failureOf(await f.target({ port: closed.port }))).failure, 'refused')
    const silent = await listen(() => {})
    try {
      assert.equal((await failureOf(await f.target({ port: silent.port }), 500)).failure, 'timeout')
    } finally {
      silent.close()
    }
    const http = await listen((sock) => sock.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'))
    try {
      const err = await failureOf(await f.target({ port: http.port }))
      assert.equal(err.failure, 'protocol', err.message)
      assert.match(err.message, /is not an SSH server/)
    } finally {
      http.close()
    }
    const wrong = await createCredential(f.tc.ctx, undefined, { type: 'ssh_password', name: 'wrong-password-2', username: f.sshd.user, password: 'nope' })
    const auth = await failureOf(await f.target({ credential: wrong }))
    assert.equal(auth.failure, 'auth_failed')
    assert.equal(auth.kind, 'auth')
    const unknown = await failureOf(await f.target({ policy: 'strict' }))
    assert.equal(unknown.failure, 'host_key_unknown')
    const changed = await f.target({ policy: 'tofu' })
    await f.tc.ctx.db.insert(targetHostKey).values({ targetId: changed.id, keyType: 'ssh-ed25519', fingerprint: 'SHA256:anotherKeyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', publicKey: 'AAAA', status: 'trusted', decidedAt: new Date(), decidedBy: 'test' })
    const mismatch = await failureOf(changed)
    assert.equal(mismatch.failure, 'host_key_mismatch')
    assert.equal(mismatch.kind, 'host_key')
  })

  test('connects through a jump host to a second sshd that only the chain reaches', async () => {
    const other = await startSshd()
    try {
      const cred = await createCredential(f.tc.ctx, undefined, { type: 'ssh_key', name: `other-${other.user}`, username: other.user, private_key: other.keys.ed25519.privateKey })
      const jump = await f.target({ credential: 'ed25519' })
      const target = await f.target({ credential: cred, port: other.port, jump: [{ target_id: jump.id, credential_id: null }] })
      const x = f.exec(target)
      assert.deepEqual(await runSshExec(target, whoami, x), { status: 'succeeded', exitCode: 0 }, x.stderr())
      assert.equal(x.stdout(), `${other.user}\n`)
      assert.equal(other.accepted(), 1)
      assert.equal((await listHostKeys(f.tc.ctx, target.id))[0]?.fingerprint, other.hostKeys.ed25519.fingerprint)
    } finally {
      await other.stop()
    }
  })

  // Last: it replaces the server's host keys for the rest of this file.
  test('after the server’s host key changes, a tofu target refuses it and queues the new key', async () => {
    const target = await runs('password')
    const before = f.sshd.hostKeys.ed25519.fingerprint
    await f.sshd.restart({ newHostKeys: true })
    const after = f.sshd.hostKeys.ed25519.fingerprint
    assert.notEqual(before, after)
    const marker = `${f.sshd.home}/ran-after-key-change`
    const out = await runSshExec(target, ExecInput.parse({ command: `touch ${marker}` }), f.exec(target))
    assert.equal(out.status, 'failed')
    assert.match(out.error!, /has changed: it presented .* which is not its trusted key; if the host was rebuilt, approve the new key/)
    assert.ok(out.error!.includes(after))
    assert.equal(existsSync(marker), false, 'nothing ran')
    const err = await failureOf(target)
    assert.equal(err.failure, 'host_key_mismatch')
    const rows = await f.tc.ctx.db.select().from(targetHostKey).where(eq(targetHostKey.targetId, target.id))
    assert.deepEqual(rows.map((r) => [r.fingerprint, r.status]).sort(), [[before, 'trusted'], [after, 'pending']].sort())
  })
})

describe('keyboard-interactive logins (sshd with PasswordAuthentication no)', { skip }, () => {
  let f: SshFixture
  before(async () => {
    // OpenSSH on Linux answers keyboard-interactive only through PAM, so this sshd runs with UsePAM yes.
    f = await sshFixture({ kbdInteractiveOnly: true })
  })
  after(async () => {
    await f?.close()
  })

  test('a password credential logs in by answering the keyboard-interactive prompt', async () => {
    const target = await f.target({ credential: 'password' })
    const x = f.exec(target)
    assert.deepEqual(await runSshExec(target, whoami, x), { status: 'succeeded', exitCode: 0 }, x.stderr())
    assert.equal(x.stdout(), `${f.sshd.user}\n`)
    assert.match(f.sshd.log(), /Accepted keyboard-interactive\/pam for /)
    assert.doesNotMatch(f.sshd.log(), /Accepted password for /)
  })

  test('a wrong password is refused as an authentication failure', async () => {
    const cred = await createCredential(f.tc.ctx, undefined, { type: 'ssh_password', name: 'kbd-wrong', username: f.sshd.user, password: 'not-it' })
    const target = await f.target({ credential: cred })
    const out = await runSshExec(target, whoami, f.exec(target))
    assert.equal(out.status, 'failed')
    assert.match(out.error!, /^authentication as .* failed on .*: the server refused the password$/)
  })
})
