/**
 * Reads of a recent window over history (GET /stats, /queues, /workers) name the
 * window on the partition key too, so Postgres skips the days before it at
 * executor start ("Subplans Removed"), and the window's own index reads only
 * the days that may hold it.
 */
import type { Fragment, Queryable } from '../db/client'

/**
 * A lower bound on the completion (partition key) of a historic job whose
 * other time column (`enqueued_at`, a run's `finished_at`) is at or after `since`.
 * A job completes after it is enqueued and with or after its last run ends,
 * but `now()` is when a statement's transaction began: a cancel that waited on a
 * lock held by a run's fail can stamp the job a moment before the run. A day of
 * slack keeps every such job; it costs one more day's index probe at most, never
 * more rows (the window's own condition still filters by its index).
 */
export function completedNoEarlierThan(sql: Queryable, since: Fragment): Fragment {
  return sql`(${since}) - interval '1 day'`
}
