/**
 * The TCP sockets of one postgres.js client (its pool and its LISTEN connection),
 * opened by us through postgres.js' `socket` option so that two failures it does
 * not handle in 3.4.9 can be ended:
 *
 * - A server that closes cleanly (FIN) before startup completes: postgres.js
 *   reconnects at once, with no backoff and no connect_timeout (each attempt
 *   restarts it), and the query that asked for the connection never settles
 *   (porsager/postgres#1193; measured here: 3,471 reconnects in 8 s, the query
 *   still pending). A clean close by the server is turned into an error, which
 *   postgres.js handles: the query fails with CONNECTION_CLOSED (a 503), and the
 *   connection backs off before its next connect.
 * - A connection that stops answering mid-query and never closes (half-open,
 *   porsager/postgres#1089): postgres.js waits for the reply for good, and the
 *   connection is lost to the pool. `destroyStalled` ends such sockets with an
 *   error; postgres.js then fails what ran on them and reconnects on demand.
 *
 * And one it handles badly: a socket error followed, a moment later, by its
 * close (see deliverCloseLate), which left a query handed over in between pending.
 * All three were made on purpose in tests/stranded-query.test.ts.
 */
import net from 'node:net'

/** The error a socket is ended with; its code maps to 503 (see errors.ts). */
function closedError(message: string): Error {
  return Object.assign(new Error(message), { code: 'CONNECTION_CLOSED' })
}

/** What postgres.js passes its `socket` option: its parsed options (one host here). */
interface ConnectOptions {
  host: string[]
  port: number[]
  /** A Unix socket, when the host is a folder. */
  path?: string | false
  /** State the client's connections share: failed connects in a row, for the backoff. */
  shared: { retries: number }
}

interface Watched {
  socket: net.Socket
  /** When this socket last received a byte (or connected). */
  lastHeard: number
}

/** The sockets of one client, opened and watched. */
export class SocketWatch {
  private readonly open = new Set<Watched>()

  /**
   * For postgres.js' `socket` option: a socket connecting to the server. postgres.js
   * writes its startup message at once, which the socket holds until it connects;
   * connect_timeout still applies (postgres.js starts it before asking for this).
   */
  readonly connect = (options: ConnectOptions): net.Socket => {
    const host = options.host[0] ?? 'localhost'
    const port = options.port[0] ?? 5432
    const socket = options.path ? net.connect({ path: options.path }) : net.connect({ host, port })
    // postgres.js reads these for its error messages.
    Object.assign(socket, { host, port })
    const watched: Watched = { socket, lastHeard: performance.now() }
    this.open.add(watched)
    deliverCloseLate(socket, options.shared)
    socket.on('data', () => {
      watched.lastHeard = performance.now()
    })
    socket.on('end', () => {
      // The server closed first (we had not ended): fail it rather than let postgres.js
      // reconnect without bound.
      if (!socket.writableEnded) fail(socket, closedError('the server closed the connection'))
    })
    socket.on('close', () => this.open.delete(watched))
    return socket
  }

  /**
   * Ends, with an error, every socket that has received nothing for `ms` or more.
   * Called when a query has waited past its deadline: its connection is one of
   * them. An idle pooled connection, or a quiet LISTEN one, may be ended too: the
   * first reconnects when next used, the second at once (and re-listens).
   */
  destroyStalled(ms: number): number {
    const now = performance.now()
    let ended = 0
    for (const w of [...this.open]) {
      if (now - w.lastHeard < ms) continue
      fail(w.socket, closedError(`the server sent nothing for ${Math.round((now - w.lastHeard) / 1000)} s`))
      ended++
    }
    return ended
  }

  /** Sockets currently open (for tests). */
  get size(): number {
    return this.open.size
  }
}

/**
 * How a socket's close reaches postgres.js: as a clean one, a moment late.
 *
 * Clean: a query the pool hands to a connection after its socket failed but
 * before the close (Bun emits them about 1 ms apart here) is queued on it, and
 * postgres.js, closing after an error, fails only what it had queued before the
 * error, so that query stayed pending for good. After a clean close it fails
 * whatever the connection still holds. The one other thing it does for a close
 * after an error, counting it for the reconnect backoff, is done here.
 *
 * Late (after pending immediates): postgres.js flushes its writes on
 * setImmediate, and a failed statement in a transaction sends ROLLBACK at once.
 * A close that overtakes that flush leaves either the bytes queued for the
 * connection's next socket, whose startup message then never leaves (no
 * reconnect works until a kilobyte has piled up), or, with nothing queued
 * before, a flush onto no socket at all: "null is not an object (evaluating
 * 'socket.write')", thrown from a timer, which ends the process. Both were seen
 * here when a server closed mid-transaction.
 */
function deliverCloseLate(socket: net.Socket, shared: { retries: number }): void {
  const emit = socket.emit.bind(socket)
  socket.emit = ((event: string | symbol, ...args: unknown[]) => {
    if (event !== 'close') return emit(event, ...args)
    if (args[0] === true) shared.retries++
    setTimeout(() => emit('close', false), 1)
    return true
  }) as typeof socket.emit
}

/** Fails a socket: postgres.js fails what ran on it at once, and hears the close after. */
function fail(socket: net.Socket, error: Error): void {
  socket.emit('error', error)
  socket.destroy()
}
