import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { NTLM } from './ntlm.ts'
import { Rc4 } from './rc4.ts'

/*
 * NTLM session security (MS-NLMP 3.4): per-direction signing and sealing keys derived from the
 * exported session key, one RC4 keystream per direction for the whole connection, and a sequence
 * number per direction. Only extended session security with 128-bit keys is supported.
 */

const magic = (s: string) => Buffer.from(`session key to ${s} key magic constant\0`, 'latin1')

export function signKey(exportedSessionKey: Buffer, side: 'client' | 'server'): Buffer {
  return createHash('md5').update(exportedSessionKey).update(magic(side === 'client' ? 'client-to-server signing' : 'server-to-client signing')).digest()
}

export function sealKey(exportedSessionKey: Buffer, side: 'client' | 'server'): Buffer {
  return createHash('md5').update(exportedSessionKey).update(magic(side === 'client' ? 'client-to-server sealing' : 'server-to-client sealing')).digest()
}

export class SignatureError extends Error {
  constructor(message: string) {
    super(message)
    this.name = new.target.name
  }
}

export class NtlmSession {
  private readonly outSign: Buffer
  private readonly inSign: Buffer
  private readonly outSeal: Rc4
  private readonly inSeal: Rc4
  private readonly keyExch: boolean
  private seqOut = 0
  private seqIn = 0

  /** `side: 'server'` swaps the directions (for tests that play the server). */
  constructor(exportedSessionKey: Buffer, flags: number, side: 'client' | 'server' = 'client') {
    const other = side === 'client' ? 'server' : 'client'
    this.outSign = signKey(exportedSessionKey, side)
    this.inSign = signKey(exportedSessionKey, other)
    this.outSeal = new Rc4(sealKey(exportedSessionKey, side))
    this.inSeal = new Rc4(sealKey(exportedSessionKey, other))
    this.keyExch = (flags & NTLM.KEY_EXCH) !== 0
  }

  private checksum(key: Buffer, seq: number, message: Buffer, rc: Rc4): Buffer {
    const seqBuf = Buffer.alloc(4)
    seqBuf.writeUInt32LE(seq >>> 0)
    const mac = createHmac('md5', key).update(seqBuf).update(message).digest().subarray(0, 8)
    return this.keyExch ? rc.update(mac) : Buffer.from(mac)
  }

  /** Encrypts `message` and returns it with its 16-byte signature. */
  seal(message: Buffer): { sealed: Buffer; signature: Buffer } {
    const sealed = this.outSeal.update(message)
    const seq = this.seqOut++
    const signature = Buffer.alloc(16)
    signature.writeUInt32LE(1, 0)
    this.checksum(this.outSign, seq, message, this.outSeal).copy(signature, 4)
    signature.writeUInt32LE(seq >>> 0, 12)
    return { sealed, signature }
  }

  /** Decrypts a message from the server and checks its signature and sequence number. */
  unseal(sealed: Buffer, signature: Buffer): Buffer {
    if (signature.length !== 16 || signature.readUInt32LE(0) !== 1) throw new SignatureError('bad NTLM message signature')
    const message = this.inSeal.update(sealed)
    const seq = this.seqIn++
    const expected = this.checksum(this.inSign, seq, message, this.inSeal)
    if (signature.readUInt32LE(12) !== seq >>> 0) throw new SignatureError('NTLM message out of sequence')
    if (!timingSafeEqual(expected, signature.subarray(4, 12))) throw new SignatureError('NTLM message signature does not verify')
    return message
  }
}
