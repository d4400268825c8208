import type { Deps } from '../deps'
import { runAbandonExpired } from '../runs/sql'
import { type SweepLoop, startSweepLoop } from './loop'

const BATCH = 500

/**
 * Abandons every run whose lease has expired and moves its job on, in batches so
 * one sweep never holds thousands of row locks. Idempotent: two instances sweeping
 * at once skip each other's locked rows.
 */
export async function reapExpiredLeases({ sql, tables, events }: Deps): Promise<{ reaped: number }> {
  let reaped = 0
  for (;;) {
    const { runs, jobs } = await runAbandonExpired(sql, tables, BATCH)
    events.hub.publish(jobs)
    reaped += runs
    if (runs < BATCH) return { reaped }
  }
}

/** The reaper on its timer (FOREMAN_REAPER_INTERVAL_SEC). */
export function startReaper(deps: Deps): SweepLoop {
  return startSweepLoop({
    name: 'reaper',
    intervalMs: deps.config.reaperIntervalSec * 1000,
    log: deps.log,
    sweep: () => reapExpiredLeases(deps),
  })
}
