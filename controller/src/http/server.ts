import { createServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import { getRequestListener, RequestError, type ServerType } from '@hono/node-server'
import type { Hono } from 'hono'
import type { AppEnv } from '../context.ts'
import { errorBody } from '../errors.ts'
import type { TlsMaterial } from '../tls/pki.ts'

export interface RunningHttpServer {
  port: number
  /** Stops accepting, lets in-flight requests finish, then cuts whatever is left after `graceMs`. */
  close(graceMs: number): Promise<void>
}

export class ListenError extends Error {
  override name = 'ListenError'
}

export function startHttpServer(opts: {
  app: Hono<AppEnv>
  tls: TlsMaterial
  host: string
  port: number
  /** Names the setting in the error so the operator knows what to change. */
  portSetting?: string
}): Promise<RunningHttpServer> {
  return new Promise((resolve, reject) => {
    const listener = getRequestListener(opts.app.fetch, { hostname: opts.host, errorHandler: unparseableRequest })
    const server = createServer({ key: opts.tls.keyPem, cert: opts.tls.certPem, minVersion: 'TLSv1.2' }, listener) as ServerType & { closeAllConnections(): void; closeIdleConnections(): void }
    server.on('clientError', answerClientError)
    server.listen(opts.port, opts.host)
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, opts.host, opts.port, opts.portSetting ?? 'OPSC_HTTP_PORT')))
    server.once('listening', () => {
      const port = (server.address() as AddressInfo).port
      let closing: Promise<void> | undefined
      resolve({ port, close: (graceMs) => (closing ??= closeGracefully(server, graceMs)) })
    })
  })
}

function closeGracefully(server: ServerType & { closeAllConnections(): void; closeIdleConnections(): void }, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs)
    timer.unref()
    server.close(() => {
      clearTimeout(timer)
      resolve()
    })
    server.closeIdleConnections()
  })
}

export function listenError(err: NodeJS.ErrnoException, host: string, port: number, setting: string): ListenError {
  if (err.code === 'EADDRINUSE') return new ListenError(`${setting}: port ${port} on ${host} is already in use`)
  if (err.code === 'EACCES') return new ListenError(`${setting}: not allowed to listen on port ${port} (ports below 1024 need privileges)`)
  if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') return new ListenError(`OPSC_BIND: ${host} is not an address of this machine`)
  return new ListenError(`${setting}: cannot listen on ${host}:${port} (${err.code ?? err.message})`)
}

/**
 * A request the adapter cannot turn into a Request (a backslash in the path, a bad Host header…):
 * 400 in the shared error shape instead of the adapter's empty 400.
 */
function unparseableRequest(err: unknown): Response {
  if (!(err instanceof RequestError)) return Response.json(errorBody('INTERNAL', 'internal error'), { status: 500 })
  return Response.json(errorBody('VALIDATION', `malformed request: ${err.message}`), { status: 400 })
}

/**
 * Requests Node's HTTP parser refuses before the app sees them (request line and headers over 16 KiB,
 * malformed framing): the same error shape as the API, then the connection closes.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable || (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) {
    socket.destroy()
    return
  }
  if (err.code === 'ECONNRESET') {
    socket.destroy()
    return
  }
  const tooLarge = err.code === 'HPE_HEADER_OVERFLOW'
  const body = JSON.stringify(
    tooLarge ? errorBody('PAYLOAD_TOO_LARGE', 'request line and headers are over 16 KiB') : errorBody('VALIDATION', `malformed HTTP request (${err.code ?? 'parse error'})`),
  )
  const status = tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'
  socket.end(`HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
}
