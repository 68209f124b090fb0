import assert from 'node:assert/strict'
import { test } from 'node:test'
import { runExec } from './exec.ts'
import { bash, collector, isGone, pidsIn } from './test-helpers.ts'

// Scripts print "pid=N" for every process they start, so the test can check afterwards that
// none of them survived. Waits are on output, never on sleeps; timeouts are generous.

// A child, a grandchild inside a nested shell, and that nested shell itself.
const TREE = `
sleep 300 & echo "pid=$!"
bash -c 'sleep 300 & echo "pid=$!"; wait' & echo "pid=$!"
wait
`
const THREE_PIDS = /(pid=\d+\n[^]*){3}/

test('a timeout kills the whole tree, grandchildren included', async () => {
  const c = collector({ graceMs: 1000 })
  const outcome = await runExec(bash(TREE, { timeoutMs: 4000n }), c.opts)
  assert.equal(outcome.timedOut, true)
  assert.equal(outcome.interrupted, false)
  assert.equal(outcome.signal, 'SIGTERM')
  const pids = pidsIn(c.text('stdout'))
  assert.equal(pids.length, 3, `expected three pids in ${JSON.stringify(c.text('stdout'))}`)
  assert.deepEqual(pids.filter((pid) => !isGone(pid)), [])
})

test('cancel sends SIGTERM to the group and reports interrupted', async () => {
  const c = collector()
  const running = runExec(bash(TREE), c.opts)
  await c.waitFor('stdout', THREE_PIDS)
  c.controller.abort()
  const outcome = await running
  assert.equal(outcome.interrupted, true)
  assert.equal(outcome.timedOut, false)
  assert.equal(outcome.signal, 'SIGTERM')
  const pids = pidsIn(c.text('stdout'))
  assert.equal(pids.length, 3)
  assert.deepEqual(pids.filter((pid) => !isGone(pid)), [])
})

test('a process that ignores SIGTERM is killed once the grace period is over', async () => {
  const graceMs = 500
  const c = collector({ graceMs })
  // Ignored signals stay ignored across fork and exec, so the sleep ignores SIGTERM as well.
  const running = runExec(bash(`trap '' TERM; sleep 300 & echo "pid=$!"; echo ready; wait; wait`), c.opts)
  await c.waitFor('stdout', /ready/)
  const abortedAt = Date.now()
  c.controller.abort()
  const outcome = await running
  assert.equal(outcome.interrupted, true)
  assert.equal(outcome.signal, 'SIGKILL')
  assert.ok(Date.now() - abortedAt >= graceMs, 'SIGKILL came before the grace period ended')
  assert.deepEqual(pidsIn(c.text('stdout')).filter((pid) => !isGone(pid)), [])
})

test('a background process holding stdout does not keep the run open, nor survive it', async () => {
  const c = collector({ graceMs: 1000 })
  const outcome = await runExec(bash('sleep 1000 & echo "pid=$!"; echo done'), c.opts)
  assert.equal(outcome.exitCode, 0)
  assert.equal(outcome.timedOut, false)
  assert.match(c.text('stdout'), /done\n$/)
  const [pid] = pidsIn(c.text('stdout'))
  assert.ok(pid && isGone(pid), `background sleep ${pid} survived`)
})

test('a background process with its output redirected is ended with the run too', async () => {
  const c = collector()
  const outcome = await runExec(bash('sleep 1000 >/dev/null 2>&1 </dev/null & echo "pid=$!"'), c.opts)
  assert.equal(outcome.exitCode, 0)
  const [pid] = pidsIn(c.text('stdout'))
  assert.ok(pid && isGone(pid), `background sleep ${pid} survived`)
})

test('a timeout longer than the run does not fire', async () => {
  const outcome = await runExec(bash('exit 0', { timeoutMs: 60_000n }), collector().opts)
  assert.equal(outcome.exitCode, 0)
  assert.equal(outcome.timedOut, false)
})
