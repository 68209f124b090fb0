import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { SMTPServer } from 'smtp-server'
import { freePort } from './agents.ts'

/*
 * Real receivers on 127.0.0.1 for notification tests: an HTTP endpoint that can be taken down
 * (connections refused) and brought back on the same port, or made to hold a request unanswered;
 * and an SMTP server with STARTTLS and AUTH whose mails are kept raw and decoded.
 */

export interface ReceivedRequest {
  method: string
  /** Path and query as sent (tokens in the URL included). */
  url: string
  headers: IncomingHttpHeaders
  /** The raw body, as the bytes arrived (what a signature covers). */
  body: string
  at: number
}

export interface Reply {
  status: number
  headers?: Record<string, string>
  body?: string
}

/** An HTTP receiver on a fixed loopback port: `down()` refuses connections until `up()`. */
export class HttpReceiver {
  readonly received: ReceivedRequest[] = []
  /** How to answer each request; `'hold'` leaves it unanswered until `releaseHeld()` or the client goes away. */
  respond: (req: ReceivedRequest) => Reply | 'hold' = () => ({ status: 200, body: 'ok' })
  /** Requests whose client went away before an answer (a held one whose sender died). */
  readonly abandoned: ReceivedRequest[] = []
  private server: Server | undefined
  private readonly held = new Set<ServerResponse>()

  private constructor(readonly port: number) {}

  /** A receiver listening now. */
  static async up(): Promise<HttpReceiver> {
    return new HttpReceiver(await freePort()).up()
  }

  /** A receiver whose port nothing listens on yet (connections refused until `up()`). */
  static async down(): Promise<HttpReceiver> {
    return new HttpReceiver(await freePort())
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  get listening(): boolean {
    return this.server !== undefined
  }

  async up(): Promise<this> {
    if (this.server) return this
    const server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const received: ReceivedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() }
        this.received.push(received)
        const reply = this.respond(received)
        if (reply === 'hold') {
          this.held.add(res)
          res.on('close', () => {
            if (this.held.delete(res)) this.abandoned.push(received)
          })
          return
        }
        res.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers }).end(reply.body ?? '')
      })
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port, '127.0.0.1', () => resolve())
    })
    this.server = server
    return this
  }

  /** Stops listening and drops every connection, held requests included. */
  async down(): Promise<void> {
    const server = this.server
    this.server = undefined
    if (!server) return
    this.held.clear()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  get heldCount(): number {
    return this.held.size
  }

  /** Answers every held request. */
  releaseHeld(reply: Reply = { status: 200, body: 'ok' }): void {
    for (const res of [...this.held]) {
      this.held.delete(res)
      if (!res.destroyed) res.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers }).end(reply.body ?? '')
    }
  }
}

// ---- SMTP -----------------------------------------------------------------------------------

export interface ReceivedMail {
  /** Envelope sender and recipients. */
  from: string
  to: string[]
  /** The AUTH user of the session (undefined: no AUTH). */
  user: string | undefined
  /** Whether the session was TLS (STARTTLS happened). */
  secure: boolean
  raw: string
  /** Top-level headers, names lower-cased, unfolded, encoded words decoded. */
  headers: Record<string, string>
  subject: string
  messageId: string
  /** The decoded text/plain and text/html parts. */
  text: string
  html: string
  at: number
}

export interface SmtpReceiver {
  port: number
  /** PEM of the server's self-signed certificate (trust it through the SMTP settings' ca_pem). */
  ca: string
  mails: ReceivedMail[]
  /** Failed AUTH attempts (user names), to tell a wrong password from no mail at all. */
  failedLogins: string[]
  close(): Promise<void>
}

/** A self-signed certificate for 127.0.0.1 (openssl). */
export function loopbackCertificate(): { key: string; cert: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'opsc-rx-tls-'))
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
        '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-addext', 'basicConstraints=critical,CA:TRUE'],
      { stdio: 'ignore' },
    )
    return { key: readFileSync(path.join(dir, 'key.pem'), 'utf8'), cert: readFileSync(path.join(dir, 'cert.pem'), 'utf8') }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const smtpError = (code: number, message: string) => Object.assign(new Error(message), { responseCode: code })

/**
 * An SMTP server on loopback: STARTTLS, then AUTH (PLAIN/LOGIN) with exactly these credentials.
 * Recipients starting with `bounce` are refused for good (550), with `later` for now (450).
 */
