import { create, fromBinary, toBinary } from '@bufbuild/protobuf'
import nacl from 'tweetnacl'
import { SealedSecretSchema, SecretEnvelopeSchema, type SealedSecret, type SecretEnvelope } from '../gen/opsconductor/agent/v1/run_pb.ts'

/** What a sealed secret is bound to: nacl.box has no associated data, so these travel inside the ciphertext. */
export interface SecretBinding {
  assignmentId: string
  /** The secret's name (the environment variable an exec action sees); also sent in clear. */
  name: string
}

/** Why a sealed secret does not open: `unopenable` covers both tampering and the wrong recipient (box cannot tell them apart). */
export type OpenFailure = 'unopenable' | 'malformed' | 'wrong_assignment' | 'wrong_name'

export type OpenResult = { ok: true; value: Uint8Array } | { ok: false; reason: OpenFailure }

/** A fresh X25519 key pair for nacl.box (raw 32-byte keys); the agent's is made at enrollment. */
export function generateBoxKeyPair(): { publicKey: Uint8Array; secretKey: Uint8Array } {
  return nacl.box.keyPair()
}

/**
 * Seals a secret to an agent's X25519 public key with nacl.box from a one-time ephemeral key,
 * so only that agent can open it and the sender keeps no key that could. The plaintext is a
 * SecretEnvelope carrying the assignment id and name, which openSealed checks.
 */
export function sealForAgent(agentPublicKey: Uint8Array, value: Uint8Array | string, binding: SecretBinding): SealedSecret {
  if (agentPublicKey.length !== nacl.box.publicKeyLength) throw new TypeError(`an X25519 public key is 32 bytes, got ${agentPublicKey.length}`)
  const envelope = toBinary(
    SecretEnvelopeSchema,
    create(SecretEnvelopeSchema, {
      assignmentId: binding.assignmentId,
      name: binding.name,
      value: typeof value === 'string' ? new TextEncoder().encode(value) : value,
    }),
  )
  const ephemeral = nacl.box.keyPair()
  const nonce = nacl.randomBytes(nacl.box.nonceLength)
  const ciphertext = nacl.box(envelope, nonce, agentPublicKey, ephemeral.secretKey)
  ephemeral.secretKey.fill(0)
  envelope.fill(0)
  return create(SealedSecretSchema, { name: binding.name, ephemeralPublicKey: ephemeral.publicKey, nonce, ciphertext })
}

/** Opens a secret sealed to this agent, and refuses it unless it was sealed for this assignment under its own name. */
export function openSealed(agentSecretKey: Uint8Array, sealed: SealedSecret, expectedAssignmentId: string): OpenResult {
  if (sealed.ephemeralPublicKey.length !== nacl.box.publicKeyLength || sealed.nonce.length !== nacl.box.nonceLength) {
    return { ok: false, reason: 'malformed' }
  }
  const plaintext = nacl.box.open(sealed.ciphertext, sealed.nonce, sealed.ephemeralPublicKey, agentSecretKey)
  if (!plaintext) return { ok: false, reason: 'unopenable' }
  let envelope: SecretEnvelope
  try {
    envelope = fromBinary(SecretEnvelopeSchema, plaintext)
  } catch {
    plaintext.fill(0)
    return { ok: false, reason: 'malformed' }
  }
  // Decoded bytes fields are views into the plaintext: copy the value out, then wipe the plaintext.
  const value = envelope.value.slice()
  plaintext.fill(0)
  if (envelope.assignmentId !== expectedAssignmentId) return { ok: false, reason: 'wrong_assignment' }
  if (envelope.name !== sealed.name) return { ok: false, reason: 'wrong_name' }
  return { ok: true, value }
}
