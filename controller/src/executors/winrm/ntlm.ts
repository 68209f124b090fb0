import { createHash, createHmac, randomBytes } from 'node:crypto'
import { md4 } from './md4.ts'
import { rc4 } from './rc4.ts'

/*
 * NTLMv2 client messages (MS-NLMP 2.2.1, 3.1.5, 3.3.2): NEGOTIATE, CHALLENGE parsing and
 * AUTHENTICATE with extended session security, 128-bit keys, key exchange, sign + seal and a MIC
 * when the server sends a timestamp. LM and NTLMv1 are never offered.
 */

export const NTLM = {
  UNICODE: 0x00000001,
  OEM: 0x00000002,
  REQUEST_TARGET: 0x00000004,
  SIGN: 0x00000010,
  SEAL: 0x00000020,
  NTLM: 0x00000200,
  ALWAYS_SIGN: 0x00008000,
  EXTENDED_SESSIONSECURITY: 0x00080000,
  TARGET_INFO: 0x00800000,
  VERSION: 0x02000000,
  N128: 0x20000000,
  KEY_EXCH: 0x40000000,
  N56: 0x80000000,
} as const

export const CLIENT_FLAGS =
  (NTLM.UNICODE | NTLM.OEM | NTLM.REQUEST_TARGET | NTLM.SIGN | NTLM.SEAL | NTLM.NTLM | NTLM.ALWAYS_SIGN | NTLM.EXTENDED_SESSIONSECURITY | NTLM.TARGET_INFO | NTLM.VERSION | NTLM.N128 | NTLM.KEY_EXCH | NTLM.N56) >>> 0

const SIGNATURE = Buffer.from('NTLMSSP\0', 'latin1')
// Windows 10 (10.0.19041), NTLMSSP revision 15: only informative.
const VERSION = Buffer.from([10, 0, 0x61, 0x4a, 0, 0, 0, 0x0f])

const AV = { EOL: 0, NB_COMPUTER: 1, NB_DOMAIN: 2, DNS_COMPUTER: 3, DNS_DOMAIN: 4, FLAGS: 6, TIMESTAMP: 7, CHANNEL_BINDINGS: 10 } as const
const AV_FLAG_MIC = 0x2

/** A malformed or unacceptable NTLM message from the server. */
export class NtlmError extends Error {
  constructor(message: string) {
    super(message)
    this.name = new.target.name
  }
}

export function negotiateMessage(flags = CLIENT_FLAGS): Buffer {
  const msg = Buffer.alloc(40)
  SIGNATURE.copy(msg, 0)
  msg.writeUInt32LE(1, 8)
  msg.writeUInt32LE(flags >>> 0, 12)
  // Domain and workstation fields stay empty (offset = end of the fixed part).
  msg.writeUInt32LE(40, 20)
  msg.writeUInt32LE(40, 28)
  VERSION.copy(msg, 32)
  return msg
}

export interface Challenge {
  flags: number
  serverChallenge: Buffer
  targetName: string
  /** The raw AV_PAIR list. */
  targetInfo: Buffer
  /** The whole message, for the MIC. */
  raw: Buffer
}

function field(buf: Buffer, at: number): Buffer {
  const len = buf.readUInt16LE(at)
  const off = buf.readUInt32LE(at + 4)
  if (len === 0) return Buffer.alloc(0)
  if (off + len > buf.length) throw new NtlmError('NTLM challenge field points past the message')
  return buf.subarray(off, off + len)
}

export function parseChallenge(buf: Buffer): Challenge {
  if (buf.length < 48 || !buf.subarray(0, 8).equals(SIGNATURE) || buf.readUInt32LE(8) !== 2) throw new NtlmError('not an NTLM CHALLENGE message')
  const flags = buf.readUInt32LE(20)
  const name = field(buf, 12)
  return {
    flags,
    serverChallenge: Buffer.from(buf.subarray(24, 32)),
    targetName: flags & NTLM.UNICODE ? name.toString('utf16le') : name.toString('latin1'),
    targetInfo: Buffer.from(field(buf, 40)),
    raw: Buffer.from(buf),
  }
}

export interface AvPair {
  id: number
  value: Buffer
}

