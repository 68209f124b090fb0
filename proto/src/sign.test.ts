import assert from 'node:assert/strict'
import { sign, verify } from 'node:crypto'
import { describe, test } from 'node:test'
import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf'
import nacl from 'tweetnacl'
import { AssignmentSchema, Shell, SignedAssignmentSchema } from '../gen/opsconductor/agent/v1/run_pb.ts'
import {
  challengeTranscript,
  exportEd25519PrivateKey,
  exportEd25519PublicKey,
  generateEd25519KeyPair,
  importEd25519PrivateKey,
  importEd25519PublicKey,
  signAssignment,
  signChallenge,
  verifyChallengeResponse,
  verifySignedAssignment,
  type VerifyOptions,
} from './sign.ts'

const NOW = 1_700_000_000_000
const controller = generateEd25519KeyPair()
const publicKeys = new Map([['k1', controller.publicKey]])
const options: VerifyOptions = { publicKeys, agentId: 'agent-1', now: NOW }

function assignmentBytes(overrides: MessageInitShape<typeof AssignmentSchema> = {}): Uint8Array {
  return toBinary(
    AssignmentSchema,
    create(AssignmentSchema, {
      assignmentId: 'asg-1',
      agentId: 'agent-1',
      runId: 'run-1',
      stepId: 'step-1',
      issuedAtUnixMs: BigInt(NOW),
      notBeforeUnixMs: BigInt(NOW - 1000),
      expiresAtUnixMs: BigInt(NOW + 60_000),
      keyId: 'k1',
      action: { case: 'exec', value: { command: { case: 'script', value: { shell: Shell.BASH, script: 'uptime' } }, env: { A: '1' } } },
      ...overrides,
    }),
  )
}

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'))

describe('signed assignments', () => {
  test('a signed assignment verifies and decodes to what was signed', () => {
    const signed = signAssignment(controller.privateKey, 'k1', assignmentBytes())
    assert.equal(signed.signature.length, 64)
    const result = verifySignedAssignment(signed, options)
    assert.ok(result.ok)
    assert.equal(result.assignment.assignmentId, 'asg-1')
    assert.equal(result.assignment.action.case, 'exec')
    assert.equal(result.assignment.action.value.env['A'], '1')
  })

  test('refuses a flipped byte in the assignment or the signature, and a truncated signature', () => {
    const signed = signAssignment(controller.privateKey, 'k1', assignmentBytes())
    const tamperedBody = { ...signed, assignment: Uint8Array.from(signed.assignment, (b, i) => (i === 5 ? b ^ 1 : b)) }
    const tamperedSig = { ...signed, signature: Uint8Array.from(signed.signature, (b, i) => (i === 0 ? b ^ 1 : b)) }
    const truncated = { ...signed, signature: signed.signature.subarray(0, 63) }
    for (const bad of [tamperedBody, tamperedSig, truncated]) {
      assert.deepEqual(verifySignedAssignment(bad, options), { ok: false, reason: 'bad_signature' })
    }
  })

  test('refuses a signature by another key under a known key id', () => {
    const other = generateEd25519KeyPair()
    const signed = signAssignment(other.privateKey, 'k1', assignmentBytes())
    assert.deepEqual(verifySignedAssignment(signed, options), { ok: false, reason: 'bad_signature' })
  })

  test('refuses a key id the agent does not know', () => {
    const signed = signAssignment(controller.privateKey, 'k2', assignmentBytes({ keyId: 'k2' }))
    assert.deepEqual(verifySignedAssignment(signed, options), { ok: false, reason: 'unknown_key' })
  })

  test("refuses another agent's assignment", () => {
    const signed = signAssignment(controller.privateKey, 'k1', assignmentBytes({ agentId: 'agent-2' }))
    assert.deepEqual(verifySignedAssignment(signed, options), { ok: false, reason: 'wrong_agent', assignmentId: 'asg-1' })
  })

  test('refuses an assignment outside its validity window, allowing for clock skew', () => {
    const window = { notBeforeUnixMs: BigInt(NOW + 10_000), expiresAtUnixMs: BigInt(NOW + 20_000) }
    const signed = signAssignment(controller.privateKey, 'k1', assignmentBytes(window))
    const at = (now: number) => verifySignedAssignment(signed, { ...options, now, clockSkewMs: 5_000 })
    assert.deepEqual(at(NOW + 4_999), { ok: false, reason: 'not_yet_valid', assignmentId: 'asg-1' })
    assert.equal(at(NOW + 5_000).ok, true)
    assert.equal(at(NOW + 25_000).ok, true)
    assert.deepEqual(at(NOW + 25_001), { ok: false, reason: 'expired', assignmentId: 'asg-1' })
  })

  test('refuses an assignment id already in the journal', () => {
    const signed = signAssignment(controller.privateKey, 'k1', assignmentBytes())
    const journal = new Set(['asg-1'])
    const result = verifySignedAssignment(signed, { ...options, isJournaled: (id) => journal.has(id) })
    assert.deepEqual(result, { ok: false, reason: 'replayed', assignmentId: 'asg-1' })
  })

  test('refuses signed bytes that are not a complete assignment', () => {
    const cases = [
      hex('ffffffff'), // not protobuf
      assignmentBytes({ expiresAtUnixMs: 0n }), // every assignment must expire
      assignmentBytes({ assignmentId: '' }),
      assignmentBytes({ keyId: 'k9' }), // inner key id must match the envelope's
    ]
    for (const bytes of cases) {
      const result = verifySignedAssignment(signAssignment(controller.privateKey, 'k1', bytes), options)
      assert.equal(result.ok, false)
      assert.equal(!result.ok && result.reason, 'malformed')
    }
  })

  test('accepts any of several keys during a rotation', () => {
    const next = generateEd25519KeyPair()
    const keys = new Map([...publicKeys, ['k2', next.publicKey]])
    const signed = signAssignment(next.privateKey, 'k2', assignmentBytes({ keyId: 'k2' }))
    assert.equal(verifySignedAssignment(signed, { ...options, publicKeys: keys }).ok, true)
  })
})

