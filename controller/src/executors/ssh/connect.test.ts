import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { eq } from 'drizzle-orm'
import { generateSshKey } from '../../../../test/harness/keys.ts'
import { sshdUnavailable } from '../../../../test/harness/sshd.ts'
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

  async function runs(credential: 'password' | 'ed25519' | 'rsa') {
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

  // Last: it replaces the server's host keys for the rest of this file.
  test('after the server’s host key changes, a tofu target refuses it and queues the new key', async () => {
    const target = await runs('password')
    const before = f.sshd.hostKeys.ed25519.fingerprint
    await f.sshd.restart({ newHostKeys: true })
    const after = f.sshd.hostKeys.ed25519.fingerprint
    assert.notEqual(before, after)
    const out = await runSshExec(target, whoami, f.exec(target))
    assert.equal(out.status, 'failed')
    assert.match(out.error!, /has changed: it presented .* which is not its trusted key; if the host was rebuilt, approve the new key/)
    assert.ok(out.error!.includes(after))
    const rows = await f.tc.ctx.db.select().from(targetHostKey).where(eq(targetHostKey.targetId, target.id))
    assert.deepEqual(rows.map((r) => [r.fingerprint, r.status]).sort(), [[before, 'trusted'], [after, 'pending']].sort())
  })
})
