import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { createTestContext, type TestContext } from '../../../../test/harness/context.ts'
import { RunsApi } from '../../../../test/harness/runs.ts'
import { startWinrmPeer, winrmPeerUnavailable, type WinrmPeer } from '../../../../test/harness/winrm-peer.ts'
import { createCredential } from '../../credentials/service.ts'
import { RunEngine } from '../../runs/engine.ts'
import { createTarget, getTargetRow } from '../../targets/service.ts'
import type { TargetRow } from '../../targets/targets.sql.ts'
import { CopyInput, ExecInput } from '../exec-input.ts'
import { executionContext, type TestExecution } from '../testing.ts'
import type { ExecutionContext } from '../types.ts'
import { cleanUpRemote } from '../remote-cleanup.ts'
import { closeWinrmPools, probeWinrm, runWinrmCopy, runWinrmExec, WinrmError, winrmExec } from './index.ts'
import { transportOptionsFor } from './connect.ts'
import { hostPool, POOL_MAX_SHELLS } from './pool.ts'
import { call, endpointUrl } from './shell.ts'
import { WinrmTransport } from './transport.ts'
import { deleteShellRequest } from './wsman.ts'

/*
 * The WinRM executors against the WinRM test peer: real NTLM (gss-ntlmssp) with message encryption
 * on HTTP, Basic and NTLM (with channel binding) on HTTPS. The peer runs commands with /bin/sh here,
 * and its `powershell` stand-in runs scripts with bash (or a twin), so the "PowerShell" below is bash.
 */

const skip = winrmPeerUnavailable()

const creates = (peer: WinrmPeer) => (peer.log().match(/action=Create /g) ?? []).length
const pgrep = (pattern: string) => {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim()
  } catch {
    return ''
  }
}
async function until(check: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (check()) return true
  return check()
}

