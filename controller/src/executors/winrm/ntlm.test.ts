import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { authenticateMessage, CLIENT_FLAGS, encodeAvPairs, negotiateMessage, NTLM, ntlmv2Response, ntowfv2, parseAvPairs, parseChallenge, splitUser } from './ntlm.ts'
import { rc4 } from './rc4.ts'
import { NtlmSession, SignatureError } from './seal.ts'

// MS-NLMP 4.2.4 (NTLMv2 authentication) test vectors.
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const V = {
  user: 'User',
  domain: 'Domain',
  password: 'Password',
  serverChallenge: hex('01 23 45 67 89 ab cd ef'),
  clientChallenge: hex('aa aa aa aa aa aa aa aa'),
  randomSessionKey: hex('55 55 55 55 55 55 55 55 55 55 55 55 55 55 55 55'),
  time: Buffer.alloc(8),
  flags: 0xe28a8233,
  targetInfo: encodeAvPairs([
    { id: 2, value: Buffer.from('Domain', 'utf16le') },
    { id: 1, value: Buffer.from('Server', 'utf16le') },
  ]),
}

function challengeMessage(flags: number, targetInfo: Buffer): Buffer {
  const head = Buffer.alloc(56)
  head.write('NTLMSSP\0', 0, 'latin1')
  head.writeUInt32LE(2, 8)
  const name = Buffer.from('Server', 'utf16le')
  head.writeUInt16LE(name.length, 12)
  head.writeUInt16LE(name.length, 14)
  head.writeUInt32LE(56, 16)
  head.writeUInt32LE(flags >>> 0, 20)
  V.serverChallenge.copy(head, 24)
  head.writeUInt16LE(targetInfo.length, 40)
  head.writeUInt16LE(targetInfo.length, 42)
  head.writeUInt32LE(56 + name.length, 44)
  return Buffer.concat([head, name, targetInfo])
}

