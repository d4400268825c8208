import type { Config } from './config'
import type { Sql } from './db/client'
import type { Tables } from './db/tables'
import type { Logger } from './log'

/** What the app and its services are built from; nothing global, so tests can build many. */
export interface Deps {
  config: Config
  sql: Sql
  tables: Tables
  log: Logger
}
