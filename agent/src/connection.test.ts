import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as grpc from '@grpc/grpc-js'
import { identityRefusal } from './connection.ts'

test('only revoked and unknown (deleted) identities end the run loop; transient refusals are retried', () => {
  assert.equal(identityRefusal({ status: grpc.status.PERMISSION_DENIED, details: 'this agent has been revoked' }), 'this agent has been revoked')
  assert.equal(identityRefusal({ status: grpc.status.UNAUTHENTICATED, details: 'unknown agent; enrol it again' }), 'unknown agent; enrol it again')
  assert.equal(identityRefusal({ status: grpc.status.UNAUTHENTICATED, details: 'this agent has been deleted' }), 'this agent has been deleted')
  for (const end of [
    {},
    { status: grpc.status.UNAVAILABLE, details: 'No connection established' },
    { status: grpc.status.UNAVAILABLE, details: 'controller draining: shutdown' },
    { status: grpc.status.UNAUTHENTICATED, details: 'challenge response outside the clock-skew window' },
    { status: grpc.status.UNAUTHENTICATED, details: 'no TLS channel binding for this connection' },
    { status: grpc.status.FAILED_PRECONDITION, details: 'protocol 2.0 is not compatible' },
    { status: grpc.status.DEADLINE_EXCEEDED, details: 'handshake not completed in time' },
    { status: grpc.status.ABORTED, details: 'replaced by a newer session of the same agent' },
  ]) {
    assert.equal(identityRefusal(end), undefined, JSON.stringify(end))
  }
})
