/** Throughput history for charts. */
import type { Deps } from '../deps'
import { STATS_WINDOWS, type Stats, type StatsWindow } from './model'
import { statsRead } from './sql'

/** Per minute and kind over `window` (default an hour): enqueued, succeeded, failed, retried. */
export function getStats({ readSql, tables }: Deps, window: StatsWindow = '1h'): Promise<Stats> {
  return statsRead(readSql, tables, STATS_WINDOWS[window])
}