describe('WinRM executors', { skip }, () => {
  let tc: TestContext
  let http: WinrmPeer
  let https: WinrmPeer
  let dir: string

  before(async () => {
    tc = await createTestContext()
    ;[http, https] = await Promise.all([startWinrmPeer({ https: false }), startWinrmPeer({ https: true })])
    dir = mkdtempSync(path.join(tmpdir(), 'opsc-winrm-test-'))
  })
  after(async () => {
    await closeWinrmPools()
    await http?.stop()
    await https?.stop()
    await tc?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  async function target(peer: WinrmPeer, o: { auth?: 'basic' | 'ntlm'; password?: string; ca?: string | null } = {}): Promise<TargetRow> {
    const tag = randomBytes(4).toString('hex')
    const cred = await createCredential(tc.ctx, undefined, {
      type: 'winrm',
      name: `winrm-${tag}`,
      username: peer.username,
      password: o.password ?? peer.password,
      domain: peer.domain,
      auth: o.auth ?? 'ntlm',
      transport: peer.https ? 'https' : 'http',
    })
    const ca = o.ca === null ? undefined : (o.ca ?? peer.caPem)
    const dto = await createTarget(tc.ctx, {
      name: `win-${tag}`,
      address: peer.host,
      os_type: 'windows',
      enabled: true,
      tags: {},
      connection: { type: 'winrm', https: peer.https, port: peer.port, credential_id: cred.id, verify_tls: true, ...(ca ? { tls_ca: ca } : {}) },
    })
    return getTargetRow(tc.ctx.db, dto.id)
  }
  const exec = (t: TargetRow, overrides: Partial<ExecutionContext> = {}): TestExecution => executionContext(tc.ctx, { target: t, ...overrides })
  const deps = () => ({ ctx: tc.ctx, log: tc.ctx.log, credential: (id: string) => exec(null as never).credential(id) })

  test('HTTP + NTLM with message encryption: stdout, CLIXML stderr decoded, exit code', async () => {
    const t = await target(http)
    const x = exec(t)
    const out = await runWinrmExec(t, ExecInput.parse({ command: 'echo hi; echo oops >&2; exit 3' }), x)
    assert.deepEqual(out, { status: 'failed', exitCode: 3, error: 'exit code 3' })
    assert.equal(x.stdout(), 'hi\n')
    assert.equal(x.stderr(), 'oops\r\n')
    assert.match(http.log(), /auth=negotiate user=\S+ enc=yes action=Command/)
    assert.doesNotMatch(http.log(), /enc=no action=Command/)
    const ok = await runWinrmExec(t, ExecInput.parse({ command: 'exit 3', success_exit_codes: [0, 3] }), exec(t))
    assert.deepEqual(ok, { status: 'succeeded', exitCode: 3 })
  })

  test('the winrm.exec step refuses a target that is not reached over WinRM', async () => {
    const t = await target(http)
    const ssh = { ...t, connection: { type: 'ssh', port: 22, credential_id: null, host_key_policy: 'tofu', jump: [] } } as TargetRow
    const out = await winrmExec.run('winrm.exec', ExecInput.parse({ command: 'echo' }), exec(ssh))
    assert.equal(out.status, 'failed')
    assert.match(out.error ?? '', /not reached over WinRM/)
  })

  test('stdin reaches the command, and a long script travels over stdin', async () => {
    const t = await target(http)
    const x = exec(t)
    assert.equal((await runWinrmExec(t, ExecInput.parse({ command: 'cat; echo done', stdin: 'line 1\nline 2\n' }), x)).status, 'succeeded')
    assert.equal(x.stdout(), 'line 1\nline 2\ndone\n')
    const filler = Array.from({ length: 400 }, (_, i) => `# filler line ${i} ${'x'.repeat(40)}`).join('\n')
    const y = exec(t)
    const out = await runWinrmExec(t, ExecInput.parse({ command: `${filler}\necho long-script-ok` }), y)
    assert.equal(out.status, 'succeeded', out.error ?? '')
    assert.equal(y.stdout(), 'long-script-ok\n')
  })

  test('HTTPS + Basic with the host CA, HTTPS + NTLM with channel binding, and a wrong CA is a tls error', async () => {
    for (const auth of ['basic', 'ntlm'] as const) {
      const t = await target(https, { auth })
      const x = exec(t)
      const out = await runWinrmExec(t, ExecInput.parse({ command: 'echo secure' }), x)
      assert.equal(out.status, 'succeeded', out.error ?? '')
      assert.equal(x.stdout(), 'secure\n')
    }
    assert.match(https.log(), /auth=basic user=\S+ enc=no action=Command/)
    assert.match(https.log(), /auth=negotiate user=\S+ enc=no action=Command/)
    const untrusted = await target(https, { ca: null })
    await assert.rejects(probeWinrm(untrusted, deps()), (err) => err instanceof WinrmError && err.kind === 'tls')
    const out = await runWinrmExec(untrusted, ExecInput.parse({ command: 'echo' }), exec(untrusted))
    assert.equal(out.status, 'failed')
    assert.match(out.error ?? '', /certificate/i)
  })

  test('a wrong password is auth_failed, and the password is in no message', async () => {
    const password = `wrong-${randomBytes(4).toString('hex')}`
    const t = await target(http, { password })
    await assert.rejects(probeWinrm(t, deps()), (err) => err instanceof WinrmError && err.kind === 'auth_failed' && !err.message.includes(password))
    const basic = await target(https, { auth: 'basic', password })
    const out = await runWinrmExec(basic, ExecInput.parse({ command: 'echo' }), exec(basic))
    assert.equal(out.status, 'failed')
    assert.match(out.error ?? '', /authentication as .* failed/)
    assert.ok(!out.error?.includes(password))
  })

  test('a closed port is refused', async () => {
    const t = await target(http)
    const closed = { ...t, connection: { ...t.connection, port: 1 } } as TargetRow
    await assert.rejects(probeWinrm(closed, deps()), (err) => err instanceof WinrmError && err.kind === 'refused')
  })

  test('cancel terminates the remote command; timeout ends the step as timed_out', async () => {
    const t = await target(http)
    const marker = `sleep 3${randomBytes(3).readUIntBE(0, 3) % 1000}.${Date.now() % 1000}`
    const x = exec(t)
    const running = runWinrmExec(t, ExecInput.parse({ command: `echo started; ${marker}` }), x)
    assert.ok(await until(() => pgrep(marker) !== '', 10_000), 'the remote sleep started')
    const started = Date.now()
    x.abort('cancelled')
    const out = await running
    assert.equal(out.status, 'cancelled')
    assert.ok(Date.now() - started < 5_000)
    assert.ok(await until(() => pgrep(marker) === '', 5_000), 'the remote sleep was killed')
    assert.match(http.log(), /action=Signal/)

    const marker2 = `sleep 4${Date.now() % 1000}.${randomBytes(1)[0]}`
    const timed = await runWinrmExec(t, ExecInput.parse({ command: marker2 }), exec(t, { timeoutMs: 1_500 }))
    assert.equal(timed.status, 'timed_out')
    assert.ok(await until(() => pgrep(marker2) === '', 5_000), 'the remote sleep was killed after the timeout')
  })

  test('the handle a command leaves lets another controller terminate it and delete its shell', async () => {
    const t = await target(http)
    const marker = `sleep 5${randomBytes(3).readUIntBE(0, 3) % 1000}.${Date.now() % 1000}`
    const handles: Record<string, unknown>[] = []
    const running = runWinrmExec(t, ExecInput.parse({ command: marker }), exec(t, { remember: (h) => handles.push(h) }))
    assert.ok(await until(() => pgrep(marker) !== '' && handles.length > 0, 10_000), 'the remote sleep started and its handle was recorded')
    // What a controller that takes over the dead one's step does with step_run.remote:
    assert.match(await cleanUpRemote(tc.ctx, JSON.parse(JSON.stringify(handles[0]))), /^shell \S+ deleted$/)
    assert.ok(await until(() => pgrep(marker) === '', 5_000), 'the remote sleep was killed')
    assert.equal((await running).status, 'failed')
  })

  test('copies a multi-MB file, verified by SHA-256; overwrite false keeps an existing file', async () => {
    const t = await target(http)
    const data = randomBytes(3 * 1024 * 1024 + 17)
    const dest = path.join(dir, 'sub', 'payload.bin')
    const x = exec(t)
    const out = await runWinrmCopy(t, CopyInput.parse({ destination: dest, content_base64: data.toString('base64') }), x)
    const sha256 = createHash('sha256').update(data).digest('hex')
    assert.deepEqual(out, { status: 'succeeded', exitCode: 0, result: { path: dest, size: data.length, sha256 } })
    assert.ok(readFileSync(dest).equals(data))

    writeFileSync(path.join(dir, 'keep.txt'), 'old')
    const kept = await runWinrmCopy(t, CopyInput.parse({ destination: path.join(dir, 'keep.txt'), content: 'new', overwrite: false }), exec(t))
    assert.equal(kept.status, 'failed')
    assert.match(kept.error ?? '', /exists and overwrite is false/)
    assert.equal(readFileSync(path.join(dir, 'keep.txt'), 'utf8'), 'old')

    const noParent = await runWinrmCopy(t, CopyInput.parse({ destination: path.join(dir, 'missing', 'f.txt'), content: 'x', create_parents: false }), exec(t))
    assert.match(noParent.error ?? '', /does not exist/)
    assert.ok(!existsSync(path.join(dir, 'missing')))
  })

  test('sequential commands reuse pooled shells', async () => {
    await closeWinrmPools()
    const t = await target(http)
    const before = creates(http)
    for (let i = 0; i < 8; i++) {
      const x = exec(t)
      assert.equal((await runWinrmExec(t, ExecInput.parse({ command: `echo ${i}` }), x)).status, 'succeeded')
      assert.equal(x.stdout(), `${i}\n`)
    }
    assert.equal(creates(http) - before, 1, 'one shell for 8 sequential commands')
  })

  test('a pooled shell the server dropped is replaced before the command starts', async () => {
    await closeWinrmPools()
    const t = await target(http)
    assert.equal((await runWinrmExec(t, ExecInput.parse({ command: 'echo first' }), exec(t))).status, 'succeeded')
    const opts = await transportOptionsFor(t, deps())
    const pool = hostPool(opts)
    const shell = await pool.acquire()
    pool.release(shell)
    // Another client deletes it (as Windows does after its idle timeout or a service restart).
    const other = new WinrmTransport(opts)
    await call(other, deleteShellRequest(endpointUrl(other), shell.id), 'Delete shell')
    other.close()
    const x = exec(t)
    const out = await runWinrmExec(t, ExecInput.parse({ command: 'echo second' }), x)
    assert.equal(out.status, 'succeeded', out.error ?? '')
    assert.equal(x.stdout(), 'second\n')
    assert.match(http.log(), /action=Command shell=\S+ -> 500 w:InvalidSelectors/)
  })

  test('concurrent commands stay within the pool size and the server quota', async () => {
    const concurrently = async (t: TargetRow, n: number) => {
      const runs = Array.from({ length: n }, async (_, i) => {
        const x = exec(t)
        const out = await runWinrmExec(t, ExecInput.parse({ command: `sleep 0.3; echo n${i}` }), x)
        return { out, stdout: x.stdout() }
      })
      for (const [i, r] of (await Promise.all(runs)).entries()) {
        assert.equal(r.out.status, 'succeeded', r.out.error ?? '')
        assert.equal(r.stdout, `n${i}\n`)
      }
    }
    const created = (peer: WinrmPeer) => (peer.log().match(/action=Create shell=[0-9A-F-]{36} -> 200/g) ?? []).length
    // Windows' quota (30) is far above the pool's: the pool's size is the limit.
    await closeWinrmPools()
    const before = created(http)
    await concurrently(await target(http), 12)
    assert.ok(created(http) - before <= POOL_MAX_SHELLS, `created ${created(http) - before} shells`)
    // A server quota below the pool's size: Creates over it fault, and those commands wait for a shell.
    const peer = await startWinrmPeer({ https: false, maxShellsPerUser: 3 })
    try {
      await concurrently(await target(peer), 12)
      assert.ok(created(peer) <= 3, `created ${created(peer)} shells`)
      assert.match(peer.log(), /action=Create shell=- -> 500 w:InternalError/)
    } finally {
      await closeWinrmPools()
      await peer.stop()
    }
  })

  test('the engine runs exec, winrm.exec and winrm.copy steps on a WinRM target', async () => {
    const engine = new RunEngine(tc.ctx, { leaseMs: 5000, localCapacity: 4, agentCapacity: 4 })
    tc.ctx.runEngine = engine
    await engine.start()
    try {
      const api = await RunsApi.as(tc.ctx, 'operator')
      const t = await target(http)
      const dest = path.join(dir, 'engine.txt')
      const jobId = await api.createJob({
        name: `winrm-${t.name}`,
        targets: `id:${t.id}`,
        steps: [
          { id: 'neutral', type: 'exec', command: 'echo neutral on {{ target.name }}' },
          { id: 'put', type: 'winrm.copy', destination: dest, content: 'copied by the engine\n' },
          { id: 'forced', type: 'winrm.exec', command: `cat ${dest}` },
        ],
      })
      const runId = await api.run(jobId)
      const done = await api.waitForRun(runId, 30_000)
      const steps = await api.steps(runId)
      assert.equal(done.status, 'succeeded', JSON.stringify(steps.map((st) => [st.step_id, st.status, st.error])))
      const byId = new Map(steps.map((st) => [st.step_id, st]))
      assert.equal(await api.output(runId, byId.get('neutral').id, 'stdout'), `neutral on ${t.name}\n`)
      assert.equal(await api.output(runId, byId.get('forced').id, 'stdout'), 'copied by the engine\n')
      assert.deepEqual(steps.map((st) => st.transport), ['winrm', 'winrm', 'winrm'])
    } finally {
      await engine.stop()
      tc.ctx.runEngine = undefined
    }
  })

  test('probe: latency and facts from the facts script', async () => {
    const t = await target(http)
    const { latencyMs, facts } = await probeWinrm(t, deps())
    assert.ok(latencyMs > 0)
    assert.ok(typeof facts.os_name === 'string' && facts.os_name.length > 0)
    assert.ok((facts.cpu_count as number) >= 1)
    assert.ok((facts.memory_bytes as number) > 0)
    assert.ok(Array.isArray(facts.disks))
    assert.equal(typeof facts.hostname, 'string')
    assert.equal(facts.arch, process.arch === 'x64' ? 'x86_64' : facts.arch)
  })
})
