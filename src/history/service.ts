/**
 * The rules of history: finished jobs leave the hot tables a little after they
 * finish (FOREMAN_HISTORY_AFTER_SEC), in batches, and retention drops history a
 * UTC day at a time. Both are sweeps; several instances may run them at once
 * (the move skips rows another holds, partition DDL takes turns).
 */
import type { Deps } from '../deps'
import {
  daysBetween,
  type HistoryDay,
  historyDays,
  historyDropDay,
  historyEnsureDay,
  historyMoveBatch,
  historyNextBatch,
} from './sql'

/** What history's rules need: the primary, the tables, and FOREMAN_HISTORY_AFTER_SEC (benchmarks build it bare). */
export type HistoryDeps = Pick<Deps, 'sql' | 'tables'> & { config: Pick<Deps['config'], 'historyAfterSec'> }

/** Jobs per move statement: big enough to amortise a statement, small enough to hold few locks briefly. */
export const HISTORY_BATCH = 2000

/** Days this process knows have partitions, per table prefix (only retention drops one, and only old days). */
const ensuredDays = new Map<string, Set<string>>()

async function ensureDays(deps: HistoryDeps, days: string[]): Promise<void> {
  const known = ensuredDays.get(deps.tables.prefix) ?? new Set<string>()
  ensuredDays.set(deps.tables.prefix, known)
  for (const day of days) {
    if (known.has(day)) continue
    await historyEnsureDay(deps.sql, deps.tables, day)
    known.add(day)
  }
}

/** Moves every job finished more than `afterSec` ago (and its runs) into history; answers how many. */
export async function moveFinishedJobs(
  deps: HistoryDeps,
  afterSec = deps.config.historyAfterSec,
): Promise<{ moved: number }> {
  let moved = 0
  for (;;) {
    const batch = await historyNextBatch(deps.sql, deps.tables, afterSec, HISTORY_BATCH)
    if (!batch) return { moved }
    await ensureDays(deps, daysBetween(batch.first, batch.last))
    const n = await historyMoveBatch(deps.sql, deps.tables, batch, HISTORY_BATCH)
    moved += n
    // Fewer than a batch: the rest is held by transitions or not due yet.
    if (n < HISTORY_BATCH) return { moved }
  }
}

/** The UTC day of `at`, as YYYY-MM-DD. */
const dayOf = (at: number) => new Date(at).toISOString().slice(0, 10)

/** Creates today's and tomorrow's partitions ahead of the first move into them. */
export function prepareHistoryDays(deps: HistoryDeps, now = Date.now()): Promise<void> {
  return ensureDays(deps, [dayOf(now), dayOf(now + 86_400_000)])
}

/**
 * Drops every day of history that ended more than `days` ago: a job goes once
 * its whole completion day is older than the retention, so it is kept between
 * `days` and `days` + 1 day after it completed. Answers the jobs dropped.
 */
export async function dropExpiredHistory(
  deps: HistoryDeps,
  days: number,
  now = Date.now(),
): Promise<{ dropped: number }> {
  const cutoff = now - days * 86_400_000
  const expired = (await historyDays(deps.sql, deps.tables)).filter(
    (d: HistoryDay) => Date.parse(`${d.day}T00:00:00Z`) + 86_400_000 <= cutoff,
  )
  let dropped = 0
  for (const day of expired) {
    dropped += await historyDropDay(deps.sql, deps.tables, day)
    ensuredDays.get(deps.tables.prefix)?.delete(day.day)
  }
  return { dropped }
}
