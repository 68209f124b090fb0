import * as grpc from '@grpc/grpc-js'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'

/** RFC 9266: the tls-exporter channel binding is 32 bytes exported under this label, empty context. */
const EXPORTER_LABEL = 'EXPORTER-Channel-Binding'

/** The connection's tls-exporter channel binding; both ends of one TLS 1.3 connection compute the same bytes. */
export function tlsChannelBinding(socket: TLSSocket): Uint8Array {
  if (socket.getProtocol() !== 'TLSv1.3') throw new Error(`channel binding needs TLS 1.3, the connection uses ${socket.getProtocol()}`)
  return new Uint8Array(socket.exportKeyingMaterial(32, EXPORTER_LABEL, Buffer.alloc(0)))
}

type SecureConnector = ReturnType<grpc.ChannelCredentials['_createSecureConnector']>

/**
 * Channel credentials that report every TLS connection the channel opens, so the agent can sign
 * its Connect challenge over the exporter of the very connection the stream runs on. Everything
 * else (verification against the pinned CA, ALPN) is the wrapped credentials' own behaviour.
 */
export class ChannelBindingCredentials extends grpc.ChannelCredentials {
  constructor(
    private readonly inner: grpc.ChannelCredentials,
    private readonly onSecureConnection: (socket: TLSSocket) => void,
  ) {
    super()
  }

  _isSecure(): boolean {
    return true
  }

  _equals(other: grpc.ChannelCredentials): boolean {
    return other === this
  }

  _createSecureConnector(...args: Parameters<grpc.ChannelCredentials['_createSecureConnector']>): SecureConnector {
    const connector = this.inner._createSecureConnector(...args)
    return {
      connect: async (socket: Socket) => {
        const result = await connector.connect(socket)
        this.onSecureConnection(result.socket as TLSSocket)
        return result
      },
      waitForReady: () => connector.waitForReady(),
      getCallCredentials: () => connector.getCallCredentials(),
      destroy: () => connector.destroy(),
    }
  }
}