describe('Ed25519 keys and compatibility with tweetnacl', () => {
  test('raw public and private keys round-trip through node:crypto', () => {
    const raw = exportEd25519PublicKey(controller.publicKey)
    assert.equal(raw.length, 32)
    assert.deepEqual(raw, controller.publicKeyRaw)
    assert.deepEqual(exportEd25519PublicKey(importEd25519PublicKey(raw)), raw)
    const seed = exportEd25519PrivateKey(controller.privateKey)
    const signature = sign(null, Buffer.from('x'), importEd25519PrivateKey(seed))
    assert.ok(verify(null, Buffer.from('x'), controller.publicKey, signature))
    assert.throws(() => importEd25519PublicKey(new Uint8Array(31)), /32 bytes/)
  })

  test('a node:crypto signature verifies with tweetnacl, and a tweetnacl signature with node:crypto', () => {
    const message = assignmentBytes()
    const signed = signAssignment(controller.privateKey, 'k1', message)
    assert.ok(nacl.sign.detached.verify(message, signed.signature, controller.publicKeyRaw))

    const naclKeys = nacl.sign.keyPair()
    const naclMessage = assignmentBytes({ keyId: 'n1' })
    const naclSignature = nacl.sign.detached(naclMessage, naclKeys.secretKey)
    const fromNacl = create(SignedAssignmentSchema, { assignment: naclMessage, signature: naclSignature, keyId: 'n1' })
    const nodeKeys = new Map([['n1', importEd25519PublicKey(naclKeys.publicKey)]])
    assert.equal(verifySignedAssignment(fromNacl, { ...options, publicKeys: nodeKeys }).ok, true)
    // The same seed gives the same key pair and the same (deterministic) signature on both sides.
    const nodePrivate = importEd25519PrivateKey(naclKeys.secretKey.subarray(0, 32))
    assert.deepEqual(new Uint8Array(sign(null, naclMessage, nodePrivate)), naclSignature)
  })

  test('RFC 8032 test vector 1 (empty message) with node:crypto', () => {
    const seed = hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60')
    const publicKey = hex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a')
    const signature = hex(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    )
    const privateKey = importEd25519PrivateKey(seed)
    assert.deepEqual(new Uint8Array(sign(null, new Uint8Array(0), privateKey)), signature)
    assert.ok(verify(null, new Uint8Array(0), importEd25519PublicKey(publicKey), signature))
    assert.ok(nacl.sign.detached.verify(new Uint8Array(0), signature, publicKey))
  })
})

describe('Connect challenge', () => {
  const agent = generateEd25519KeyPair()
  const input = { agentId: 'agent-1', nonce: new Uint8Array(32).fill(7), signedAtUnixMs: NOW, channelBinding: new Uint8Array(32).fill(9) }

  test('a challenge signed by the agent identity key verifies on the same TLS session', () => {
    const signature = signChallenge(agent.privateKey, input)
    assert.deepEqual(verifyChallengeResponse(agent.publicKey, { ...input, signature }, { now: NOW + 1000 }), { ok: true })
    assert.ok(nacl.sign.detached.verify(challengeTranscript(input), signature, agent.publicKeyRaw))
  })

  test('refuses a response for another session, nonce, agent or key, and a stale one', () => {
    const signature = signChallenge(agent.privateKey, input)
    const check = (changed: Partial<typeof input>, key = agent.publicKey) =>
      verifyChallengeResponse(key, { ...input, ...changed, signature }, { now: NOW })
    assert.deepEqual(check({ channelBinding: new Uint8Array(32).fill(8) }), { ok: false, reason: 'bad_signature' })
    assert.deepEqual(check({ nonce: new Uint8Array(32) }), { ok: false, reason: 'bad_signature' })
    assert.deepEqual(check({ agentId: 'agent-2' }), { ok: false, reason: 'bad_signature' })
    assert.deepEqual(check({}, generateEd25519KeyPair().publicKey), { ok: false, reason: 'bad_signature' })
    const old = { ...input, signedAtUnixMs: NOW - 31_000 }
    assert.deepEqual(
      verifyChallengeResponse(agent.publicKey, { ...old, signature: signChallenge(agent.privateKey, old) }, { now: NOW }),
      { ok: false, reason: 'stale' },
    )
  })

  test('length prefixes keep field boundaries unambiguous', () => {
    const a = challengeTranscript({ ...input, agentId: 'ab', nonce: new Uint8Array([1]) })
    const b = challengeTranscript({ ...input, agentId: 'a', nonce: new Uint8Array([98, 1]) })
    assert.notDeepEqual(a, b)
  })
})
