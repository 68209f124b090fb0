import http from 'node:http'
import https from 'node:https'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { networkError, WinrmError } from './errors.ts'
import { authenticateMessage, negotiateMessage, NtlmError, parseChallenge, splitUser, tlsChannelBindings } from './ntlm.ts'
import { NtlmSession, SignatureError } from './seal.ts'

/*
 * One HTTP(S) connection to a WinRM endpoint, authenticated with Basic (HTTPS only) or NTLM.
 * NTLM authenticates the TCP connection, so each transport keeps exactly one keep-alive socket and
 * authenticates again when that socket is replaced. On plain HTTP every message is sealed with
 * the NTLM session keys and framed as multipart/encrypted (MS-WSMV 2.2.9.1.1).
 */

export interface TransportOptions {
  https: boolean
  host: string
  port: number
  auth: 'basic' | 'ntlm'
  username: string
  password: string
  domain?: string
  /** PEM CA certificate(s) for HTTPS, instead of the system store. */
  ca?: string
  verifyTls: boolean
  /** Default for each request (a Receive long-poll passes its own). */
  requestTimeoutMs?: number
}

const BOUNDARY = '--Encrypted Boundary'
const PROTOCOL = 'application/HTTP-SPNEGO-session-encrypted'
const SOAP_TYPE = 'application/soap+xml;charset=UTF-8'

interface RawResponse {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
  socket: Socket
}

export interface PostResult {
  status: number
  body: string
}

export class WinrmTransport {
  readonly where: string
  private readonly agent: http.Agent
  private session: NtlmSession | null = null
  private authenticated: Socket | null = null
  private scheme: 'Negotiate' | 'NTLM' = 'Negotiate'
  private closed = false

  constructor(readonly opts: TransportOptions) {
    this.where = `${opts.host}:${opts.port}`
    if (opts.auth === 'basic' && !opts.https) throw new WinrmError('config', 'basic authentication over http would send the password in the clear; use https or ntlm')
    const common = { keepAlive: true, maxSockets: 1, maxFreeSockets: 1, keepAliveMsecs: 15_000 }
    this.agent = opts.https ? new https.Agent({ ...common, ca: opts.ca, rejectUnauthorized: opts.verifyTls }) : new http.Agent(common)
  }

  get encrypts(): boolean {
    return this.opts.auth === 'ntlm' && !this.opts.https
  }

