import assert from 'node:assert/strict'
import { test } from 'node:test'
import { runExec } from './exec.ts'
import { argv, bash, collector, isGone, pidsIn } from './test-helpers.ts'

test('runs on a pseudo-terminal, with its output as the pty stream', async () => {
  const c = collector()
  const outcome = await runExec(argv(['tty'], { pty: {} }), c.opts)
  assert.equal(outcome.exitCode, 0)
  assert.match(c.text('pty'), /^\/dev\/pts\/\d+\r\n$/)
  assert.equal(c.text('stdout'), '')
})

test('merges stderr into the pty stream and keeps escape sequences', async () => {
  const c = collector()
  await runExec(bash(`printf '\\033[31mred\\033[0m\\n'; echo err >&2`, { pty: {} }), c.opts)
  assert.ok(c.bytes('pty').includes(Buffer.from('\x1b[31mred\x1b[0m\r\n')), JSON.stringify(c.text('pty')))
  assert.match(c.text('pty'), /err\r\n/)
})

test('defaults to 80x24 and xterm-256color', async () => {
  const c = collector()
  await runExec(bash('stty size; echo "$TERM"', { pty: {} }), c.opts)
  assert.equal(c.text('pty'), '24 80\r\nxterm-256color\r\n')
})

test('honours the requested size and TERM', async () => {
  const c = collector()
  await runExec(bash('stty size; echo "$TERM"', { pty: { size: { columns: 132, rows: 43 }, term: 'vt100' } }), c.opts)
  assert.equal(c.text('pty'), '43 132\r\nvt100\r\n')
})

test('feeds stdin to the terminal and then ends it', async () => {
  const c = collector()
  const outcome = await runExec(bash('read -r line; echo "got:$line"; cat; echo end', { pty: {}, stdin: Buffer.from('hello\n') }), c.opts)
  assert.equal(outcome.exitCode, 0)
  assert.match(c.text('pty'), /got:hello\r\nend\r\n$/)
})

test('reports the exit code and the killing signal', async () => {
  assert.equal((await runExec(bash('exit 3', { pty: {} }), collector().opts)).exitCode, 3)
  const killed = await runExec(bash('kill -KILL $$', { pty: {} }), collector().opts)
  assert.equal(killed.signal, 'SIGKILL')
  assert.equal(killed.exitCode, undefined)
})

test('a timeout kills the whole tree on a pty as well', async () => {
  const c = collector({ graceMs: 1000 })
  const script = `sleep 300 & echo "pid=$!"; bash -c 'sleep 300 & echo "pid=$!"; wait' & echo "pid=$!"; wait`
  const outcome = await runExec(bash(script, { pty: {}, timeoutMs: 4000n }), c.opts)
  assert.equal(outcome.timedOut, true)
  const pids = pidsIn(c.text('pty'))
  assert.equal(pids.length, 3, JSON.stringify(c.text('pty')))
  assert.deepEqual(pids.filter((pid) => !isGone(pid)), [])
})

test('cancel ends a pty run', async () => {
  const c = collector()
  const running = runExec(bash('echo ready; sleep 300', { pty: {} }), c.opts)
  await c.waitFor('pty', /ready/)
  c.controller.abort()
  const outcome = await running
  assert.equal(outcome.interrupted, true)
  assert.equal(outcome.signal, 'SIGTERM')
})

test('a missing cwd is an error outcome on a pty too', async () => {
  const outcome = await runExec(argv(['true'], { pty: {}, cwd: '/nonexistent/opsc-dir' }), collector().opts)
  assert.match(outcome.error ?? '', /cwd \/nonexistent\/opsc-dir does not exist/)
})
