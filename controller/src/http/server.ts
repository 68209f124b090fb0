import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { serve, type ServerType } from '@hono/node-server'
import type { Hono } from 'hono'
import type { AppEnv } from '../context.ts'
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
    const server = serve({
      fetch: opts.app.fetch,
      hostname: opts.host,
      port: opts.port,
      createServer,
      serverOptions: { key: opts.tls.keyPem, cert: opts.tls.certPem, minVersion: 'TLSv1.2' },
    }) as ServerType & { closeAllConnections(): void; closeIdleConnections(): void }
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