  /** POSTs a SOAP envelope; returns the (decrypted) response. 401 after authenticating → auth_failed. */
  async post(envelope: string, o: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<PostResult> {
    if (this.closed) throw new WinrmError('aborted', `connection to ${this.where} is closed`)
    const plain = Buffer.from(envelope, 'utf8')
    for (let attempt = 0; ; attempt++) {
      if (this.opts.auth === 'ntlm' && !this.authenticated) await this.authenticate(o)
      const res = await this.send(this.frame(plain), o)
      if (res.status === 401) {
        this.forget()
        // The server may have dropped the connection's authentication (idle socket replaced): once more.
        if (this.opts.auth === 'ntlm' && attempt === 0) continue
        throw this.authFailed()
      }
      return { status: res.status, body: this.unframe(res) }
    }
  }

  close(): void {
    this.closed = true
    this.forget()
    this.agent.destroy()
  }

  private authFailed(): WinrmError {
    const { user, domain } = splitUser(this.opts.username, this.opts.domain)
    const who = domain ? `${domain}\\${user}` : user
    return new WinrmError('auth_failed', `authentication as ${who} failed on ${this.where} (${this.opts.auth}): wrong user name or password, or the account may not use WinRM`)
  }

  private forget(): void {
    this.session = null
    this.authenticated = null
  }

  private basicHeader(): string {
    const { user, domain } = splitUser(this.opts.username, this.opts.domain)
    return `Basic ${Buffer.from(`${domain ? `${domain}\\` : ''}${user}:${this.opts.password}`, 'utf8').toString('base64')}`
  }

  private frame(plain: Buffer): { body: Buffer; headers: Record<string, string> } {
    if (this.opts.auth === 'basic') return { body: plain, headers: { 'content-type': SOAP_TYPE, authorization: this.basicHeader() } }
    if (!this.session) return { body: plain, headers: { 'content-type': SOAP_TYPE } }
    const { sealed, signature } = this.session.seal(plain)
    const len = Buffer.alloc(4)
    len.writeUInt32LE(signature.length)
    const body = Buffer.concat([
      Buffer.from(`${BOUNDARY}\r\n\tContent-Type: ${PROTOCOL}\r\n\tOriginalContent: type=${SOAP_TYPE};Length=${plain.length}\r\n${BOUNDARY}\r\n\tContent-Type: application/octet-stream\r\n`, 'latin1'),
      len,
      signature,
      sealed,
      Buffer.from(`${BOUNDARY}--\r\n`, 'latin1'),
    ])
    return { body, headers: { 'content-type': `multipart/encrypted;protocol="${PROTOCOL}";boundary="Encrypted Boundary"` } }
  }

  private unframe(res: RawResponse): string {
    const type = String(res.headers['content-type'] ?? '')
    if (!type.includes(PROTOCOL)) {
      if (this.session && res.body.length > 0 && res.status < 400) throw new WinrmError('protocol', `${this.where} answered without encryption on an encrypted session`)
      return res.body.toString('utf8')
    }
    if (!this.session) throw new WinrmError('protocol', `${this.where} sent an encrypted answer outside an NTLM session`)
    try {
      return unframeEncrypted(res.body, this.session).toString('utf8')
    } catch (err) {
      this.forget()
      if (err instanceof WinrmError) throw err
      throw new WinrmError('protocol', `cannot decrypt the answer from ${this.where}: ${(err as Error).message}`, { cause: err })
    }
  }

  /** The NTLM handshake on the connection's socket, with empty bodies (as pywinrm does). */
  private async authenticate(o: { signal?: AbortSignal; timeoutMs?: number }): Promise<void> {
    const { user, domain } = splitUser(this.opts.username, this.opts.domain)
    const negotiate = negotiateMessage()
    const empty = Buffer.alloc(0)
    let res = await this.send({ body: empty, headers: { authorization: `${this.scheme} ${negotiate.toString('base64')}` } }, o)
    let token = challengeToken(res.headers['www-authenticate'], this.scheme)
    if (res.status === 401 && !token && this.scheme === 'Negotiate' && offers(res.headers['www-authenticate'], 'NTLM')) {
      this.scheme = 'NTLM'
      res = await this.send({ body: empty, headers: { authorization: `NTLM ${negotiate.toString('base64')}` } }, o)
      token = challengeToken(res.headers['www-authenticate'], this.scheme)
    }
    if (res.status !== 401 || !token) {
      if (res.status === 401) throw new WinrmError('auth_failed', `${this.where} does not offer NTLM (Negotiate) authentication; enable it in the WinRM service's auth settings`)
      throw new WinrmError('protocol', `${this.where} answered HTTP ${res.status} to an NTLM negotiation (is this a WinRM endpoint?)`)
    }
    let auth
    try {
      const cert = this.opts.https ? (res.socket as TLSSocket).getPeerCertificate?.()?.raw : undefined
      auth = authenticateMessage({ negotiate, challenge: parseChallenge(token), username: user, password: this.opts.password, domain, channelBindings: cert ? tlsChannelBindings(cert) : undefined })
    } catch (err) {
      if (err instanceof NtlmError) throw new WinrmError('protocol', `NTLM with ${this.where}: ${err.message}`, { cause: err })
      throw err
    }
    res = await this.send({ body: empty, headers: { authorization: `${this.scheme} ${auth.message.toString('base64')}` } }, o)
    if (res.status === 401) throw this.authFailed()
    const socket = res.socket
    this.authenticated = socket
    this.session = this.encrypts ? new NtlmSession(auth.exportedSessionKey, auth.flags) : null
    socket.once('close', () => {
      if (this.authenticated === socket) this.forget()
    })
  }

  private send(req: { body: Buffer; headers: Record<string, string> }, o: { signal?: AbortSignal; timeoutMs?: number }): Promise<RawResponse> {
    const timeoutMs = o.timeoutMs ?? this.opts.requestTimeoutMs ?? 60_000
    return new Promise<RawResponse>((resolve, reject) => {
      if (o.signal?.aborted) return reject(new WinrmError('aborted', `request to ${this.where} aborted`))
      const mod = this.opts.https ? https : http
      const r = mod.request({
        host: this.opts.host,
        port: this.opts.port,
        path: '/wsman',
        method: 'POST',
        agent: this.agent,
        headers: { ...req.headers, 'content-length': String(req.body.length), 'user-agent': 'OpsConductor WinRM' },
      })
      let done = false
      const finish = (err: Error | null, res?: RawResponse) => {
        if (done) return
        done = true
        clearTimeout(timer)
        o.signal?.removeEventListener('abort', onAbort)
        if (err) {
          // A failed request leaves the NTLM state of the connection unknown: start over on a new one.
          this.forget()
          r.destroy()
          reject(err)
        } else resolve(res!)
      }
      const onAbort = () => finish(new WinrmError('aborted', `request to ${this.where} aborted`))
      const timer = setTimeout(() => finish(new WinrmError('timeout', `${this.where} did not answer within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs)
      o.signal?.addEventListener('abort', onAbort, { once: true })
      r.on('error', (err) => finish(networkError(err, this.where, this.opts.host)))
      r.on('response', (res) => {
        // Captured now: once the body is read, the socket goes back to the agent and res.socket is null.
        const socket = res.socket
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', (err) => finish(networkError(err, this.where, this.opts.host)))
        res.on('end', () => finish(null, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), socket }))
      })
      r.end(req.body)
    })
  }
}

function offers(header: string | undefined, scheme: string): boolean {
  return (header ?? '').split(',').some((part) => part.trim().split(/\s+/, 1)[0]!.toLowerCase() === scheme.toLowerCase())
}

/** The NTLM CHALLENGE token in `WWW-Authenticate: <scheme> <base64>` (among other offered schemes). */
export function challengeToken(header: string | undefined, scheme: string): Buffer | undefined {
  for (const part of (header ?? '').split(',')) {
    const [name, value] = part.trim().split(/\s+/, 2)
    if (name?.toLowerCase() === scheme.toLowerCase() && value) return Buffer.from(value, 'base64')
  }
  return undefined
}

/** The plaintext of a multipart/encrypted body: each part is a header with the length, then sigLen, signature, sealed data. */
export function unframeEncrypted(body: Buffer, session: NtlmSession): Buffer {
  const out: Buffer[] = []
  const octet = Buffer.from('\tContent-Type: application/octet-stream\r\n', 'latin1')
  let at = 0
  for (;;) {
    const head = body.indexOf('OriginalContent:', at, 'latin1')
    if (head < 0) break
    const lineEnd = body.indexOf('\r\n', head, 'latin1')
    const m = /Length=(\d+)/i.exec(body.subarray(head, lineEnd).toString('latin1'))
    if (!m) throw new WinrmError('protocol', 'encrypted WinRM message without a length')
    const length = Number(m[1])
    const data = body.indexOf(octet, lineEnd, 'latin1')
    if (data < 0) throw new WinrmError('protocol', 'encrypted WinRM message without its data part')
    let p = data + octet.length
    if (p + 4 > body.length) throw new WinrmError('protocol', 'encrypted WinRM message is truncated')
    const sigLen = body.readUInt32LE(p)
    p += 4
    if (p + sigLen + length > body.length) throw new WinrmError('protocol', 'encrypted WinRM message is truncated')
    const signature = body.subarray(p, p + sigLen)
    const sealed = body.subarray(p + sigLen, p + sigLen + length)
    try {
      out.push(session.unseal(Buffer.from(sealed), Buffer.from(signature)))
    } catch (err) {
      if (err instanceof SignatureError) throw new WinrmError('protocol', `encrypted WinRM message rejected: ${err.message}`, { cause: err })
      throw err
    }
    at = p + sigLen + length
  }
  if (out.length === 0) throw new WinrmError('protocol', 'encrypted WinRM message has no parts')
  return Buffer.concat(out)
}
