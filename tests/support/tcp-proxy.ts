/**
 * A loopback TCP proxy that a test can cut and restore, to make the database
 * unreachable for one client without touching the server others use.
 */
import type { Socket, TCPSocketListener } from 'bun'

interface Pair {
  client: Socket<Pair>
  upstream?: Socket<Pair>
  pending: Uint8Array[]
  /** Blackholed: nothing passes either way, and neither side hears a close. */
  dead?: boolean
}

/** Forwards 127.0.0.1:<port> to target while up; when down, refuses and drops connections. */
export class TcpProxy {
  private listener: TCPSocketListener<Pair> | undefined
  private readonly pairs = new Set<Pair>()
  private blackholed = false
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
          const pair: Pair = { client, pending: [], dead: self.blackholed }
          client.data = pair
          self.pairs.add(pair)
          if (pair.dead) return
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
                if (!pair.dead) pair.client.write(chunk)
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
          if (pair.dead) return
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

  /**
   * Half-open, as a lost network or a vanished host leaves it: every connection
   * open now, and every one made until `restore`, stays open but carries nothing
   * either way, for good.
   */
  blackhole(): void {
    this.blackholed = true
    for (const pair of this.pairs) pair.dead = true
  }

  /** New connections pass again (the blackholed ones stay dead). */
  restore(): void {
    this.blackholed = false
  }

  /** Connections open through the proxy, dead ones included. */
  get connections(): number {
    return this.pairs.size
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
