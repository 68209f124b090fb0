import type * as grpc from '@grpc/grpc-js'
import { ServerCredentials } from '@grpc/grpc-js'
import tls from 'node:tls'
import { listenError } from '../../http/server.ts'
import type { Logger } from '../../log.ts'
import type { TlsMaterial } from '../../tls/pki.ts'
import type { ConnectionLimits } from '../grpc-server.ts'
import { tlsChannelBinding } from '../../../../proto/src/channel-binding.ts'

/** A TLS listener that hands each connection to a gRPC server and remembers its channel binding. */
export interface BindingListener {
  port: number
  /** The RFC 9266 tls-exporter value of the connection a call arrived on (`call.getPeer()`), if still open. */
  channelBinding(peer: string): Uint8Array | undefined
  /** Stops accepting; open connections are left to the gRPC server's shutdown. */
  close(): Promise<void>
  /** Drops every connection still open (the end of a shutdown's grace period). */
  destroyConnections(): void
}

/**
 * grpc-js does not expose a call's TLS socket, so the controller terminates TLS itself and injects
 * the decrypted connection into the gRPC server. That keeps one thing grpc-js cannot give: the
 * TLS exporter that a Connect challenge signature is bound to, so a challenge answered on one
 * connection is worthless on any other. TLS 1.3 only: RFC 9266 requires it for tls-exporter.
 */
export async function listenWithChannelBinding(
  server: grpc.Server,
  opts: { tls: TlsMaterial; certChainPem: string; host: string; port: number; log: Logger; limits: Pick<ConnectionLimits, 'tlsHandshakeTimeoutMs' | 'maxConnections'> },
): Promise<BindingListener> {
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure())
  const bindings = new Map<string, Uint8Array>()
  const sockets = new Set<tls.TLSSocket>()
  const tlsServer = tls.createServer(
    { key: opts.tls.keyPem, cert: opts.certChainPem, ALPNProtocols: ['h2'], minVersion: 'TLSv1.3', handshakeTimeout: opts.limits.tlsHandshakeTimeoutMs },
    (socket) => {
      const peer = `${socket.remoteAddress}:${socket.remotePort}`
      bindings.set(peer, tlsChannelBinding(socket))
      sockets.add(socket)
      socket.once('close', () => {
        bindings.delete(peer)
        sockets.delete(socket)
      })
      injector.injectConnection(socket)
    },
  )
  tlsServer.maxConnections = opts.limits.maxConnections
  let dropped = 0
  let lastDropWarning = 0
  tlsServer.on('drop', () => {
    dropped++
    // One line per 10 s at most: a flood of refused connections must not become a flood of log lines.
    if (Date.now() - lastDropWarning < 10_000) return
    lastDropWarning = Date.now()
    opts.log.warn({ dropped, max: opts.limits.maxConnections }, 'grpc.connections_dropped_at_limit')
  })
  // Handshake failures (wrong CA on the agent, port scanners, handshake timeouts) are the peer's problem, not ours.
  tlsServer.on('tlsClientError', (err, socket) => {
    opts.log.debug({ err: err.message }, 'grpc.tls_client_error')
    // With a listener here Node leaves the socket open: a handshake timeout would cut nothing.
    socket.destroy()
  })
  await new Promise<void>((resolve, reject) => {
    tlsServer.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, opts.host, opts.port, 'OPSC_GRPC_PORT')))
    tlsServer.listen(opts.port, opts.host, () => resolve())
  })
  const address = tlsServer.address()
  return {
    port: typeof address === 'object' && address ? address.port : opts.port,
    channelBinding: (peer) => bindings.get(peer),
    destroyConnections: () => {
      for (const socket of sockets) socket.destroy()
    },
    close: () =>
      new Promise<void>((resolve) => {
        tlsServer.close(() => resolve())
        injector.destroy()
      }),
  }
}