export async function startSmtpReceiver(auth: { username: string; password: string }): Promise<SmtpReceiver> {
  const { key, cert } = loopbackCertificate()
  const mails: ReceivedMail[] = []
  const failedLogins: string[] = []
  const server = new SMTPServer({
    secure: false,
    key,
    cert,
    authMethods: ['PLAIN', 'LOGIN'],
    // AUTH only after STARTTLS: a login proves the upgrade happened.
    allowInsecureAuth: false,
    authOptional: false,
    logger: false,
    onAuth(a, _session, cb) {
      if (a.username === auth.username && a.password === auth.password) return cb(null, { user: a.username })
      failedLogins.push(String(a.username))
      cb(smtpError(535, 'authentication failed'))
    },
    onRcptTo(address, _session, cb) {
      if (address.address.startsWith('bounce')) return cb(smtpError(550, `no such user <${address.address}>`))
      if (address.address.startsWith('later')) return cb(smtpError(450, 'mailbox busy, try again later'))
      cb()
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8')
        const parsed = parseMail(raw)
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          user: session.user as string | undefined,
          secure: session.secure,
          raw,
          ...parsed,
          at: Date.now(),
        })
        cb()
      })
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.server.address() as AddressInfo
  return { port, ca: cert, mails, failedLogins, close: () => new Promise((resolve) => server.close(() => resolve())) }
}

// ---- a small MIME reader (what nodemailer writes: multipart/alternative, QP or base64) -------

interface Part {
  headers: Record<string, string>
  body: string
}

function splitPart(raw: string): Part {
  const cut = raw.search(/\r?\n\r?\n/)
  const head = cut < 0 ? raw : raw.slice(0, cut)
  const body = cut < 0 ? '' : raw.slice(cut).replace(/^\r?\n\r?\n/, '')
  const headers: Record<string, string> = {}
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const m = /^([^:\s]+):\s*(.*)$/.exec(line)
    if (m) headers[m[1]!.toLowerCase()] = decodeWords(m[2]!)
  }
  return { headers, body }
}

/** RFC 2047 encoded words (B and Q), adjacent ones joined. */
export function decodeWords(value: string): string {
  return value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?]+)\?([bqBQ])\?([^?]*)\?=/g, (_m, _charset: string, enc: string, text: string) =>
      enc.toLowerCase() === 'b' ? Buffer.from(text, 'base64').toString('utf8') : qpBytes(text.replace(/_/g, ' ')).toString('utf8'),
    )
}

function qpBytes(text: string): Buffer {
  const bytes: number[] = []
  for (let i = 0; i < text.length; i++) {
    const hex = text.slice(i + 1, i + 3)
    if (text[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16))
      i += 2
    } else bytes.push(...Buffer.from(text[i]!, 'utf8'))
  }
  return Buffer.from(bytes)
}

function decodeBody(part: Part): string {
  const cte = (part.headers['content-transfer-encoding'] ?? '7bit').toLowerCase()
  if (cte === 'base64') return Buffer.from(part.body.replace(/\s+/g, ''), 'base64').toString('utf8')
  if (cte === 'quoted-printable') return qpBytes(part.body.replace(/=\r?\n/g, '')).toString('utf8')
  return part.body
}

function leaves(part: Part, out: Part[]): Part[] {
  const type = part.headers['content-type'] ?? 'text/plain'
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1]
  if (/^multipart\//i.test(type) && boundary) {
    const sections = part.body.split(new RegExp(`\\r?\\n?--${boundary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:--)?[ \\t]*\\r?\\n?`))
    for (const s of sections.slice(1)) if (s.trim()) leaves(splitPart(s), out)
  } else out.push(part)
  return out
}

export function parseMail(raw: string): Pick<ReceivedMail, 'headers' | 'subject' | 'messageId' | 'text' | 'html'> {
  const top = splitPart(raw)
  const parts = leaves(top, [])
  const of = (re: RegExp) =>
    parts
      .filter((p) => re.test(p.headers['content-type'] ?? 'text/plain'))
      .map(decodeBody)
      .join('\n')
  return { headers: top.headers, subject: top.headers.subject ?? '', messageId: top.headers['message-id'] ?? '', text: of(/^text\/plain/i), html: of(/^text\/html/i) }
}
