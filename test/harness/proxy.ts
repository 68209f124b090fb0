import net from 'node:net'

/*
 * A TCP relay on loopback: each connection it accepts is relayed to one of the ports `upstreams()`
 * lists at that moment (round-robin) — in the chaos suite, the controllers alive, so a killed
 * controller's agents reconnect to another one. `cut()` drops every relayed connection in both
 * directions with no goodbye: a network drop.
 */
export class BalancingProxy {
  private readonly sockets = new Set<net.Socket>()
  private next = 0
  connections = 0

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  /** `upstreams()` lists the gRPC ports worth trying now (the live controllers). */
  static async start(upstreams: () => number[], port = 0): Promise<BalancingProxy> {
    let proxy: BalancingProxy | undefined
    const server = net.createServer((client) => proxy!.relay(client, upstreams()))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => resolve())
    })
    proxy = new BalancingProxy(server, (server.address() as net.AddressInfo).port)
    return proxy
  }

  get address(): string {
    return `127.0.0.1:${this.port}`
  }

  private relay(client: net.Socket, ports: number[]): void {
    this.connections++
    this.track(client)
    client.pause()
    if (ports.length === 0) {
      client.destroy()
      return
    }
    const port = ports[this.next++ % ports.length]!
    const upstream = net.connect(port, '127.0.0.1')
    this.track(upstream)
    upstream.once('connect', () => {
      client.pipe(upstream).pipe(client)
      client.resume()
    })
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  }

  private track(s: net.Socket): void {
    this.sockets.add(s)
    s.on('close', () => this.sockets.delete(s))
    s.on('error', () => {})
  }

  /** Drops every relayed connection at once; returns how many sockets were cut. */
  cut(): number {
    const n = this.sockets.size
    for (const s of this.sockets) s.destroy()
    return n
  }

  close(): Promise<void> {
    this.cut()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }
}
