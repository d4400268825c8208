/**
 * The time limits' sweeps, run on the reaper's tick: jobs past their time to live
 * (expires_in_seconds) are cancelled, runs past their job's timeout_seconds fail.
 * Both go in batches, so one sweep never holds thousands of row locks, and both are
 * idempotent: two instances sweeping at once skip each other's locked rows.
 */
import { afterCommit, type Effects } from '../after-commit'
import { dependentsMoved } from '../dependencies/effects'
import type { Deps } from '../deps'
import { recordJobTerminal } from '../metrics/record'
import { jobExpireMany } from '../runs/sql/expiry'
import { runTimeOutMany } from '../runs/sql/timeout'
import { countSweptRuns } from './reaper'

const BATCH = 500

/** Cancels every job not claimed before it expired, with error "expired"; answers how many. */
export async function expireUnclaimed(deps: Deps): Promise<{ expired: number }> {
  const expired = await inBatches(deps, async (effects) => {
    const jobs = await jobExpireMany(deps.sql, deps.tables, BATCH)
    effects.announce(jobs)
    effects.count((m) => {
      for (const job of jobs) recordJobTerminal(m, job)
    })
    await dependentsMoved(deps.sql, deps.tables, effects, jobs)
    return jobs.length
  })
  return { expired }
}

/** Fails every run that outlived its job's timeout_seconds, with error "timed out"; answers how many. */
export async function timeOutRuns(deps: Deps): Promise<{ timedOut: number }> {
  const timedOut = await inBatches(deps, async (effects) => {
    const { jobs, ended } = await runTimeOutMany(deps.sql, deps.tables, BATCH)
    effects.announce(jobs)
    effects.count((m) => countSweptRuns(m, ended, 'failed'))
    await dependentsMoved(deps.sql, deps.tables, effects, ended)
    return ended.length
  })
  return { timedOut }
}

/** Runs `batch` (one statement, its effects after its commit) until it does less than a full batch; answers the total. */
async function inBatches(deps: Deps, batch: (effects: Effects) => Promise<number>): Promise<number> {
  let total = 0
  for (;;) {
    const n = await afterCommit(deps, batch)
    total += n
    if (n < BATCH) return total
  }
}
