/**
 * Fast loading of a realistic backlog, for the plan test (tests/hot-plans.test.ts)
 * and the benchmark (bench/backlog.ts): INSERT … SELECT from generate_series, jobs
 * and their runs in one statement per chunk, rows shaped as the app's own
 * statements leave them (checkLoaderFidelity compares the two).
 *
 * This file: the sizes and the loading. The groups and their time line:
 * backlog-groups.ts; the fidelity check: backlog-fidelity.ts; VACUUM ANALYZE and
 * counts: backlog-stats.ts.
 */
import type { Sql } from '../../src/db/client'
import type { Tables } from '../../src/db/tables'
import { GROUPS, type Group, insertRange } from './backlog-groups'

/** The near-empty working set both prefixes get: what the statements act on. */
export interface WorkingSet {
  /** Pending jobs per kind (a, b, c). */
  pendingPerKind: number
  /** Active jobs with running runs, fresh leases. */
  active: number
  /** Active jobs whose lease has expired (the reaper's). */
  expired: number
}

/** The backlog only the loaded prefix gets. */
export interface Backlog {
  finished: number
  /** Pending across kinds a, b, c. */
  pending: number
  /** Kind c, waiting out a retry backoff, at the head of c's queue. */
  backoff: number
  tomorrow: number
}

/** The benchmark's sizes (issue 9). */
export const BENCH_BACKLOG: Backlog = { finished: 1_000_000, pending: 300_000, backoff: 100_000, tomorrow: 10_000 }
/** The benchmark's working set. */
export const BENCH_WORKING_SET: WorkingSet = { pendingPerKind: 200, active: 200, expired: 20 }

const CHUNK = 100_000

/** Inserts a whole group in chunks; `onChunk` hears progress. */
async function insertGroup(
  sql: Sql,
  t: Tables,
  g: Group,
  count: number,
  onChunk?: (group: string, done: number, count: number) => void,
): Promise<void> {
  for (let lo = 1; lo <= count; lo += CHUNK) {
    const hi = Math.min(count, lo + CHUNK - 1)
    await insertRange(sql, t, g, count, lo, hi)
    onChunk?.(g.name, hi, count)
  }
}

/** Loads the working set: pending per kind, active (fresh and expired), and 5 `rare` finished jobs. */
export async function loadWorkingSet(sql: Sql, t: Tables, w: WorkingSet): Promise<void> {
  await insertGroup(sql, t, GROUPS.rare, 5)
  await insertGroup(sql, t, GROUPS.active, w.active)
  await insertGroup(sql, t, GROUPS.expired, w.expired)
  await insertGroup(sql, t, GROUPS.wpending, w.pendingPerKind * 3)
}

/** Loads the backlog (finished, backoff, pending, tomorrow); `onChunk` hears progress. */
export async function loadBacklog(
  sql: Sql,
  t: Tables,
  b: Backlog,
  onChunk?: (group: string, done: number, count: number) => void,
): Promise<void> {
  await insertGroup(sql, t, GROUPS.finished, b.finished, onChunk)
  await insertGroup(sql, t, GROUPS.backoff, b.backoff, onChunk)
  await insertGroup(sql, t, GROUPS.pending, b.pending, onChunk)
  await insertGroup(sql, t, GROUPS.tomorrow, b.tomorrow, onChunk)
}
