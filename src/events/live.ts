/** Wires the hub, the job feed and the claim line for one Foreman process. */
import type { Sql } from '../db/client'
import type { Tables } from '../db/tables'
import { LimitedKinds } from '../limits/limited-kinds'
import type { Logger } from '../log'
import { ClaimWaiters } from '../runs/waiters'
import { JobFeed } from './feed'
import { EventHub, UNLISTEN_WAIT_MS } from './hub'
import { StreamSlots } from './slots'

/** Everything live in a process: one hub, one feed, one line of waiting claimers. */
export interface LiveEvents {
  hub: EventHub
  feed: JobFeed
  waiters: ClaimWaiters
  /** Which kinds have limits, as this process last read them. */
  limitedKinds: LimitedKinds
  /** Open SSE streams, and the cap on them. */
  streams: StreamSlots
  /** Aborted when the process begins to shut down: streams end, waits return. */
  closing: AbortSignal
  start(): Promise<void>
  /** Ends streams and waits (first step of a shutdown); the hub keeps working. */
  close(): void
  /** Stops the hub (after in-flight requests have drained). */
  stop(): Promise<void>
}

/** How to build the live layer. */
export interface LiveOptions {
  sql: Sql
  /** Where LISTEN goes (db/connections.ts): `sql` unless a transaction pooler is in between. */
  listenSql?: Sql
  /** A connection of its own for NOTIFY; null keeps events within this process. */
  notifySql: Sql | null
  tables: Tables
  log: Logger
  pollIntervalMs: number
}

/** Changes gather this long before one NOTIFY carries them to other instances. */
const NOTIFY_WINDOW_MS = 5

/** The NOTIFY channel of a table prefix, so Foremans with different prefixes do not hear each other. */
export const channelFor = (tables: Tables) => `${tables.prefix}events`

/** Builds the live layer; nothing connects until start(). */
export function createLiveEvents({
  sql,
  listenSql = sql,
  notifySql,
  tables,
  log,
  pollIntervalMs,
}: LiveOptions): LiveEvents {
  const hub = new EventHub({
    listenSql,
    notifySql,
    channel: channelFor(tables),
    log,
    pollIntervalMs,
    notifyWindowMs: NOTIFY_WINDOW_MS,
  })
  const feed = new JobFeed(hub, sql, tables, log)
  const limitedKinds = new LimitedKinds(sql, tables, listenSql)
  const waiters = new ClaimWaiters(hub, limitedKinds)
  const closing = new AbortController()
  return {
    hub,
    feed,
    waiters,
    limitedKinds,
    streams: new StreamSlots(),
    closing: closing.signal,
    start: async () => {
      await hub.start()
      await limitedKinds.start()
    },
    close: () => closing.abort(),
    async stop() {
      closing.abort()
      await hub.stop()
      await limitedKinds.stop(UNLISTEN_WAIT_MS)
      feed.close()
      waiters.close()
    },
  }
}
