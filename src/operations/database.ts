/**
 * GET /database: the health of Foreman's tables that /metrics already reads
 * (dead tuples, last autovacuum and autoanalyze, the oldest open transaction),
 * with a warning in plain words for each sign of trouble: what it means for
 * Foreman and what to do about it.
 */
import { Elysia, t } from 'elysia'
import type { Deps } from '../deps'
import { Nullable, Timestamp } from '../http/schema'
import { type TableHealth, tableHealthRead } from '../metrics/sql'

/** When the health counts as bad. */
export interface HealthThresholds {
  /** Dead row versions in a table above this many … */
  deadTuples: number
  /** … and above this share of its live rows. */
  deadShareOfLive: number
  /** An open transaction older than this many seconds. */
  oldestTransactionSec: number
  /** No autovacuum for this many seconds while more than `deadTuples` dead rows wait. */
  autovacuumQuietSec: number
}

/** The defaults: 10,000 dead rows and 20% of live; a transaction open for 5 minutes; no autovacuum for a day. */
export const DEFAULT_THRESHOLDS: HealthThresholds = {
  deadTuples: 10_000,
  deadShareOfLive: 0.2,
  oldestTransactionSec: 300,
  autovacuumQuietSec: 86_400,
}

/** One table's health, as GET /database answers it. */
export const TableHealthRow = t.Object({
  table: t.String(),
  live_tuples: t.Number({ description: 'Estimated live rows' }),
  dead_tuples: t.Number({ description: 'Dead row versions waiting for vacuum' }),
  last_autovacuum: Nullable(Timestamp),
  last_autoanalyze: Nullable(Timestamp),
})

/** What GET /database answers. */
export const DatabaseHealth = t.Object({
  tables: t.Array(TableHealthRow),
  oldest_transaction_age_seconds: t.Number({
    description: "How long the oldest open transaction in this database has been open (this request's excluded)",
  }),
  warnings: t.Array(t.String(), { description: 'What looks wrong and what to do; empty when all is well' }),
})
export type DatabaseHealth = typeof DatabaseHealth.static

/** "7 minutes", "3.5 hours", "2 days". */
function duration(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)} seconds`
  if (seconds < 7_200) return `${Math.round(seconds / 60)} minutes`
  if (seconds < 172_800) return `${Math.round(seconds / 360) / 10} hours`
  return `${Math.round(seconds / 8_640) / 10} days`
}

const count = (n: number) => n.toLocaleString('en-US')

/** The warnings a health reading calls for, in plain words; `nowSec` is Unix seconds. */
export function healthWarnings(
  tables: TableHealth[],
  oldestTransactionAge: number,
  nowSec: number,
  limits: HealthThresholds = DEFAULT_THRESHOLDS,
): string[] {
  const warnings: string[] = []
  if (oldestTransactionAge > limits.oldestTransactionSec) {
    warnings.push(
      `A transaction in this database has been open for ${duration(oldestTransactionAge)}. Until it ends, vacuum cannot remove rows changed since it began, so dead rows pile up in every table and claims slow down. Find it in pg_stat_activity (the oldest xact_start; "idle in transaction" is the usual culprit) and end it: commit or roll it back, or pg_terminate_backend(pid).`,
    )
  }
  for (const h of tables) {
    if (h.dead_tuples > limits.deadTuples && h.dead_tuples > h.live_tuples * limits.deadShareOfLive) {
      const share = h.live_tuples > 0 ? `${Math.round((h.dead_tuples / h.live_tuples) * 100)}% of` : 'more than'
      warnings.push(
        `Table ${h.table} holds ${count(h.dead_tuples)} dead row versions, ${share} its ${count(h.live_tuples)} live rows: vacuum is not keeping up, and claims and lists slow down stepping over them. Look for a long-open transaction (it keeps vacuum from removing them) and check that autovacuum runs on this table; VACUUM (ANALYZE) ${h.table} removes now what no transaction still needs.`,
      )
    }
    const quietFor = h.last_autovacuum === null ? null : nowSec - h.last_autovacuum
    if (h.dead_tuples > limits.deadTuples && (quietFor === null || quietFor > limits.autovacuumQuietSec)) {
      const since = quietFor === null ? 'since its statistics were last reset' : `for ${duration(quietFor)}`
      warnings.push(
        `Autovacuum has not vacuumed ${h.table} ${since} while ${count(h.dead_tuples)} dead row versions wait. Check that autovacuum is on (SHOW autovacuum; and the table's autovacuum_enabled) and not held back by a long transaction, and run VACUUM (ANALYZE) ${h.table} meanwhile.`,
      )
    }
  }
  return warnings
}

/** Unix seconds (or null) as an RFC 3339 timestamp. */
const stamp = (sec: number | null) => (sec === null ? null : new Date(sec * 1000).toISOString())

/** Reads the health of Foreman's tables and the warnings it calls for. */
export async function databaseHealth(
  deps: Deps,
  limits: HealthThresholds = DEFAULT_THRESHOLDS,
): Promise<DatabaseHealth> {
  const { tables, oldest_transaction_age } = await tableHealthRead(deps.sql, deps.tables)
  const sorted = [...tables].sort((a, b) => (a.table < b.table ? -1 : 1))
  return {
    tables: sorted.map((h) => ({
      table: h.table,
      live_tuples: h.live_tuples,
      dead_tuples: h.dead_tuples,
      last_autovacuum: stamp(h.last_autovacuum),
      last_autoanalyze: stamp(h.last_autoanalyze),
    })),
    oldest_transaction_age_seconds: oldest_transaction_age,
    warnings: healthWarnings(sorted, oldest_transaction_age, Date.now() / 1000, limits),
  }
}

/** GET /database. */
export const databaseRoutes = (deps: Deps) =>
  new Elysia().get('/database', () => databaseHealth(deps), {
    response: { 200: DatabaseHealth },
    detail: {
      tags: ['operations'],
      summary: 'Database health',
      description:
        "Postgres' statistics for Foreman's jobs and runs tables (live and dead rows, last autovacuum and autoanalyze) and the age of the oldest open transaction in the database, as /metrics reads them, with a warning in plain words when something is wrong: dead rows above 10,000 and 20% of live, a transaction open for more than 5 minutes, or no autovacuum for a day while dead rows pile up. Without pg_read_all_stats (pg_monitor) the transaction age covers Foreman's own role only.",
    },
  })
