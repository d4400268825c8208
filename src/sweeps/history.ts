import type { Deps } from '../deps'
import { moveFinishedJobs, prepareHistoryDays } from '../history/service'
import { type SweepLoop, startSweepLoop } from './loop'

/**
 * How often finished jobs are moved to history. Every second, so that the hot
 * tables hold little more than FOREMAN_HISTORY_AFTER_SEC of finished work; with
 * nothing due a tick is one probe of the completed_at index.
 */
export const HISTORY_SWEEP_MS = 1000

/** One tick: today's and tomorrow's partitions made ahead, then every due job moved. */
export async function sweepHistory(deps: Deps): Promise<{ moved: number }> {
  await prepareHistoryDays(deps)
  const outcome = await moveFinishedJobs(deps)
  deps.metrics.historyMoved.inc(outcome.moved)
  return outcome
}

/** The history move on its own timer; every instance runs one (moves skip each other's rows). */
export function startHistory(deps: Deps): SweepLoop {
  return startSweepLoop({
    name: 'history',
    intervalMs: HISTORY_SWEEP_MS,
    log: deps.log,
    sweep: () => sweepHistory(deps),
  })
}
