import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { sshdUnavailable } from '../../../../test/harness/sshd.ts'
import { ExecInput } from '../exec-input.ts'
import { runSshExec, sshExec } from './index.ts'
import { sshFixture, type SshFixture } from './test-fixture.ts'

const skip = sshdUnavailable()
const input = (v: Record<string, unknown>) => ExecInput.parse(v)

/**
 * The test user's live processes named `name` (sshd runs on this machine). Killed processes can
 * stay zombies until init reaps them, which a container's init may take a second or two to do;
 * they are dead, so they do not count.
 */
function userProcesses(user: string, name: string): string[] {
  const res = spawnSync('ps', ['-u', user, '-o', 'pid=', '-o', 'stat=', '-o', 'comm='], { encoding: 'utf8' })
  return res.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([pid, stat, comm]) => pid && comm === name && !stat!.startsWith('Z'))
    .map(([pid]) => pid!)
}

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe('ssh.exec against a real sshd', { skip }, () => {
  let f: SshFixture
  before(async () => {
    f = await sshFixture({ sudo: true })
  })
  after(async () => {
    await f?.close()
  })

  test('streams stdout and stderr apart, strips the pgid marker and remembers the process group', async () => {
    const target = await f.target()
    const x = f.exec(target)
    const out = await runSshExec(target, input({ command: 'echo out; echo err >&2; echo more' }), x)
    assert.deepEqual(out, { status: 'succeeded', exitCode: 0 })
    assert.equal(x.stdout(), 'out\nmore\n')
    assert.equal(x.stderr(), 'err\n')
    assert.equal(x.handles.length, 1)
    assert.equal(x.handles[0]!.kind, 'ssh.pgid')
    assert.equal(typeof x.handles[0]!.pgid, 'number')
    assert.equal(x.handles[0]!.target_id, target.id)
  })

  test('a non-zero exit fails with its exit code unless listed in success_exit_codes', async () => {
    const target = await f.target()
    const failed = await runSshExec(target, input({ command: 'echo partial; exit 3' }), f.exec(target))
    assert.deepEqual(failed, { status: 'failed', exitCode: 3, error: 'exit code 3' })
    const ok = await runSshExec(target, input({ command: 'exit 3', success_exit_codes: [0, 3] }), f.exec(target))
    assert.deepEqual(ok, { status: 'succeeded', exitCode: 3 })
  })

  test('applies env, cwd and stdin', async () => {
    const target = await f.target()
    const x = f.exec(target)
    const out = await runSshExec(target, input({ command: `printf '%s|%s|' "$GREETING" "$QUOTED"; pwd; cat`, env: { GREETING: 'hello world', QUOTED: `it's "quoted"` }, cwd: '/tmp', stdin: 'line one\nline two' }), x)
    assert.equal(out.status, 'succeeded')
    assert.equal(x.stdout(), `hello world|it's "quoted"|/tmp\nline one\nline two`)
  })

  test('env values, cwd and the command are never evaluated by the wrapper', async () => {
    const target = await f.target()
    const marker = `/tmp/opsc-injection-${randomBytes(4).toString('hex')}`
    const evil = `$(touch ${marker})\`touch ${marker}\`'; touch ${marker}; '\n; touch ${marker}`
    const x = f.exec(target)
    const out = await runSshExec(target, input({ command: 'printf "%s" "$EVIL"', env: { EVIL: evil } }), x)
    assert.equal(out.status, 'succeeded')
    assert.equal(x.stdout(), evil)
    const cwd = await runSshExec(target, input({ command: 'true', cwd: `/nonexistent'; touch ${marker}; '` }), f.exec(target))
    assert.equal(cwd.status, 'failed')
    assert.equal(existsSync(marker), false)
  })

  test('a missing cwd fails with the shell saying why', async () => {
    const target = await f.target()
    const x = f.exec(target)
    const out = await runSshExec(target, input({ command: 'echo never', cwd: '/does/not/exist' }), x)
    assert.deepEqual(out, { status: 'failed', exitCode: 1, error: 'exit code 1' })
    assert.match(x.stderr(), /\/does\/not\/exist/)
    assert.equal(x.stdout(), '')
  })

  test('runs the command in bash when asked', async () => {
    const target = await f.target()
    const x = f.exec(target)
    const out = await runSshExec(target, input({ command: 'echo "${BASH_VERSION:+bash}"; arr=(a b); echo ${#arr[@]}', shell: 'bash' }), x)
    assert.equal(out.status, 'succeeded')
    assert.equal(x.stdout(), 'bash\n2\n')
  })

  test('a command too long for one exec request runs from a staged temp file that is then gone', async () => {
    const target = await f.target()
    const x = f.exec(target)
    const payload = "it's ".repeat(100_000)
    const out = await runSshExec(target, input({ command: `cat <<'EOF' | wc -c\n${payload}\nEOF\nexit 4`, success_exit_codes: [4], env: { A: 'b' } }), x)
    assert.deepEqual(out, { status: 'succeeded', exitCode: 4 }, x.stderr())
    assert.equal(x.stdout().trim(), String(payload.length + 1))
    assert.deepEqual(readdirSync('/tmp').filter((n) => n.startsWith('.opsc-cmd-')), [])
  })

  test('refuses a Windows shell on a Linux target', async () => {
    const target = await f.target()
    const out = await runSshExec(target, input({ command: 'Get-Date', shell: 'powershell' }), f.exec(target))
    assert.equal(out.status, 'failed')
    assert.match(out.error!, /powershell is for Windows targets/)
  })

  test('with a pty, stdout and stderr arrive merged on stdout', async () => {
    const target = await f.target()
    const x = f.exec(target)
    const out = await runSshExec(target, input({ command: 'echo out; echo err >&2; tty; read line; echo "got $line"', pty: true, stdin: 'typed\n' }), x)
    assert.equal(out.status, 'succeeded')
    const text = x.stdout().replace(/\r\n/g, '\n')
    assert.match(text, /^out\nerr\n\/dev\/pts\/\d+\ngot typed\n$/)
    assert.equal(x.stderr(), '')
    assert.equal(x.handles.length, 1)
  })

  test('output is streamed while the command runs', async () => {
    const target = await f.target()
    const seen: { at: number; text: string }[] = []
    const x = f.exec(target, { output: { write: (_s, d) => seen.push({ at: Date.now(), text: d.toString() }) } })
    const started = Date.now()
    const out = await runSshExec(target, input({ command: 'echo first; sleep 1; echo second' }), x)
    assert.equal(out.status, 'succeeded')
    const first = seen.find((s) => s.text.includes('first'))!
    assert.ok(first.at - started < Date.now() - started - 700, 'the first line arrived well before the end')
  })

  test('cancel kills the remote command and reports cancelled', async () => {
    const target = await f.target()
    const x = f.exec(target)
    const run = runSshExec(target, input({ command: 'sleep 600; echo never' }), x)
    await until('the remote sleep', () => userProcesses(f.sshd.user, 'sleep').length === 1)
    const t0 = Date.now()
    x.abort('cancelled')
    const out = await run
    assert.equal(out.status, 'cancelled')
    assert.ok(Date.now() - t0 < 5000)
    await until('no sleep left', () => userProcesses(f.sshd.user, 'sleep').length === 0)
    assert.doesNotMatch(x.stdout(), /never/)
    // The pooled connection under the cancelled step serves the next one.
    const accepted = f.sshd.accepted()
    assert.deepEqual(await runSshExec(target, input({ command: 'true' }), f.exec(target)), { status: 'succeeded', exitCode: 0 })
    assert.equal(f.sshd.accepted(), accepted)
  })

  test('a step timeout kills the remote command and reports timed_out', async () => {
    const target = await f.target()
    const x = f.exec(target)
    const run = runSshExec(target, input({ command: 'sleep 600' }), x)
    await until('the remote sleep', () => userProcesses(f.sshd.user, 'sleep').length === 1)
    x.abort('timed_out')
    assert.equal((await run).status, 'timed_out')
    await until('no sleep left', () => userProcesses(f.sshd.user, 'sleep').length === 0)
  })

  test('its own deadline (timeoutMs) stops a command the engine did not abort', async () => {
    const target = await f.target()
    const x = f.exec(target, { timeoutMs: 1500 })
    const out = await runSshExec(target, input({ command: 'sleep 600' }), x)
    assert.equal(out.status, 'timed_out')
    await until('no sleep left', () => userProcesses(f.sshd.user, 'sleep').length === 0)
  })

  test('cancel kills the whole process tree, including background children', async () => {
    const target = await f.target()
    const x = f.exec(target)
    const run = runSshExec(target, input({ command: "sh -c 'sleep 600 & sleep 600'; echo never" }), x)
    await until('both sleeps', () => userProcesses(f.sshd.user, 'sleep').length === 2)
    x.abort('cancelled')
    assert.equal((await run).status, 'cancelled')
    await until('no sleep left', () => userProcesses(f.sshd.user, 'sleep').length === 0)
  })

  test('a tree that ignores SIGTERM is killed with SIGKILL', async () => {
    const target = await f.target()
    const x = f.exec(target)
    const run = runSshExec(target, input({ command: "trap '' TERM; sleep 600 & sleep 600" }), x)
    await until('both sleeps', () => userProcesses(f.sshd.user, 'sleep').length === 2)
    const t0 = Date.now()
    x.abort('cancelled')
    assert.equal((await run).status, 'cancelled')
    assert.ok(Date.now() - t0 >= 1500, 'TERM was given its grace period')
    await until('no sleep left', () => userProcesses(f.sshd.user, 'sleep').length === 0)
  })

  test('run_as runs the command as that user through sudo, with env and cwd', async (t) => {
    const runAs = f.sshd.runAsUser
    if (!runAs) return t.skip('sudo is not installed')
    const target = await f.target()
    const x = f.exec(target)
    const out = await runSshExec(target, input({ command: `id -un; pwd; printf '%s\\n' "$A"`, run_as: runAs, env: { A: "it's kept" }, cwd: '/tmp' }), x)
    assert.deepEqual(out, { status: 'succeeded', exitCode: 0 }, x.stderr())
    assert.equal(x.stdout(), `${runAs}\n/tmp\nit's kept\n`)
    assert.equal(x.handles[0]!.run_as, runAs)
  })

  test('cancel kills a run_as command', async (t) => {
    const runAs = f.sshd.runAsUser
    if (!runAs) return t.skip('sudo is not installed')
    const target = await f.target()
    const x = f.exec(target)
    const run = runSshExec(target, input({ command: "sh -c 'sleep 600 & sleep 600'", run_as: runAs }), x)
    await until('both sleeps', () => userProcesses(runAs, 'sleep').length === 2)
    x.abort('cancelled')
    assert.equal((await run).status, 'cancelled')
    await until('no sleep left', () => userProcesses(runAs, 'sleep').length === 0)
  })

  test('run_as goes through sudo -n and fails clearly when sudo cannot run it', async () => {
    const target = await f.target()
    const x = f.exec(target)
    const out = await runSshExec(target, input({ command: 'id -un', run_as: 'nobody' }), x)
    assert.equal(out.status, 'failed')
    assert.match(x.stderr(), /sudo/)
  })

  test('the ssh.exec executor needs an SSH target', async () => {
    const none = await sshExec.run('ssh.exec', input({ command: 'true' }), f.exec(null as never))
    assert.deepEqual(none, { status: 'failed', error: 'this step needs a target' })
    const target = await f.target()
    const x = f.exec(target)
    assert.deepEqual(await sshExec.run('ssh.exec', input({ command: 'echo via-executor' }), x), { status: 'succeeded', exitCode: 0 })
    assert.equal(x.stdout(), 'via-executor\n')
  })
})
