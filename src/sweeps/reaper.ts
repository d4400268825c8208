import { afterCommit } from '../after-commit'
import { dependentsMoved } from '../dependencies/effects'
import type { Deps } from '../deps'
import { markStragglers } from '../limits/stragglers-sql'
import { recordJobTerminal, recordRunEnded } from '../metrics/record'
import type { Metrics } from '../metrics/registry'
import { runAbandonExpired, type SweptRun } from '../runs/sql/reaper'
import { type SweepLoop, startSweepLoop } from './loop'
import { expireUnclaimed, timeOutRuns } from './time-limits'

const BATCH = 500

/**
 * Abandons every run whose lease has expired and moves its job on, in batches so
 * one sweep never holds thousands of row locks. Idempotent: two instances sweeping
 * at once skip each other's locked rows.
 */
export async function reapExpiredLeases(deps: Deps): Promise<{ reaped: number }> {
  const { sql, tables, metrics } = deps
  let reaped = 0
  try {
    for (;;) {
      const runs = await afterCommit(deps, async (effects) => {
        const { runs, jobs, ended } = await runAbandonExpired(sql, tables, BATCH)
        effects.announce(jobs)
        effects.count((m) => {
          m.reaperReaped.inc(ended.length)
          countSweptRuns(m, ended, 'abandoned')
        })
        await dependentsMoved(sql, tables, effects, ended)
        return runs
      })
      reaped += runs
      if (runs < BATCH) break
    }
  } catch (err) {
    metrics.reaperSweeps.inc({ outcome: 'error' })
    throw err
  }
  metrics.reaperSweeps.inc({ outcome: 'success' })
  return { reaped }
}

/** Counts a sweep's batch: the runs it ended, and the jobs that ended with them (no attempts left, or cancelled). */
export function countSweptRuns(m: Metrics, runs: SweptRun[], runStatus: 'abandoned' | 'failed'): void {
  for (const r of runs) {
    recordRunEnded(m, {
      kind: r.run_kind,
      status: runStatus,
      started_at: r.run_started_at,
      finished_at: r.run_finished_at,
    })
    if (r.status && r.job_enqueued_at) {
      recordJobTerminal(m, {
        kind: r.run_kind,
        status: r.status,
        enqueued_at: r.job_enqueued_at,
        completed_at: r.job_completed_at,
      })
    }
  }
}

/** The reaper on its timer (FOREMAN_REAPER_INTERVAL_SEC). */
export function startReaper(deps: Deps): SweepLoop {
  return startSweepLoop({
    name: 'reaper',
    intervalMs: deps.config.reaperIntervalSec * 1000,
    log: deps.log,
    // Its tick also enforces the time limits (sweeps/time-limits.ts) and marks jobs
    // enqueued unmarked as their kind gained limits.
    sweep: async () => ({
      ...(await reapExpiredLeases(deps)),
      ...(await timeOutRuns(deps)),
      ...(await expireUnclaimed(deps)),
      marked: await markStragglers(deps.sql, deps.tables),
    }),
  })
}
