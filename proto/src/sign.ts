import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto'
import { create, fromBinary } from '@bufbuild/protobuf'
import { AssignmentSchema, SignedAssignmentSchema, type Assignment, type SignedAssignment } from '../gen/opsconductor/agent/v1/run_pb.ts'

// Ed25519 keys in DER are a fixed prefix followed by the 32 raw bytes (RFC 8410).
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SIGNATURE_BYTES = 64

/** Default tolerance between controller and agent clocks when checking validity windows. */
export const DEFAULT_CLOCK_SKEW_MS = 30_000

/** Why an agent refuses a signed assignment. */
export type RefusalReason = 'bad_signature' | 'unknown_key' | 'wrong_agent' | 'expired' | 'not_yet_valid' | 'replayed' | 'malformed'

export type VerifyResult = { ok: true; assignment: Assignment } | { ok: false; reason: RefusalReason; assignmentId?: string }

export interface VerifyOptions {
  /** Controller signing keys the agent accepts, by key id. */
  publicKeys: ReadonlyMap<string, KeyObject>
  /** The verifying agent's own id. */
  agentId: string
  /** Current time, Unix milliseconds. */
  now: number
  clockSkewMs?: number
  /** True when the assignment id is already in the agent's journal. */
  isJournaled?: (assignmentId: string) => boolean
}

/** Signs serialized Assignment bytes with the controller's Ed25519 key (node:crypto; tweetnacl-compatible). */
export function signAssignment(privateKey: KeyObject, keyId: string, assignmentBytes: Uint8Array): SignedAssignment {
  const signature = sign(null, assignmentBytes, privateKey)
  return create(SignedAssignmentSchema, { assignment: assignmentBytes, signature: new Uint8Array(signature), keyId })
}

/**
 * Verifies a signed assignment for this agent. The signature is checked over the raw bytes
 * before they are decoded, then the binding: key id, agent id, validity window and journal.
 * An unknown action case is not a refusal here: the runner rejects it as unsupported.
 */
export function verifySignedAssignment(signed: SignedAssignment, opts: VerifyOptions): VerifyResult {
  const key = opts.publicKeys.get(signed.keyId)
  if (!key) return { ok: false, reason: 'unknown_key' }
  if (signed.signature.length !== SIGNATURE_BYTES || !verifyEd25519(key, signed.assignment, signed.signature)) {
    return { ok: false, reason: 'bad_signature' }
  }
  let assignment: Assignment
  try {
    assignment = fromBinary(AssignmentSchema, signed.assignment)
  } catch {
    return { ok: false, reason: 'malformed' }
  }
  const assignmentId = assignment.assignmentId
  if (!assignmentId || !assignment.agentId || assignment.expiresAtUnixMs <= 0n || assignment.keyId !== signed.keyId) {
    return { ok: false, reason: 'malformed', ...(assignmentId ? { assignmentId } : {}) }
  }
  if (assignment.agentId !== opts.agentId) return { ok: false, reason: 'wrong_agent', assignmentId }
  const skew = BigInt(opts.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS)
  const now = BigInt(Math.floor(opts.now))
  if (now + skew < assignment.notBeforeUnixMs) return { ok: false, reason: 'not_yet_valid', assignmentId }
  if (now - skew > assignment.expiresAtUnixMs) return { ok: false, reason: 'expired', assignmentId }
  if (opts.isJournaled?.(assignmentId)) return { ok: false, reason: 'replayed', assignmentId }
  return { ok: true, assignment }
}

function verifyEd25519(key: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify(null, message, key, signature)
  } catch {
    return false // a key of the wrong type is a failed verification, not a crash
  }
}

/** A fresh Ed25519 key pair, with the raw 32-byte public key the wire carries. */
export function generateEd25519KeyPair(): { privateKey: KeyObject; publicKey: KeyObject; publicKeyRaw: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return { privateKey, publicKey, publicKeyRaw: exportEd25519PublicKey(publicKey) }
}

