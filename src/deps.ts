import type { Config } from './config'
import type { Sql } from './db/client'
import type { Tables } from './db/tables'
import type { LiveEvents } from './events/live'
import type { Logger } from './log'
import type { Metrics } from './metrics/registry'

/** What the app and its services are built from; nothing global, so tests can build many. */
export interface Deps {
  config: Config
  /** The primary: every transition, and every read that must see its own writes. */
  sql: Sql
  /**
   * The read routes' pool: a streaming replica (FOREMAN_READ_DATABASE_URL), or
   * `sql` itself. A read by id that misses here asks `sql` (db/replica.ts).
   */
  readSql: Sql
  tables: Tables
  log: Logger
  /** The live layer: change hub, job feed, waiting claimers. */
  events: LiveEvents
  /** This process's counters, histograms and scrape-time gauges, on a private registry. */
  metrics: Metrics
}
