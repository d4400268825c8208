/**
 * The scrape-time read: what the tables and Postgres' own statistics say right
 * now, in one statement under a short statement timeout, so a slow database
 * makes a scrape lose its table gauges rather than hang (or pile up) scrapes.
 */
import type { Queryable, Sql } from '../db/client'
import type { Tables } from '../db/tables'

/** How long the scrape-time read may take before Postgres cancels it. */
export const SCRAPE_STATEMENT_TIMEOUT = '2s'

/** Pending jobs claimable now, per kind and queue. */
export interface QueueDepth {
  kind: string
  queue: string
  depth: number
  /** Seconds since the oldest of them became claimable (enqueued, or scheduled_at when later). */
  oldest_age: number
}

/** Postgres' statistics for one of our tables (pg_stat_user_tables). */
export interface TableHealth {
  table: string
  live_tuples: number
  dead_tuples: number
  /** Unix seconds; null when autovacuum has not touched it since the statistics were reset. */
  last_autovacuum: number | null
  last_autoanalyze: number | null
}

/** Everything the scrape reads from the database. */
export interface TableSnapshot {
  jobs_by_status: Record<string, number>
  runs_by_status: Record<string, number>
  schedules_enabled: number
  schedules_disabled: number
  schedules_due: number
  queues: QueueDepth[]
  /** Seconds past its lease of the most overdue running run; 0 when none is overdue. */
  lease_overdue: number
  tables: TableHealth[]
  /** Seconds the oldest open transaction of a client in this database has been open (ours excluded). */
  oldest_transaction_age: number
}

/** What the scrape reads from Foreman's tables (a replica has them too). */
export type TableCounts = Omit<TableSnapshot, 'tables' | 'oldest_transaction_age'>

/**
 * Reads the snapshot in one statement (sent pipelined with its `set local`). Counts
 * by status scan the tables, history included: with tens of millions of rows they can pass the
 * timeout, and the scrape then reports table_read_success 0 instead of waiting.
 * pg_stat_activity shows other roles' transactions only to superusers and members
 * of pg_read_all_stats (pg_monitor); without it the oldest-transaction age covers
 * Foreman's own role. `withTableHealth: false` leaves out Postgres' statistics,
 * which on a replica describe the replica (its dead tuples, its transactions),
 * not the primary the reaper and vacuum work on.
 */
export async function metricsSnapshotRead(sql: Sql, t: Tables): Promise<TableSnapshot>
export async function metricsSnapshotRead(sql: Sql, t: Tables, withTableHealth: false): Promise<TableCounts>
export async function metricsSnapshotRead(sql: Sql, t: Tables, withTableHealth = true): Promise<TableCounts> {
  const [, rows] = await sql.begin((tx) => [
    // set_config(…, true) is `set local` with a parameter: it ends with this transaction.
    tx`select set_config('statement_timeout', ${SCRAPE_STATEMENT_TIMEOUT}, true)`,
    tx<TableSnapshot[]>`
      select
        (select coalesce(json_object_agg(status, n), '{}') from (
          ${countByStatus(tx, t.jobs, t.jobsHistory)}) s) as jobs_by_status,
        (select coalesce(json_object_agg(status, n), '{}') from (
          ${countByStatus(tx, t.runs, t.runsHistory)}) s) as runs_by_status,
        (select count(*) from ${tx(t.schedules)} where enabled)::float8 as schedules_enabled,
        (select count(*) from ${tx(t.schedules)} where not enabled)::float8 as schedules_disabled,
        (select count(*) from ${tx(t.schedules)} where enabled and next_fire_at <= now())::float8 as schedules_due,
        (select coalesce(json_agg(q), '[]') from (
          select kind, queue, count(*) as depth,
                 greatest(0, extract(epoch from now() - min(greatest(enqueued_at, scheduled_at))))::float8 as oldest_age
          from ${tx(t.jobs)}
          where status = 'pending' and (scheduled_at is null or scheduled_at <= now())
          group by kind, queue) q) as queues,
        (select coalesce(greatest(0, extract(epoch from now() - min(lease_expires_at))), 0)::float8
          from ${tx(t.runs)} where status = 'running' and lease_expires_at < now()) as lease_overdue
        ${withTableHealth ? tx`, ${tableHealthColumns(tx, t)}` : tx``}`,
  ])
  const row = rows[0]
  if (!row) throw new Error('metrics snapshot read returned no row')
  return row
}

/**
 * Rows per status of a hot table and its history together: a finished job is
 * still counted once it moves. Like the hot count, it reads every row of
 * history (all the days retention keeps): the scrape's statement timeout bounds it.
 */