export function parseAvPairs(info: Buffer): AvPair[] {
  const pairs: AvPair[] = []
  for (let at = 0; at + 4 <= info.length; ) {
    const id = info.readUInt16LE(at)
    const len = info.readUInt16LE(at + 2)
    if (id === AV.EOL) break
    if (at + 4 + len > info.length) throw new NtlmError('NTLM target info is truncated')
    pairs.push({ id, value: Buffer.from(info.subarray(at + 4, at + 4 + len)) })
    at += 4 + len
  }
  return pairs
}

export function encodeAvPairs(pairs: AvPair[]): Buffer {
  const parts: Buffer[] = []
  for (const p of [...pairs, { id: AV.EOL, value: Buffer.alloc(0) }]) {
    const head = Buffer.alloc(4)
    head.writeUInt16LE(p.id, 0)
    head.writeUInt16LE(p.value.length, 2)
    parts.push(head, p.value)
  }
  return Buffer.concat(parts)
}

const hmacMd5 = (key: Uint8Array, ...data: Uint8Array[]) => {
  const h = createHmac('md5', key)
  for (const d of data) h.update(d)
  return h.digest()
}
const utf16 = (s: string) => Buffer.from(s, 'utf16le')

/** NTOWFv2 (= LMOWFv2): HMAC_MD5(MD4(UNICODE(password)), UNICODE(UPPER(user) + domain)). */
export function ntowfv2(password: string, user: string, domain: string): Buffer {
  return hmacMd5(md4(utf16(password)), utf16(user.toUpperCase() + domain))
}

/** Now as a Windows FILETIME (100 ns ticks since 1601), little-endian. */
export function fileTime(ms = Date.now()): Buffer {
  const out = Buffer.alloc(8)
  out.writeBigUInt64LE((BigInt(ms) + 11644473600000n) * 10000n)
  return out
}

export interface Ntlmv2Response {
  ntChallengeResponse: Buffer
  lmChallengeResponse: Buffer
  ntProofStr: Buffer
  sessionBaseKey: Buffer
}

/** MS-NLMP 3.3.2: the NTLMv2 and LMv2 responses and the session base key. */
export function ntlmv2Response(o: { responseKey: Buffer; serverChallenge: Buffer; clientChallenge: Buffer; time: Buffer; targetInfo: Buffer; sendLm: boolean }): Ntlmv2Response {
  const temp = Buffer.concat([Buffer.from([1, 1, 0, 0, 0, 0, 0, 0]), o.time, o.clientChallenge, Buffer.alloc(4), o.targetInfo, Buffer.alloc(4)])
  const ntProofStr = hmacMd5(o.responseKey, o.serverChallenge, temp)
  const lm = o.sendLm ? Buffer.concat([hmacMd5(o.responseKey, o.serverChallenge, o.clientChallenge), o.clientChallenge]) : Buffer.alloc(24)
  return { ntChallengeResponse: Buffer.concat([ntProofStr, temp]), lmChallengeResponse: lm, ntProofStr, sessionBaseKey: hmacMd5(o.responseKey, ntProofStr) }
}

export interface AuthenticateInput {
  negotiate: Buffer
  challenge: Challenge
  username: string
  password: string
  domain: string
  workstation?: string
  /** Fixed values for tests; random / now otherwise. */
  clientChallenge?: Buffer
  exportedSessionKey?: Buffer
  time?: Buffer
  /** MD5 of the gss_channel_bindings_struct (HTTPS: the server certificate's tls-server-end-point). */
  channelBindings?: Buffer
}

export interface Authenticated {
  message: Buffer
  exportedSessionKey: Buffer
  /** The flags both sides agreed on: these drive signing and sealing. */
  flags: number
}