/** The raw 32-byte Ed25519 public key (RFC 8032 encoding, as tweetnacl uses) of a node:crypto key. */
export function exportEd25519PublicKey(publicKey: KeyObject): Uint8Array {
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new TypeError(`expected an ed25519 key, got ${publicKey.asymmetricKeyType}`)
  const der = publicKey.export({ format: 'der', type: 'spki' })
  return new Uint8Array(der.subarray(SPKI_PREFIX.length))
}

/** A node:crypto public key from a raw 32-byte Ed25519 public key. */
export function importEd25519PublicKey(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new TypeError(`an Ed25519 public key is 32 bytes, got ${raw.length}`)
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' })
}

/** A node:crypto private key from a 32-byte Ed25519 seed (the first half of a tweetnacl secret key). */
export function importEd25519PrivateKey(seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw new TypeError(`an Ed25519 seed is 32 bytes, got ${seed.length}`)
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
}

/** The 32-byte seed of a node:crypto Ed25519 private key (for storage; tweetnacl's secret key is seed ‖ public key). */
export function exportEd25519PrivateKey(privateKey: KeyObject): Uint8Array {
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new TypeError(`expected an ed25519 key, got ${privateKey.asymmetricKeyType}`)
  const der = privateKey.export({ format: 'der', type: 'pkcs8' })
  return new Uint8Array(der.subarray(PKCS8_PREFIX.length))
}

// Domain separation: an identity signature over a challenge can never be mistaken for anything else.
const CHALLENGE_CONTEXT = new TextEncoder().encode('opsconductor.agent.v1/connect-challenge\0')

/** What a Connect ChallengeResponse signs. */
export interface ChallengeInput {
  agentId: string
  /** Challenge.nonce as the controller sent it. */
  nonce: Uint8Array
  /** ChallengeResponse.signed_at_unix_ms. */
  signedAtUnixMs: number
  /** The TLS session's channel binding (RFC 9266 tls-exporter), computed by each side locally, never sent. */
  channelBinding: Uint8Array
}

/** The bytes a ChallengeResponse signature covers: context ‖ len-prefixed agent id, nonce, binding ‖ signed-at. */
export function challengeTranscript(input: ChallengeInput): Uint8Array {
  const lengthPrefixed = (bytes: Uint8Array) => {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(bytes.length)
    return [len, bytes]
  }
  const signedAt = Buffer.alloc(8)
  signedAt.writeBigInt64BE(BigInt(Math.floor(input.signedAtUnixMs)))
  return new Uint8Array(
    Buffer.concat([
      CHALLENGE_CONTEXT,
      ...lengthPrefixed(new TextEncoder().encode(input.agentId)),
      ...lengthPrefixed(input.nonce),
      ...lengthPrefixed(input.channelBinding),
      signedAt,
    ]),
  )
}

/** The agent's ChallengeResponse signature, made with its Ed25519 identity key. */
export function signChallenge(identityKey: KeyObject, input: ChallengeInput): Uint8Array {
  return new Uint8Array(sign(null, challengeTranscript(input), identityKey))
}

/** The controller's check of a ChallengeResponse against the agent's enrolled identity key and its own clock. */
export function verifyChallengeResponse(
  identityPublicKey: KeyObject,
  input: ChallengeInput & { signature: Uint8Array },
  opts: { now: number; clockSkewMs?: number },
): { ok: true } | { ok: false; reason: 'bad_signature' | 'stale' } {
  if (input.signature.length !== SIGNATURE_BYTES || !verifyEd25519(identityPublicKey, challengeTranscript(input), input.signature)) {
    return { ok: false, reason: 'bad_signature' }
  }
  if (Math.abs(opts.now - input.signedAtUnixMs) > (opts.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS)) return { ok: false, reason: 'stale' }
  return { ok: true }
}
