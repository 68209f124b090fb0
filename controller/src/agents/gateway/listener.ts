import type * as grpc from '@grpc/grpc-js'
import { ServerCredentials } from '@grpc/grpc-js'
import tls from 'node:tls'
import { listenError } from '../../http/server.ts'
import type { Logger } from '../../log.ts'
import type { TlsMaterial } from '../../tls/pki.ts'
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
  opts: { tls: TlsMaterial; certChainPem: string; host: string; port: number; log: Logger },
): Promise<BindingListener> {
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure())
  const bindings = new Map<string, Uint8Array>()
  const sockets = new Set<tls.TLSSocket>()
  const tlsServer = tls.createServer(
    { key: opts.tls.keyPem, cert: opts.certChainPem, ALPNProtocols: ['h2'], minVersion: 'TLSv1.3' },
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
  // Handshake failures (wrong CA on the agent, port scanners) are the peer's problem, not ours.
  tlsServer.on('tlsClientError', (err) => opts.log.debug({ err: err.message }, 'grpc.tls_client_error'))
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
