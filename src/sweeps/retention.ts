import { afterCommit } from '../after-commit'
import type { Deps } from '../deps'
import { jobDeleteExpired } from '../jobs/sql'
import { type SweepLoop, startSweepLoop } from './loop'

const BATCH = 1000

/** Deletes terminal jobs (and their runs) completed more than `days` ago. */
export async function pruneHistory(deps: Deps, days: number): Promise<{ deleted: number }> {
  let deleted = 0
  for (;;) {
    const n = await afterCommit(deps, async (effects) => {
      const gone = await jobDeleteExpired(deps.sql, deps.tables, days, BATCH)
      effects.announce(gone)
      effects.count((m) => m.retentionDeleted.inc(gone.length))
      return gone.length
    })
    deleted += n
    if (n < BATCH) return { deleted }
  }
}

/**
 * Retention on the reaper's cadence (SPEC gives it no interval of its own; with
 * nothing due the delete is one probe of the completed_at index). Null when
 * FOREMAN_RETENTION_DAYS is 0: history is kept forever.
 */
export function startRetention(deps: Deps): SweepLoop | null {
  const days = deps.config.retentionDays
  if (days <= 0) return null
  return startSweepLoop({
    name: 'retention',
    intervalMs: deps.config.reaperIntervalSec * 1000,
    log: deps.log,
    sweep: () => pruneHistory(deps, days),
  })
}
