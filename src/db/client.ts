import postgres from 'postgres'
import { withDeadline } from './deadline'
import { isoTimestamp } from './rows'
import { SocketWatch } from './sockets'

/** The postgres.js client type used everywhere. */
export type Sql = postgres.Sql

/** A pool or an open transaction: what a statement that may run inside either takes. */
export type Queryable = postgres.ISql

/** A piece of SQL (`sql\`…\``) to splice into a statement. */
export type Fragment = postgres.PendingQuery<postgres.Row[]>

/**
 * The connection that sends NOTIFY. A notifying transaction has a commit record,
 * and with synchronous_commit on, each would wait for its own WAL flush: with a
 * durable database that cut enqueue throughput by ~23% in bench/events.ts. A
 * notification is a hint (listeners re-read the rows, and poll), so it need not
 * survive a crash: its commits skip the flush.
 */
export function createNotifySql(url: string, applicationName = 'foreman-notify'): Sql {
  return createSql({ url, max: 1, applicationName, settings: { synchronous_commit: 'off' } })
}

/**
 * Sends `query` unprepared, so Postgres plans it for its values on every call.
 * postgres.js prepares every statement, and after five calls Postgres may keep a
 * generic plan made without the values: for a filter on a skewed column (a rare
 * status, a rare kind) that plan walked the whole table. For reads whose best
 * plan depends on the value and that are not hot (operator lists). It sets the
 * per-query `prepare` option postgres.js reads when the query is sent (3.4.x).
 */
export function plannedPerCall<T extends readonly object[]>(query: postgres.PendingQuery<T>): postgres.PendingQuery<T> {
  ;(query as unknown as { options: { prepare?: boolean } }).options.prepare = false
  return query
}

/** Options for the query pool. */
export interface SqlOptions {
  url: string
  max: number
  /** Application name shown in pg_stat_activity. */
  applicationName?: string
  /** Extra session settings sent at connect (e.g. synchronous_commit). */
  settings?: Record<string, string>
  /** Seconds a call may take before it fails as a 503 (QUERY_DEADLINE_SEC; tests shorten it). */
  deadlineSec?: number
  /** False behind a transaction pooler: a statement prepared on one server connection is unknown on the next. */
  prepare?: boolean
  /** Close a connection idle this long (default: never). Its LISTEN connection is never closed for idling. */
  idleTimeoutSec?: number
}

/**
 * Seconds a connection waits before its next connect after `retries` failed ones
 * in a row (the count is shared by the pool and its LISTEN connection, and resets
 * on a success): 25–50 ms doubling to at most 1 s, jittered so that instances do
 * not reconnect in step. postgres.js' default, up to 20 s, grew during a
 * Postgres restart as every queued query's connect failed, and service came
 * back 10–20 s after Postgres did (the fault suite's scenario 6; with this
 * backoff, 0.1–0.5 s). A refused connect is cheap, so a short cap costs little.
 */
export const reconnectBackoff = (retries: number): number =>
  Math.min(0.05 * 2 ** retries, 1) * (0.5 + Math.random() / 2)

/**
 * Seconds a connect (TCP, TLS, startup and auth) may take before it fails with
 * CONNECT_TIMEOUT, a 503. postgres.js' default is 30 s: a request during a network
 * partition would hang that long, past most clients' own timeouts.
 */
export const CONNECT_TIMEOUT_SEC = 5

/**
 * Seconds any one database call (a statement, or a transaction whole) may take
 * before it fails as "database unavailable" (see deadline.ts). A call may first
 * wait for one connect (CONNECT_TIMEOUT_SEC); Foreman's statements then run in
 * milliseconds (the slowest hot one measured, a claim over 200k pending rows of
 * several kinds before it was split per kind: 0.3 s). Under the 30 s a client
 * waits, so a stranded call answers 503 rather than nothing.
 */
export const QUERY_DEADLINE_SEC = 10

/**
 * True when Foreman may open the client's sockets itself (see sockets.ts): not for
 * TLS (sslmode in the URL), which postgres.js layers over a socket it then keeps
 * to itself, nor for several hosts, which it tries in turn. Such a client still
 * has its deadlines.
 */
function opensOwnSockets(url: string): boolean {
  // Several hosts (h1:5432,h2:5432) are not a WHATWG URL; postgres.js parses them itself.
  if (!URL.canParse(url)) return false
  const query = new URL(url).searchParams
  const ssl = query.get('sslmode') ?? query.get('ssl')
  return ssl === null || ssl === 'disable' || ssl === 'false'
}

/**
 * Opens a bounded query pool. Nothing connects until the first query, so building
 * a client is free and tests can make as many as they like. Its LISTEN connection
 * (`sql.listen`) is made with the same options, so it reconnects (and re-listens)
 * on the same short backoff. Every call through it has a deadline (deadline.ts;
 * `unbounded` for migrations), and its sockets are watched for the failures
 * postgres.js 3.4.9 would wait on for good (sockets.ts).
 */
export function createSql({
  url,
  max,
  applicationName = 'foreman',
  settings = {},
  deadlineSec = QUERY_DEADLINE_SEC,
  prepare = true,
  idleTimeoutSec,
}: SqlOptions): Sql {
  const sockets = opensOwnSockets(url) ? new SocketWatch() : null
  const deadlineMs = deadlineSec * 1000
  const sql = postgres(url, {
    ...(sockets && { socket: sockets.connect }),
    max,
    prepare,
    ...(idleTimeoutSec !== undefined && { idle_timeout: idleTimeoutSec }),
    backoff: reconnectBackoff,
    connect_timeout: CONNECT_TIMEOUT_SEC,
    onnotice: () => {},
    connection: { application_name: applicationName, TimeZone: 'UTC', ...settings },
    // Counts (int8) arrive as strings by default; every int8 we store fits a double.
    types: {
      int8: {
        to: 20,
        from: [20],
        serialize: (value: number) => String(value),
        parse: (value: string) => Number(value),
      },
      // Timestamps leave the database as RFC 3339 strings, the API's own shape,
      // so rows need no mapping layer on the way out.
      date: {
        to: 1184,
        from: [1082, 1114, 1184],
        serialize: (value: string | Date) => isoTimestamp(value),
        parse: (value: string) => isoTimestamp(value),
      },
    },
  })
  // Past a deadline, a connection silent for half of it is taken as stranded: a
  // Foreman statement answers in milliseconds.
  return withDeadline(sql, deadlineMs, () => sockets?.destroyStalled(deadlineMs / 2))
}