function countByStatus(sql: Queryable, hot: string, history: string) {
  return sql`
    select status, sum(n)::int8 as n from (
      select status, count(*) as n from ${sql(hot)} group by status
      union all
      select status, count(*) as n from ${sql(history)} group by status
    ) c
    group by status`
}

/** A kind, and a queue it is used on, known to the database. */
export interface KnownKindQueue {
  kind: string
  queue: string
}

/** At most this many kinds are read at start; any others start their series when first counted. */
export const KNOWN_KINDS_LIMIT = 1000

/**
 * The kinds the jobs table and its history hold, each with the queue of its
 * newest job (on each side), and every schedule's kind and queue: read when the
 * process starts, so their counters start at 0. A loose index scan down jobs_kind_id_idx (kind, id): each step jumps to
 * the greatest (kind, id) below the previous kind, which is the next kind's newest
 * job, and its queue is one primary-key probe. So the read costs a few index
 * probes per distinct kind, however many jobs there are (tests/metrics-names.test.ts
 * checks the plan). Asked per kind instead ("where kind = $1 order by id desc"),
 * the planner walked the primary key and filtered: 6,800 rows per kind on 27,000.
 */
export function metricsKnownLabels(sql: Queryable, t: Tables) {
  return sql<KnownKindQueue[]>`
    ${newestPerKind(sql, t.jobs)}
    union
    ${newestPerKind(sql, t.jobsHistory)}
    union
    (select kind, queue from ${sql(t.schedules)} limit ${KNOWN_KINDS_LIMIT})`
}

/**
 * One table's kinds with the queue of each one's newest job, by the loose index
 * scan metricsKnownLabels describes. On history each step is a probe per day
 * partition (its own (kind, id) index), so a kind whose jobs have all moved there
 * still starts its series.
 */
function newestPerKind(sql: Queryable, table: string) {
  return sql`
    (with recursive newest(kind, id) as (
      (select kind, id from ${sql(table)} order by kind desc, id desc limit 1)
      union all
      select next.kind, next.id
      from newest, lateral (
        select j.kind, j.id from ${sql(table)} j
        where j.kind < newest.kind
        order by j.kind desc, j.id desc
        limit 1) next
    )
    select n.kind, (select j.queue from ${sql(table)} j where j.id = n.id) as queue
    from newest n
    limit ${KNOWN_KINDS_LIMIT})`
}

/** metricsKnownLabels under the scrape's statement timeout, so a locked table cannot hold up the start. */
export async function metricsKnownLabelsRead(sql: Sql, t: Tables): Promise<KnownKindQueue[]> {
  const [, rows] = await sql.begin((tx) => [
    tx`select set_config('statement_timeout', ${SCRAPE_STATEMENT_TIMEOUT}, true)`,
    metricsKnownLabels(tx, t),
  ])
  return rows
}

/**
 * The table-health part of the snapshot, as select-list columns `tables` and
 * `oldest_transaction_age` (see TableSnapshot): shared by the scrape and
 * GET /database (src/operations/database.ts), so both say the same.
 */
export function tableHealthColumns(sql: Queryable, t: Tables) {
  return sql`
    (select coalesce(json_agg(h), '[]') from (
      select relname as table, n_live_tup as live_tuples, n_dead_tup as dead_tuples,
             extract(epoch from last_autovacuum)::float8 as last_autovacuum,
             extract(epoch from last_autoanalyze)::float8 as last_autoanalyze
      from pg_stat_user_tables
      where relid in (to_regclass(${t.jobs})::oid, to_regclass(${t.runs})::oid)) h) as tables,
    (select coalesce(greatest(0, extract(epoch from clock_timestamp() - min(xact_start))), 0)::float8
      from pg_stat_activity
      where datname = current_database() and backend_type = 'client backend'
        and xact_start is not null and pid <> pg_backend_pid()) as oldest_transaction_age`
}

/** Table health alone (what tableHealthColumns reads), under the scrape's statement timeout. */
export async function tableHealthRead(
  sql: Sql,
  t: Tables,
): Promise<Pick<TableSnapshot, 'tables' | 'oldest_transaction_age'>> {
  const [, rows] = await sql.begin((tx) => [
    tx`select set_config('statement_timeout', ${SCRAPE_STATEMENT_TIMEOUT}, true)`,
    tx<Pick<TableSnapshot, 'tables' | 'oldest_transaction_age'>[]>`select ${tableHealthColumns(tx, t)}`,
  ])
  const row = rows[0]
  if (!row) throw new Error('table health read returned no row')
  return row
}
