import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { AssignmentOutcome } from '../agents/assignments/events.ts'
import { fromAssignment } from './agent-step.ts'

const outcome = (over: Partial<AssignmentOutcome>): AssignmentOutcome => ({
  assignmentId: 'a',
  status: 'succeeded',
  exitCode: 0,
  signal: null,
  error: null,
  rejectReason: null,
  startedAt: null,
  finishedAt: null,
  outputBytes: 10,
  truncated: false,
  fileSha256: null,
  fileSize: null,
  ...over,
})
const live = new AbortController().signal
const aborted = (reason: string) => {
  const c = new AbortController()
  c.abort(reason)
  return c.signal
}

test('exit codes are judged by the step: success_exit_codes can make 3 a success and 0 a failure', () => {
  assert.equal(fromAssignment(outcome({ status: 'failed', exitCode: 3 }), [0, 3], live).status, 'succeeded')
  const zero = fromAssignment(outcome({ exitCode: 0 }), [1], live)
  assert.deepEqual([zero.status, zero.error], ['failed', 'exit code 0'])
  assert.equal(fromAssignment(outcome({ status: 'failed', exitCode: null, signal: 'SIGKILL' }), [0], live).error, 'killed by SIGKILL')
  assert.deepEqual(fromAssignment(outcome({ status: 'failed', exitCode: null, error: 'no such file' }), [0], live).error, 'no such file')
})

test('an interruption is the cancel or timeout we asked for, otherwise the agent stopped it', () => {
  assert.equal(fromAssignment(outcome({ status: 'interrupted', exitCode: null }), [0], aborted('cancelled')).status, 'cancelled')
  assert.equal(fromAssignment(outcome({ status: 'interrupted', exitCode: null }), [0], aborted('timed_out')).status, 'timed_out')
  const unasked = fromAssignment(outcome({ status: 'interrupted', exitCode: null }), [0], live)
  assert.equal(unasked.status, 'interrupted')
  assert.match(unasked.error ?? '', /agent stopped the step/)
})

test('delivery and agent failures map to the run statuses, the agent refusing is our fault', () => {
  assert.equal(fromAssignment(outcome({ status: 'agent_lost', exitCode: null }), [0], live).status, 'agent_lost')
  const undelivered = fromAssignment(outcome({ status: 'undelivered', exitCode: null }), [0], live)
  assert.deepEqual([undelivered.status, /not connected/.test(undelivered.error ?? '')], ['failed', true])
  const rejected = fromAssignment(outcome({ status: 'rejected', exitCode: null, rejectReason: 'bad_signature', error: 'refused' }), [0], live)
  assert.equal(rejected.status, 'system_error')
  assert.match(rejected.error ?? '', /bad_signature/)
  assert.equal(fromAssignment(outcome({ status: 'timed_out', exitCode: null }), [0], live).status, 'timed_out')
  assert.equal(fromAssignment(outcome({ status: 'succeeded', outputBytes: 99, truncated: true }), [0], live).truncated, true)
})
