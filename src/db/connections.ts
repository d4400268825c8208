/**
 * The connections one Foreman opens, by pool mode. In session mode (a plain
 * Postgres, or a pooler in session mode) the query pool does everything and
 * postgres.js opens its LISTEN connection beside it. In transaction mode the
 * query pool goes through the pooler (PgBouncer) with nothing prepared, and what
 * needs a session of its own goes straight to the database: LISTEN, NOTIFY (its
 * `synchronous_commit` is a startup setting a pooler refuses), migrations and the
 * params index's session advisory lock. Per instance that is the pool through the
 * pooler plus, directly, one LISTEN connection, one NOTIFY connection and, while
 * migrating at start-up, one more (closed once idle). With a replica for reads,
 * a second pool of the same size goes to it, unprepared too in transaction mode
 * (the replica may well sit behind its own PgBouncer).
 */
import { createNotifySql, createSql, type Sql } from './client'

/** Seconds the direct session client's pooled connection (migrations at start-up) stays open idle. */
export const SESSION_IDLE_SEC = 5

/** Where to connect, as config.database says (external) or the embedded server's URL. */
export interface ConnectionPlan {
  url: string
  poolMax: number
  poolMode: 'session' | 'transaction'
  /** Required in transaction mode (config refuses it otherwise). */
  directUrl: string | null
  /** A streaming replica for the read routes; null reads from `url`. */
  readUrl?: string | null
  applicationName?: string
}

/** The clients a Foreman works with; none connects until used. */
export interface Connections {
  /** Every request-path statement. */
  sql: Sql
  /** LISTEN, migrations, session locks: `sql` itself in session mode. */
  sessionSql: Sql
  /** NOTIFY, on a connection of its own. */
  notifySql: Sql
  /** The read routes: a replica's pool, or `sql` itself. */
  readSql: Sql
  end(): Promise<void>
}

/** Opens the clients for `plan`. */
export function openConnections(plan: ConnectionPlan): Connections {
  const transaction = plan.poolMode === 'transaction'
  const direct = transaction ? (plan.directUrl ?? plan.url) : plan.url
  const sql = createSql({
    url: plan.url,
    max: plan.poolMax,
    prepare: !transaction,
    ...(plan.applicationName && { applicationName: plan.applicationName }),
  })
  // Its one pooled connection serves the migrations and closes once idle; the
  // LISTEN connection postgres.js opens beside it stays.
  const sessionSql = transaction
    ? createSql({
        url: direct,
        max: 1,
        applicationName: `${plan.applicationName ?? 'foreman'}-session`,
        idleTimeoutSec: SESSION_IDLE_SEC,
      })
    : sql
  const notifySql = createNotifySql(direct, `${plan.applicationName ?? 'foreman'}-notify`)
  const readSql = plan.readUrl
    ? createSql({
        url: plan.readUrl,
        max: plan.poolMax,
        prepare: !transaction,
        applicationName: `${plan.applicationName ?? 'foreman'}-read`,
      })
    : sql
  return {
    sql,
    sessionSql,
    notifySql,
    readSql,
    async end() {
      await Promise.all([
        sql.end({ timeout: 5 }),
        notifySql.end({ timeout: 5 }),
        ...(sessionSql !== sql ? [sessionSql.end({ timeout: 5 })] : []),
        ...(readSql !== sql ? [readSql.end({ timeout: 5 })] : []),
      ])
    },
  }
}