/** The AUTHENTICATE message, and the session key that signing and sealing derive from. */
export function authenticateMessage(input: AuthenticateInput): Authenticated {
  const ch = input.challenge
  if (!(ch.flags & NTLM.EXTENDED_SESSIONSECURITY)) throw new NtlmError('the server does not offer NTLMv2 extended session security')
  if (!(ch.flags & NTLM.N128)) throw new NtlmError('the server does not offer 128-bit NTLM keys')
  const flags = (CLIENT_FLAGS & ch.flags) >>> 0 | NTLM.UNICODE
  const pairs = parseAvPairs(ch.targetInfo)
  const timestamp = pairs.find((p) => p.id === AV.TIMESTAMP)?.value
  // With a server timestamp the client must not send LMv2 and should protect the messages with a MIC.
  const withMic = timestamp !== undefined
  if (withMic) {
    const existing = pairs.find((p) => p.id === AV.FLAGS)
    if (existing) existing.value.writeUInt32LE(existing.value.readUInt32LE(0) | AV_FLAG_MIC, 0)
    else pairs.push({ id: AV.FLAGS, value: Buffer.from([AV_FLAG_MIC, 0, 0, 0]) })
  }
  if (input.channelBindings) pairs.push({ id: AV.CHANNEL_BINDINGS, value: input.channelBindings })
  const responseKey = ntowfv2(input.password, input.username, input.domain)
  const r = ntlmv2Response({
    responseKey,
    serverChallenge: ch.serverChallenge,
    clientChallenge: input.clientChallenge ?? randomBytes(8),
    time: timestamp ?? input.time ?? fileTime(),
    targetInfo: encodeAvPairs(pairs),
    sendLm: !withMic,
  })
  let exportedSessionKey: Buffer = r.sessionBaseKey
  let encryptedKey: Buffer = Buffer.alloc(0)
  if (flags & NTLM.KEY_EXCH) {
    exportedSessionKey = input.exportedSessionKey ?? randomBytes(16)
    encryptedKey = rc4(r.sessionBaseKey, exportedSessionKey)
  }
  const payload = [r.lmChallengeResponse, r.ntChallengeResponse, utf16(input.domain), utf16(input.username), utf16(input.workstation ?? ''), encryptedKey]
  const head = Buffer.alloc(88)
  SIGNATURE.copy(head, 0)
  head.writeUInt32LE(3, 8)
  let offset = head.length
  // Field order in the header: LM, NT, domain, user, workstation, session key.
  payload.forEach((p, i) => {
    const at = 12 + i * 8
    head.writeUInt16LE(p.length, at)
    head.writeUInt16LE(p.length, at + 2)
    head.writeUInt32LE(offset, at + 4)
    offset += p.length
  })
  head.writeUInt32LE(flags >>> 0, 60)
  VERSION.copy(head, 64)
  const message = Buffer.concat([head, ...payload])
  if (withMic) hmacMd5(exportedSessionKey, input.negotiate, ch.raw, message).copy(message, 72)
  return { message, exportedSessionKey, flags }
}

/** `DOMAIN\user` splits into domain and user; a UPN (`user@realm`) is sent whole with no domain. */
export function splitUser(username: string, domain: string | undefined): { user: string; domain: string } {
  const slash = username.indexOf('\\')
  if (domain === undefined && slash > 0) return { user: username.slice(slash + 1), domain: username.slice(0, slash) }
  return { user: username, domain: domain ?? '' }
}

// Signature algorithm OIDs (DER) whose hash is not SHA-256 for tls-server-end-point (RFC 5929 4.1).
const SHA384_OIDS = ['2a864886f70d01010c', '2a8648ce3d040303'].map((h) => Buffer.from(h, 'hex'))
const SHA512_OIDS = ['2a864886f70d01010d', '2a8648ce3d040304'].map((h) => Buffer.from(h, 'hex'))

/**
 * The channel binding hash for NTLM over TLS: MD5 of a gss_channel_bindings_struct with no addresses
 * and `tls-server-end-point:` + hash of the server certificate as application data (MD5 and SHA-1
 * signed certificates use SHA-256).
 */
export function tlsChannelBindings(certDer: Buffer): Buffer {
  const algo = SHA512_OIDS.some((o) => certDer.includes(o)) ? 'sha512' : SHA384_OIDS.some((o) => certDer.includes(o)) ? 'sha384' : 'sha256'
  const app = Buffer.concat([Buffer.from('tls-server-end-point:', 'latin1'), createHash(algo).update(certDer).digest()])
  const len = Buffer.alloc(4)
  len.writeUInt32LE(app.length)
  return createHash('md5').update(Buffer.alloc(16)).update(len).update(app).digest()
}
