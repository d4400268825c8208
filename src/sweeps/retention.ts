import { afterCommit } from '../after-commit'
import type { Deps } from '../deps'
import { dropExpiredHistory } from '../history/service'
import { jobDeleteExpired } from '../jobs/sql'
import { type SweepLoop, startSweepLoop } from './loop'

const BATCH = 1000

/**
 * Deletes terminal jobs (and their runs) completed more than `days` ago: whole
 * days of history are dropped (src/history/), and finished jobs still in the hot
 * tables (not moved yet) are deleted row by row, announced as `deleted` events.
 * A dropped day is not announced job by job: it can hold millions.
 */
export async function pruneHistory(deps: Deps, days: number): Promise<{ deleted: number }> {
  let deleted = await afterCommit(deps, async (effects) => {
    const { dropped } = await dropExpiredHistory(deps, days)
    effects.count((m) => m.retentionDeleted.inc(dropped))
    return dropped
  })
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
