import assert from 'node:assert/strict'
import { create } from '@bufbuild/protobuf'
import { mkdtempSync, realpathSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { ExecActionSchema, Shell } from '../../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { runExec } from './exec.ts'
import { argv, bash, collector } from './test-helpers.ts'

const isRoot = process.getuid?.() === 0

test('keeps stdout and stderr apart and reports the exit code', async () => {
  const c = collector()
  const outcome = await runExec(bash('echo out; echo err >&2; exit 7'), c.opts)
  assert.equal(c.text('stdout'), 'out\n')
  assert.equal(c.text('stderr'), 'err\n')
  assert.equal(outcome.exitCode, 7)
  assert.equal(outcome.signal, undefined)
  assert.equal(outcome.error, undefined)
  assert.equal(outcome.timedOut, false)
  assert.equal(outcome.interrupted, false)
  assert.ok(outcome.finishedAtMs >= outcome.startedAtMs)
})

test('passes output through as raw bytes, complete and in order', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'opsc-exec-'))
  const content = Buffer.alloc(1_000_000)
  for (let i = 0; i < content.length; i++) content[i] = (i * 7919) % 256 // every byte value, invalid UTF-8 included
  writeFileSync(path.join(dir, 'blob'), content)
  const c = collector()
  const outcome = await runExec(argv(['cat', path.join(dir, 'blob')]), c.opts)
  assert.equal(outcome.exitCode, 0)
  assert.ok(c.bytes('stdout').equals(content))
})

test('sets the environment from the agent, the action, then the opened secrets', async () => {
  const c = collector({ extraEnv: { SECRET: 'from-secret', BOTH: 'secret-wins' } })
  const action = bash('echo "$PLAIN|$SECRET|$BOTH|${PATH:+has-path}"', { env: { PLAIN: 'from-action', BOTH: 'action' } })
  const outcome = await runExec(action, c.opts)
  assert.equal(outcome.exitCode, 0)
  assert.equal(c.text('stdout'), 'from-action|from-secret|secret-wins|has-path\n')
})

test('runs in the given cwd', async () => {
  const dir = realpathSync(mkdtempSync(path.join(tmpdir(), 'opsc-cwd-')))
  const c = collector()
  await runExec(argv(['pwd'], { cwd: dir }), c.opts)
  assert.equal(c.text('stdout'), `${dir}\n`)
})

test('writes stdin and then closes it', async () => {
  const c = collector()
  const outcome = await runExec(argv(['cat'], { stdin: Buffer.from('line one\nno newline') }), c.opts)
  assert.equal(outcome.exitCode, 0)
  assert.equal(c.text('stdout'), 'line one\nno newline')
})

test('closes stdin at once when there is none, so readers see EOF', async () => {
  const c = collector()
  const outcome = await runExec(argv(['cat']), c.opts)
  assert.equal(outcome.exitCode, 0)
  assert.equal(c.text('stdout'), '')
})

test('hands argv to the program without a shell interpreting it', async () => {
  const c = collector()
  const words = ['a b', '"quoted"', "'single'", '$HOME', '`id`', '*', '; echo no']
  await runExec(argv(['printf', '[%s]\\n', ...words]), c.opts)
  assert.equal(c.text('stdout'), words.map((w) => `[${w}]\n`).join(''))
})

test('gives script args to the shell as $1…, unexpanded', async () => {
  const c = collector()
  await runExec(bash('printf "[%s]" "$#" "$1" "$2"', {}, ['one two', '-x $HOME']), c.opts)
  assert.equal(c.text('stdout'), '[2][one two][-x $HOME]')
})

test('runs sh scripts, and the default shell when none is named', async () => {
  for (const shell of [Shell.SH, Shell.UNSPECIFIED]) {
    const c = collector()
    const action = create(ExecActionSchema, { command: { case: 'script', value: { shell, script: 'echo "ok $1"', args: ['x'] } } })
    const outcome = await runExec(action, c.opts)
    assert.equal(outcome.exitCode, 0)
    assert.equal(c.text('stdout'), 'ok x\n')
  }
})

test('reports the signal that ended the process, with no exit code', async () => {
  const outcome = await runExec(bash('kill -KILL $$'), collector().opts)
  assert.equal(outcome.signal, 'SIGKILL')
  assert.equal(outcome.exitCode, undefined)
  assert.equal(outcome.timedOut, false)
})

test('a missing cwd is an error outcome naming it', async () => {
  const outcome = await runExec(argv(['true'], { cwd: '/nonexistent/opsc-dir' }), collector().opts)
  assert.match(outcome.error ?? '', /cwd \/nonexistent\/opsc-dir does not exist/)
  assert.equal(outcome.exitCode, undefined)
})

test('a missing shell or program is an error outcome, not a throw', async () => {
  const empty = mkdtempSync(path.join(tmpdir(), 'opsc-empty-path-'))
  const noBash = await runExec(bash('echo hi', { env: { PATH: empty } }), collector().opts)
  assert.equal(noBash.error, 'shell bash not found')
  const pwsh = create(ExecActionSchema, { env: { PATH: empty }, command: { case: 'script', value: { shell: Shell.PWSH, script: 'Write-Output hi' } } })
  assert.equal((await runExec(pwsh, collector().opts)).error, 'shell pwsh not found')
  const cmd = create(ExecActionSchema, { env: { PATH: empty }, command: { case: 'script', value: { shell: Shell.CMD, script: 'echo hi' } } })
  assert.equal((await runExec(cmd, collector().opts)).error, 'shell cmd not found')
  const program = await runExec(argv(['opsc-no-such-program']), collector().opts)
  assert.equal(program.error, 'program opsc-no-such-program not found or not executable')
  const none = await runExec(create(ExecActionSchema, {}), collector().opts)
  assert.equal(none.error, 'exec action has no command')
})

test('an action cancelled before it starts does not run', async () => {
  const c = collector()
  c.controller.abort()
  const outcome = await runExec(bash('echo should-not-run'), c.opts)
  assert.equal(outcome.interrupted, true)
  assert.equal(c.text('stdout'), '')
})

test('runs as another user when the agent is root', { skip: !isRoot && 'needs root' }, async () => {
  const c = collector()
  const outcome = await runExec(bash('id -un; echo "$USER"', { runAsUser: 'nobody', cwd: '/' }), c.opts)
  assert.equal(outcome.exitCode, 0, outcome.error)
  assert.equal(c.text('stdout'), 'nobody\nnobody\n')
})

test('an unknown run_as_user is an error outcome', async () => {
  const outcome = await runExec(bash('true', { runAsUser: 'opsc-no-such-user' }), collector().opts)
  assert.equal(outcome.error, 'run_as_user: no user opsc-no-such-user')
})

test('switching user without root is an error outcome', { skip: isRoot && 'runs as root' }, async () => {
  const outcome = await runExec(bash('true', { runAsUser: 'root' }), collector().opts)
  assert.match(outcome.error ?? '', /needs the agent to run as root/)
})
