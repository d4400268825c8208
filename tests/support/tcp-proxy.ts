/**
 * A loopback TCP proxy that a test can cut and restore, to make the database
 * unreachable for one client without touching the server others use.
 */
import type { Socket, TCPSocketListener } from 'bun'

interface Pair {
  client: Socket<Pair>
  upstream?: Socket<Pair>
  pending: Uint8Array[]
}

/** Forwards 127.0.0.1:<port> to target while up; when down, refuses and drops connections. */
export class TcpProxy {
  private listener: TCPSocketListener<Pair> | undefined
  private readonly pairs = new Set<Pair>()
  port = 0

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** Starts listening (on the same port as before after a stop). */
  start(): void {
    const self = this
    this.listener = Bun.listen<Pair>({
      hostname: '127.0.0.1',
      port: this.port,
      socket: {
        open(client) {
          const pair: Pair = { client, pending: [] }
          client.data = pair
          self.pairs.add(pair)
          Bun.connect<Pair>({
            hostname: self.targetHost,
            port: self.targetPort,
            socket: {
              open(upstream) {
                upstream.data = pair
                pair.upstream = upstream
                for (const chunk of pair.pending.splice(0)) upstream.write(chunk)
              },
              data(_upstream, chunk) {
                pair.client.write(chunk)
              },
              close() {
                pair.client.end()
              },
              error() {
                pair.client.end()
              },
            },
          }).catch(() => client.end())
        },
        data(client, chunk) {
          const pair = client.data
          if (pair.upstream) pair.upstream.write(chunk)
          else pair.pending.push(new Uint8Array(chunk))
        },
        close(client) {
          client.data.upstream?.end()
          self.pairs.delete(client.data)
        },
      },
    })
    this.port = this.listener.port
  }

  /** Stops listening and cuts every open connection. */
  stop(): void {
    this.listener?.stop(true)
    this.listener = undefined
    for (const pair of this.pairs) {
      pair.upstream?.end()
      pair.client.end()
    }
    this.pairs.clear()
  }
}
