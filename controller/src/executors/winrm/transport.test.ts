import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { WinrmError } from './errors.ts'
import { NTLM } from './ntlm.ts'
import { NtlmSession } from './seal.ts'
import { challengeToken, unframeEncrypted, WinrmTransport } from './transport.ts'

const FLAGS = NTLM.KEY_EXCH | NTLM.SEAL | NTLM.SIGN | NTLM.EXTENDED_SESSIONSECURITY | NTLM.N128

/** A body as Windows frames it (MS-WSMV 2.2.9.1.1): one part per message. */
function frame(server: NtlmSession, ...messages: string[]): Buffer {
  const parts = messages.map((m) => {
    const plain = Buffer.from(m)
    const { sealed, signature } = server.seal(plain)
    const len = Buffer.alloc(4)
    len.writeUInt32LE(16)
    return Buffer.concat([
      Buffer.from(`--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=${plain.length}\r\n--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n`),
      len,
      signature,
      sealed,
    ])
  })
  return Buffer.concat([...parts, Buffer.from('--Encrypted Boundary--\r\n')])
}

describe('WinRM transport framing', () => {
  it('unseals multipart/encrypted answers part by part, in sequence', () => {
    const key = randomBytes(16)
    const client = new NtlmSession(key, FLAGS)
    const server = new NtlmSession(key, FLAGS, 'server')
    assert.equal(unframeEncrypted(frame(server, '<s:Envelope>one</s:Envelope>'), client).toString(), '<s:Envelope>one</s:Envelope>')
    assert.equal(unframeEncrypted(frame(server, '<a/>', '<b/>'), client).toString(), '<a/><b/>')
  })

  it('rejects a tampered or truncated answer as a protocol error', () => {
    const key = randomBytes(16)
    const client = new NtlmSession(key, FLAGS)
    const server = new NtlmSession(key, FLAGS, 'server')
    const body = frame(server, '<s:Envelope>secret</s:Envelope>')
    body[body.length - 30]! ^= 0xff
    assert.throws(() => unframeEncrypted(body, client), (err) => err instanceof WinrmError && err.kind === 'protocol')
    assert.throws(() => unframeEncrypted(Buffer.from('--Encrypted Boundary--\r\n'), client), (err) => err instanceof WinrmError && err.kind === 'protocol')
  })

  it('finds the NTLM challenge among offered schemes', () => {
    const token = Buffer.from('NTLMSSP\0challenge').toString('base64')
    assert.equal(challengeToken(`Basic realm="WSMAN", Negotiate ${token}`, 'Negotiate')?.toString(), 'NTLMSSP\0challenge')
    assert.equal(challengeToken('Negotiate, Basic realm="WSMAN"', 'Negotiate'), undefined)
  })

  it('refuses Basic over plain HTTP before sending anything', () => {
    assert.throws(() => new WinrmTransport({ https: false, host: 'h', port: 5985, auth: 'basic', username: 'u', password: 'p', verifyTls: true }), (err) => err instanceof WinrmError && err.kind === 'config' && !err.message.includes('p:'))
  })
})
