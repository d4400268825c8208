/**
 * A deadline on every database call. postgres.js has no query timeout, and
 * Postgres' statement_timeout cannot help a query that never reaches the server
 * or whose reply never comes back: during a Postgres restart such a query held
 * its request for 30 s and more (faults F3), and a stream's replay held that
 * stream silent for good (F4). Bounding each call, rather than each request,
 * bounds everything built from calls, with one rule and no list of places to
 * keep: requests (a long-poll claim or a waiting enqueue waits outside any call,
 * so it ends by wait_seconds plus a call's deadline), every sweep iteration,
 * the live feed's re-reads and each stream's replay, which then retries on the
 * next safety poll.
 *
 * Past its deadline a call fails with QUERY_DEADLINE, answered as a 503 like any
 * lost connection (errors.ts), and the client's stalled sockets are ended so its
 * pool does not shrink (sockets.ts). As with any lost reply, a 503 does not say
 * that the statement did not run: it may still have reached the server.
 */
import type postgres from 'postgres'

/** Where a call past its deadline reports, to end the connections that stalled. */
export type OnOverdue = () => void

/** The error of a call past its deadline; its code maps to a 503 (errors.ts). */
export function deadlineError(ms: number): Error {
  return Object.assign(new Error(`the database did not answer within ${ms / 1000} s`), { code: 'QUERY_DEADLINE' })
}

/** The postgres.js Query internals this file touches (3.4.x). */
interface QueryInternals {
  handler: (query: QueryInternals) => unknown
  resolve: (value: unknown) => void
  reject: (error: unknown) => void
}

const RAW = Symbol('unbounded sql')
/** How often calls in flight are checked against their deadlines. */
const TICK_MS = 250

/**
 * Wraps `sql` so that every query it sends (`sql\`…\``, `sql.unsafe`) and every
 * transaction (`sql.begin`, as a whole) fails after `ms`. The clock starts when a
 * query is handed to the pool, so a query built as a fragment of another costs
 * nothing. Everything else is the client itself.
 */
export function withDeadline(sql: postgres.Sql, ms: number, onOverdue: OnOverdue): postgres.Sql {
  // One ticker for every call in flight, not a timer each: a query's start and end
  // are then a Map entry, and a deadline is met to within a tick.
  const due = new Map<QueryInternals, number>()
  let ticker: ReturnType<typeof setInterval> | undefined
  const tick = () => {
    const now = performance.now()
    let overdue = false
    for (const [query, at] of due) {
      if (at > now) continue
      overdue = true
      query.reject(deadlineError(ms))
    }
    if (overdue) onOverdue()
    if (due.size === 0) {
      clearInterval(ticker)
      ticker = undefined
    }
  }
  const send = (query: QueryInternals, handler: QueryInternals['handler']) => {
    const { resolve, reject } = query
    query.resolve = (value) => {
      due.delete(query)
      resolve(value)
    }
    query.reject = (error) => {
      due.delete(query)
      reject(error)
    }
    due.set(query, performance.now() + ms)
    ticker ??= setInterval(tick, Math.min(TICK_MS, ms / 4))
    return handler(query)
  }
  const arm = <T>(query: T): T => {
    if (!(query instanceof Promise)) return query // sql(identifier), helpers
    const q = query as unknown as QueryInternals
    const handler = q.handler
    q.handler = (self) => send(self, handler)
    return query
  }
  const unsafe: postgres.Sql['unsafe'] = (...args) => arm(sql.unsafe(...args))
  // The transaction's own statements run on a connection it holds, out of reach of
  // `arm`: the deadline covers it whole (BEGIN to COMMIT).
  const begin = ((...args: Parameters<postgres.Sql['begin']>) =>
    withTimer(sql.begin(...args), ms, onOverdue)) as postgres.Sql['begin']
  return new Proxy(sql, {
    apply: (target, self, args) => arm(Reflect.apply(target, self, args)),
    get: (target, key, receiver) =>
      key === 'unsafe' ? unsafe : key === 'begin' ? begin : key === RAW ? target : Reflect.get(target, key, receiver),
  })
}

/**
 * The client without deadlines, for statements that may rightly run long
 * (migrations: an index built on a large table).
 */
export function unbounded(sql: postgres.Sql): postgres.Sql {
  return (sql as unknown as { [RAW]?: postgres.Sql })[RAW] ?? sql
}

function withTimer<T>(work: Promise<T>, ms: number, onOverdue: OnOverdue): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(deadlineError(ms))
      onOverdue()
    }, ms)
    work.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error) => {
        clearTimeout(timer)
        reject(error)
      },
    )
  })
}
