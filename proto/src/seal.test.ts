import assert from 'node:assert/strict'
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync } from 'node:crypto'
import { describe, test } from 'node:test'
import nacl from 'tweetnacl'
import { generateBoxKeyPair, isUsableBoxPublicKey, openSealed, sealForAgent } from './seal.ts'

const agent = generateBoxKeyPair()
const binding = { assignmentId: 'asg-1', name: 'DB_PASSWORD' }
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)
const flip = (bytes: Uint8Array, at: number) => Uint8Array.from(bytes, (b, i) => (i === at ? b ^ 1 : b))

describe('sealed secrets', () => {
  test('a secret sealed to the agent opens with its key, for its assignment', () => {
    const sealed = sealForAgent(agent.publicKey, 'hunter2', binding)
    assert.equal(sealed.name, 'DB_PASSWORD')
    assert.equal(sealed.ephemeralPublicKey.length, 32)
    assert.equal(sealed.nonce.length, 24)
    assert.ok(!Buffer.from(sealed.ciphertext).includes('hunter2'))
    const opened = openSealed(agent.secretKey, sealed, 'asg-1')
    assert.ok(opened.ok)
    assert.equal(text(opened.value), 'hunter2')
    const binary = openSealed(agent.secretKey, sealForAgent(agent.publicKey, new Uint8Array([0, 255, 7]), binding), 'asg-1')
    assert.deepEqual(binary, { ok: true, value: new Uint8Array([0, 255, 7]) })
  })

  test('each seal uses a fresh ephemeral key and nonce', () => {
    const a = sealForAgent(agent.publicKey, 'same', binding)
    const b = sealForAgent(agent.publicKey, 'same', binding)
    assert.notDeepEqual(a.ephemeralPublicKey, b.ephemeralPublicKey)
    assert.notDeepEqual(a.nonce, b.nonce)
    assert.notDeepEqual(a.ciphertext, b.ciphertext)
  })

  test('another agent cannot open it', () => {
    const sealed = sealForAgent(agent.publicKey, 'hunter2', binding)
    assert.deepEqual(openSealed(generateBoxKeyPair().secretKey, sealed, 'asg-1'), { ok: false, reason: 'unopenable' })
  })

  test('a tampered ciphertext, nonce or ephemeral key does not open', () => {
    const sealed = sealForAgent(agent.publicKey, 'hunter2', binding)
    const tampered = [
      { ...sealed, ciphertext: flip(sealed.ciphertext, sealed.ciphertext.length - 1) },
      { ...sealed, ciphertext: flip(sealed.ciphertext, 0) }, // the Poly1305 tag
      { ...sealed, nonce: flip(sealed.nonce, 3) },
      { ...sealed, ephemeralPublicKey: generateBoxKeyPair().publicKey },
    ]
    for (const bad of tampered) assert.deepEqual(openSealed(agent.secretKey, bad, 'asg-1'), { ok: false, reason: 'unopenable' })
  })

  test('refuses a secret sealed for another assignment or moved to another name', () => {
    const sealed = sealForAgent(agent.publicKey, 'hunter2', binding)
    assert.deepEqual(openSealed(agent.secretKey, sealed, 'asg-2'), { ok: false, reason: 'wrong_assignment' })
    assert.deepEqual(openSealed(agent.secretKey, { ...sealed, name: 'PATH' }, 'asg-1'), { ok: false, reason: 'wrong_name' })
  })

  test('refuses malformed keys and nonces', () => {
    const sealed = sealForAgent(agent.publicKey, 'hunter2', binding)
    assert.deepEqual(openSealed(agent.secretKey, { ...sealed, nonce: sealed.nonce.subarray(0, 23) }, 'asg-1'), { ok: false, reason: 'malformed' })
    assert.throws(() => sealForAgent(new Uint8Array(31), 'x', binding), /32 bytes/)
  })

  test('the box is a plain nacl.box from the ephemeral key (what the agent opens), and a low-order agent key is refused', () => {
    const sealed = sealForAgent(agent.publicKey, 'hunter2', binding)
    const plaintext = nacl.box.open(sealed.ciphertext, sealed.nonce, sealed.ephemeralPublicKey, agent.secretKey)
    assert.ok(plaintext, 'tweetnacl opens it on its own')
    assert.ok(Buffer.from(plaintext).includes('hunter2'))
    // The all-zero point (and the other low-order ones) would make the shared secret zero: anyone could open the box.
    assert.throws(() => sealForAgent(new Uint8Array(32), 'x', binding), /low-order/)
    const one = new Uint8Array(32)
    one[0] = 1
    assert.throws(() => sealForAgent(one, 'x', binding), /low-order/)
    assert.deepEqual([agent.publicKey, new Uint8Array(32), one, new Uint8Array(31)].map(isUsableBoxPublicKey), [true, false, false, false])
  })
})

describe('X25519 compatibility between node:crypto and tweetnacl', () => {
  const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url')
  const nodePublic = (raw: Uint8Array) => createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64url(raw) }, format: 'jwk' })
  const nodePrivate = (secret: Uint8Array, pub: Uint8Array) =>
    createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', x: b64url(pub), d: b64url(secret) }, format: 'jwk' })

  test('crypto.diffieHellman derives the X25519 secret tweetnacl uses, and nacl.box.before is HSalsa20 of it', () => {
    const alice = nacl.box.keyPair()
    const nodeBob = generateKeyPairSync('x25519')
    const bobJwk = nodeBob.privateKey.export({ format: 'jwk' })
    const bobSecret = Uint8Array.from(Buffer.from(bobJwk.d!, 'base64url'))
    const bobPublic = Uint8Array.from(Buffer.from(bobJwk.x!, 'base64url'))
    // Same key pair on both sides.
    assert.deepEqual(nacl.box.keyPair.fromSecretKey(bobSecret).publicKey, bobPublic)

    const nodeShared = new Uint8Array(diffieHellman({ privateKey: nodeBob.privateKey, publicKey: nodePublic(alice.publicKey) }))
    const nodeSharedOtherWay = new Uint8Array(diffieHellman({ privateKey: nodePrivate(alice.secretKey, alice.publicKey), publicKey: nodeBob.publicKey }))
    assert.deepEqual(nodeShared, nacl.scalarMult(alice.secretKey, bobPublic))
    assert.deepEqual(nodeSharedOtherWay, nodeShared)

    // nacl.box.before(pk, sk) = HSalsa20(key = X25519(sk, pk), input = 0^16, constant "expand 32-byte k").
    const lowlevel = (nacl as unknown as { lowlevel: { crypto_core_hsalsa20(out: Uint8Array, inp: Uint8Array, k: Uint8Array, c: Uint8Array): void } }).lowlevel
    const derived = new Uint8Array(32)
    lowlevel.crypto_core_hsalsa20(derived, new Uint8Array(16), nodeShared, new TextEncoder().encode('expand 32-byte k'))
    assert.deepEqual(derived, nacl.box.before(bobPublic, alice.secretKey))
  })

  test('a secret sealed to a node:crypto X25519 key opens with that key through tweetnacl', () => {
    const { privateKey } = generateKeyPairSync('x25519')
    const jwk = privateKey.export({ format: 'jwk' })
    const sealed = sealForAgent(Uint8Array.from(Buffer.from(jwk.x!, 'base64url')), 'from node keys', binding)
    const opened = openSealed(Uint8Array.from(Buffer.from(jwk.d!, 'base64url')), sealed, 'asg-1')
    assert.ok(opened.ok)
    assert.equal(text(opened.value), 'from node keys')
  })
})
