import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as grpc from '@grpc/grpc-js'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pino } from 'pino'
import { ensureTls } from '../../controller/src/tls/pki.ts'
import { generateEd25519KeyPair } from '../../proto/src/sign.ts'
import { ControllerConnection, identityRefusal, nextAfterLostSession } from './connection.ts'

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

/** The controllers a connection dials, in order, until it has tried `n` times (none of them answers). */
async function dialOrder(controllers: string[], random: () => number, n: number): Promise<string[]> {
  const { caCertPem } = await ensureTls({ dataDir: mkdtempSync(path.join(tmpdir(), 'opsc-conn-')) })
  const tried: string[] = []
  const noop = () => {}
  const connection: ControllerConnection = new ControllerConnection({
    agentId: '00000000-0000-4000-8000-000000000000',
    controllers,
    caCertPem,
    identityKey: generateEd25519KeyPair().privateKey,
    log: pino({ level: 'silent' }),
    backoffBaseMs: 1,
    backoffCapMs: 1,
    random,
    onState: ({ controller }) => {
      tried.push(controller)
      if (tried.length >= n) connection.stop()
    },
    handlers: {
      inFlight: () => [],
      running: () => [],
      signingKeyIds: () => [],
      onReady: noop,
      onAssignment: noop,
      onCancel: noop,
      onFileChunk: noop,
      onOutputAck: noop,
      onResultAck: noop,
      onSigningKeys: noop,
      onDisconnected: noop,
    },
  })
  await connection.run()
  return tried
}

test('several controllers: the first is picked at random (a fleet spreads), then each failure moves on to the next', async () => {
  // Loopback ports nothing listens on: every session fails at once.
  const controllers = ['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3']
  assert.deepEqual(await dialOrder(controllers, () => 0, 4), ['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3', '127.0.0.1:1'])
  assert.deepEqual(await dialOrder(controllers, () => 0.7, 4), ['127.0.0.1:3', '127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3'])
  assert.deepEqual(await dialOrder(controllers, () => 0.999, 2), ['127.0.0.1:3', '127.0.0.1:1'])
  assert.deepEqual(await dialOrder(['127.0.0.1:1'], () => 0.5, 2), ['127.0.0.1:1', '127.0.0.1:1'])
})

test('after a lost session: a random controller other than the one just used', () => {
  // Three controllers, the session on #1 lost: #2 or #0, never #1 again first.
  assert.equal(nextAfterLostSession(1, 3, () => 0), 2)
  assert.equal(nextAfterLostSession(1, 3, () => 0.49), 2)
  assert.equal(nextAfterLostSession(1, 3, () => 0.5), 0)
  assert.equal(nextAfterLostSession(1, 3, () => 0.999999), 0)
  assert.equal(nextAfterLostSession(2, 3, () => 0), 0)
  const seen = new Set(Array.from({ length: 200 }, () => nextAfterLostSession(4, 5)))
  assert.deepEqual([...seen].sort(), [0, 1, 2, 3])
  assert.equal(nextAfterLostSession(0, 2, () => 0.9), 1)
  assert.equal(nextAfterLostSession(0, 1, () => 0.9), 0)
})
