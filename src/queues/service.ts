/** The rules of queues: the overview, and pausing a queue for every claim on every instance. */
import { afterCommit } from '../after-commit'
import type { Deps } from '../deps'
import type { QueueState, QueueSummary } from './model'
import { queueList, queuePause, queueResume } from './sql'

/** Every queue with live work, recent endings or a pause, by name. */
export function listQueues({ readSql, tables }: Deps): Promise<QueueSummary[]> {
  return queueList(readSql, tables)
}

/**
 * Pauses a queue: from the commit on, every claim on every instance skips its
 * jobs (they read the pause in the claim statement itself). Nothing is announced:
 * no job changed, and a claimer that would have taken one simply finds none.
 */
export function pauseQueue({ sql, tables }: Deps, queue: string): Promise<QueueState> {
  return queuePause(sql, tables, queue)
}

/**
 * Resumes a queue and, after the commit, announces the head of each of its
 * kinds' due jobs as pending: the hint that wakes one waiting long-poll claimer
 * per kind here and, through NOTIFY, on every other instance (each claimer that
 * then takes a job wakes the next, see runs/waiters.ts).
 */
export async function resumeQueue(deps: Deps, queue: string): Promise<QueueState> {
  await afterCommit(deps, async (effects) => {
    effects.announce(await queueResume(deps.sql, deps.tables, queue))
  })
  return { queue, paused: false, paused_at: null }
}
