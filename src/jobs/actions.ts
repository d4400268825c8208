/**
 * The operator's actions on jobs beyond cancel: retry, delete, and
 * cancel/retry/delete in bulk, on finished jobs wherever they are (hot, or moved
 * to history: src/history/).
 */
import { afterCommit } from '../after-commit'
import type { Queryable } from '../db/client'
import type { Tables } from '../db/tables'
import { dependentsMoved, movedAnnounced } from '../dependencies/effects'
import { settleWaiting } from '../dependencies/settle-sql'
import type { Deps } from '../deps'
import { Conflict, InvalidInput, NotFound } from '../errors'
import { historyBulkCount, historyBulkDelete, historyJobDelete } from '../history/actions-sql'
import { hotThenHistory } from '../history/hot-then-history'
import { jobsRestoredForBulk, jobsRestoredForRetry } from '../history/restore-sql'
import { recordJobTerminal } from '../metrics/record'
import {
  actionApplies,
  type BulkMoved,
  type BulkSelection,
  jobBulkApply,
  jobBulkCount,
  jobDelete,
  jobRetry,
} from './actions-sql'
import { type BulkAction, type BulkBody, type BulkResult, type Job, type JobDeleted, MAX_BULK } from './model'

/**
 * Sends a failed or cancelled job back to pending, due now, with one more attempt
 * when its attempts are used up; its runs stay. 404 unknown; 409 in any other state.
 */
export function retryJob(deps: Deps, id: string, cascade = false): Promise<Job> {
  return afterCommit(deps, async (effects) => {
    // One transaction: a job with dependencies (and each rearmed dependent) goes
    // back to waiting and is counted against its dependencies as they now stand.
    const { job, settled } = await deps.sql.begin(async (tx) => {
      // A finished job may be in history (and with cascade, so may the jobs its
      // end cancelled): first back into the hot table, in this transaction, so
      // that retry's one statement runs on it unchanged. A refusal below rolls
      // the restore back with it.
      await jobsRestoredForRetry(tx, deps.tables, id, cascade)
      const row = await jobRetry(tx, deps.tables, id, cascade)
      if (!row) throw new NotFound(`job ${id} not found`)
      if (!row.job) throw new Conflict(`job ${id} is ${row.prior_status}: only failed or cancelled jobs can be retried`)
      const waiting = [row.job, ...row.rearmed].filter((j) => j.status === 'waiting').map((j) => j.id)
      const settled = waiting.length > 0 ? await settleWaiting(tx, deps.tables, waiting) : []
      // Pending again: the hub wakes a waiting claimer of its kind.
      effects.announce([row.job, ...row.rearmed])
      return { job: row.job, settled }
    })
    // What the settling moved (the retried jobs themselves), then what their ends moved in turn.
    movedAnnounced(effects, settled)
    await dependentsMoved(deps.sql, deps.tables, effects, settled)
    const now = settled.find((j) => j.id === job.id)
    return now ? { ...job, status: now.status as Job['status'] } : job
  })
}

/**
 * Deletes a terminal job, its runs and its key: from the hot table, or from
 * history, where it stays until then (no restore needed). 404 unknown; 409
 * while waiting, pending or active.
 */
export function deleteJob(deps: Deps, id: string): Promise<JobDeleted> {
  const { sql, tables } = deps
  return afterCommit(deps, async (effects) => {
    const row = await hotThenHistory(
      () => jobDelete(sql, tables, id),
      () => historyJobDelete(sql, tables, id),
    )
    if (!row) throw new NotFound(`job ${id} not found`)
    if (!row.gone) {
      throw new Conflict(`job ${id} is ${row.prior_status}: only succeeded, failed or cancelled jobs can be deleted`)
    }
    // As retention announces it: streams send `event: deleted`.
    effects.announce([{ ...row.gone, status: 'deleted' }])
    return { id }
  })
}

/**
 * Applies `action` to up to `limit` matching jobs in one statement (see
 * jobBulkApply), or with `dry_run` only counts them. Each moved job is announced
 * and counted as its one-job route would: a cancel that ended a pending job counts
 * it as terminal.
 */
export async function bulkAction(deps: Deps, body: BulkBody): Promise<BulkResult> {
  const selection = selectionOf(body)
  const limit = body.limit ?? MAX_BULK
  const { sql, tables } = deps
  if (body.dry_run) {
    const hot = await jobBulkCount(sql, tables, body.action, selection, limit + 1)
    // Finished jobs may be in history too; a cancel applies to live jobs only, never there.
    const history =
      body.action === 'cancel' || hot > limit
        ? 0
        : await historyBulkCount(sql, tables, body.action, selection, limit + 1)
    const found = hot + history
    return { matched: Math.min(found, limit), changed: 0, more: found > limit }
  }
  return afterCommit(deps, async (effects) => {
    // A retried job with dependencies is waiting again: counted against them in the same transaction.
    const { found, moved, settled } = await sql.begin(async (tx) => {
      const applied = await bulkApplied(tx, tables, body.action, selection, limit)
      const waiting = applied.moved.filter((j) => j.status === 'waiting').map((j) => j.id)
      return { ...applied, settled: waiting.length > 0 ? await settleWaiting(tx, tables, waiting) : [] }
    })
    effects.announce(moved)
    await dependentsMoved(sql, tables, effects, moved)
    movedAnnounced(effects, settled)
    await dependentsMoved(sql, tables, effects, settled)
    if (body.action === 'cancel') {
      const ended = moved.filter((job) => job.prior_status === 'pending' || job.prior_status === 'waiting')
      effects.count((m) => {
        for (const job of ended) recordJobTerminal(m, job)
      })
    }
    const matched = Math.min(found, limit)
    // A matched job not moved was held by another statement: the next call re-reads it.
    return { matched, changed: moved.length, more: found > limit || moved.length < matched }
  })
}

/**
 * jobBulkApply, with the finished jobs that moved to history among the first
 * `limit` matching ones (hot and history merged, oldest id first): a retry
 * restores them first, so that jobBulkApply takes them with the hot ones; a
 * delete removes them from history directly and leaves jobBulkApply the rest of
 * the limit, which is the oldest hot ones. `found` counts both tables.
 */
async function bulkApplied(
  tx: Queryable,
  tables: Tables,
  action: BulkAction,
  selection: BulkSelection,
  limit: number,
): Promise<{ found: number; moved: BulkMoved[] }> {
  if (action === 'cancel') return jobBulkApply(tx, tables, action, selection, limit)
  if (action === 'retry') {
    const restored = await jobsRestoredForBulk(tx, tables, actionApplies(tx, 'retry'), selection, limit)
    const applied = await jobBulkApply(tx, tables, action, selection, limit)
    return { found: Math.max(restored.found, applied.found), moved: applied.moved }
  }
  const history = await historyBulkDelete(tx, tables, selection, limit)
  const rest = limit - history.fromHistory
  const hot = rest > 0 ? await jobBulkApply(tx, tables, action, selection, rest) : { found: 0, moved: [] }
  return {
    found: Math.max(history.found, history.fromHistory + hot.found),
    moved: [...history.moved, ...hot.moved],
  }
}

/** The ids or the filter of a bulk body; exactly one must be given. */
function selectionOf(body: BulkBody): BulkSelection {
  if (body.ids !== undefined && body.filter !== undefined) {
    throw new InvalidInput('ids', 'give either ids or filter, not both')
  }
  if (body.ids !== undefined) return { ids: body.ids }
  if (body.filter !== undefined) return { filter: body.filter }
  throw new InvalidInput('filter', 'is required (or ids): say which jobs to act on; {} matches every job')
}