describe('NTLMv2 (MS-NLMP 4.2.4)', () => {
  it('computes NTOWFv2', () => {
    assert.equal(ntowfv2(V.password, V.user, V.domain).toString('hex'), '0c868a403bfd7a93a3001ef22ef02e3f')
  })

  it('computes NTProofStr, the LMv2 response and the session base key', () => {
    const r = ntlmv2Response({ responseKey: ntowfv2(V.password, V.user, V.domain), serverChallenge: V.serverChallenge, clientChallenge: V.clientChallenge, time: V.time, targetInfo: V.targetInfo, sendLm: true })
    assert.equal(r.ntProofStr.toString('hex'), '68cd0ab851e51c96aabc927bebef6a1c')
    assert.equal(r.lmChallengeResponse.toString('hex'), '86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa')
    assert.equal(r.sessionBaseKey.toString('hex'), '8de40ccadbc14a82f15cb0ad0de95ca3')
    assert.equal(rc4(r.sessionBaseKey, V.randomSessionKey).toString('hex'), 'c5dad2544fc9799094ce1ce90bc9d03e')
  })

  it('builds an AUTHENTICATE message whose fields carry those values', () => {
    const challenge = parseChallenge(challengeMessage(V.flags, V.targetInfo))
    assert.equal(challenge.targetName, 'Server')
    assert.deepEqual(challenge.serverChallenge, V.serverChallenge)
    const auth = authenticateMessage({ negotiate: negotiateMessage(), challenge, username: V.user, password: V.password, domain: V.domain, clientChallenge: V.clientChallenge, exportedSessionKey: V.randomSessionKey, time: V.time })
    const m = auth.message
    const fieldAt = (at: number) => m.subarray(m.readUInt32LE(at + 4), m.readUInt32LE(at + 4) + m.readUInt16LE(at))
    assert.equal(fieldAt(12).toString('hex'), '86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa')
    assert.equal(fieldAt(20).subarray(0, 16).toString('hex'), '68cd0ab851e51c96aabc927bebef6a1c')
    assert.equal(fieldAt(28).toString('utf16le'), 'Domain')
    assert.equal(fieldAt(36).toString('utf16le'), 'User')
    assert.equal(fieldAt(52).toString('hex'), 'c5dad2544fc9799094ce1ce90bc9d03e')
    assert.equal(m.readUInt32LE(60), (CLIENT_FLAGS & V.flags) >>> 0)
    assert.deepEqual(auth.exportedSessionKey, V.randomSessionKey)
    assert.ok(m.subarray(72, 88).equals(Buffer.alloc(16)), 'no MIC without a server timestamp')
  })

  it('adds a MIC and MsvAvFlags, and sends no LMv2, when the server sends a timestamp', () => {
    const info = encodeAvPairs([...parseAvPairs(V.targetInfo), { id: 7, value: Buffer.from('0102030405060708', 'hex') }])
    const challenge = parseChallenge(challengeMessage(V.flags, info))
    const auth = authenticateMessage({ negotiate: negotiateMessage(), challenge, username: V.user, password: V.password, domain: V.domain })
    const m = auth.message
    assert.ok(!m.subarray(72, 88).equals(Buffer.alloc(16)))
    const lm = m.subarray(m.readUInt32LE(16), m.readUInt32LE(16) + m.readUInt16LE(12))
    assert.ok(lm.equals(Buffer.alloc(24)))
    const nt = m.subarray(m.readUInt32LE(24), m.readUInt32LE(24) + m.readUInt16LE(20))
    const pairs = parseAvPairs(nt.subarray(16 + 28))
    assert.equal(pairs.find((p) => p.id === 6)?.value.readUInt32LE(0), 2)
    assert.equal(nt.subarray(16 + 8, 16 + 16).toString('hex'), '0102030405060708')
  })

  it('refuses a server without extended session security', () => {
    const challenge = parseChallenge(challengeMessage(V.flags & ~NTLM.EXTENDED_SESSIONSECURITY, V.targetInfo))
    assert.throws(() => authenticateMessage({ negotiate: negotiateMessage(), challenge, username: 'u', password: 'p', domain: '' }), /extended session security/)
  })

  it('rejects garbage as a challenge', () => {
    assert.throws(() => parseChallenge(Buffer.from('HTTP/1.1 401')), /CHALLENGE/)
  })

  it('splits DOMAIN\\user but keeps a UPN whole', () => {
    assert.deepEqual(splitUser('CORP\\alice', undefined), { user: 'alice', domain: 'CORP' })
    assert.deepEqual(splitUser('alice@corp.example', undefined), { user: 'alice@corp.example', domain: '' })
    assert.deepEqual(splitUser('alice', 'CORP'), { user: 'alice', domain: 'CORP' })
  })
})

describe('NTLM session security (MS-NLMP 4.2.4.4)', () => {
  it('seals and signs "Plaintext" with the test vector keys', () => {
    const session = new NtlmSession(V.randomSessionKey, V.flags)
    const { sealed, signature } = session.seal(Buffer.from('Plaintext', 'utf16le'))
    assert.equal(sealed.toString('hex'), '54e50165bf1936dc996020c1811b0f06fb5f')
    assert.equal(signature.toString('hex'), '010000007fb38ec5c55d497600000000')
  })

  it('round-trips messages in sequence with a mirrored server session and detects tampering', () => {
    const key = V.randomSessionKey
    const client = new NtlmSession(key, V.flags)
    const server = new NtlmSession(key, V.flags, 'server')
    for (const text of ['first', 'second message', 'third']) {
      const out = server.seal(Buffer.from(text))
      assert.equal(client.unseal(out.sealed, out.signature).toString(), text)
      const back = client.seal(Buffer.from(text))
      assert.equal(server.unseal(back.sealed, back.signature).toString(), text)
    }
    const bad = server.seal(Buffer.from('tampered'))
    bad.sealed[0]! ^= 1
    assert.throws(() => client.unseal(bad.sealed, bad.signature), SignatureError)
  })
})
