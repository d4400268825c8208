/**
 * The operator's actions on a finished job that has moved to history, where
 * the job can stay where it is: a delete removes it from history directly (its
 * runs and its key with it, in one statement), and a cancel answers it as it
 * stands. Actions that make a job live again restore it first (restore-sql.ts).
 */
import { plannedPerCall, type Queryable } from '../db/client'
import { literalLimit } from '../db/literal'
import type { Tables } from '../db/tables'
import {
  actionApplies,
  type BulkMoved,
  type BulkSelection,
  type JobGone,
  keysFreed,
  selectionWhere,
} from '../jobs/actions-sql'
import { jobColumns } from '../jobs/columns'
import type { Job } from '../jobs/model'
import { bulkCandidates } from './restore-sql'

/** A job row as stored (no current_run). */
type JobRow = Omit<Job, 'current_run'>

/**
 * The CTEs after a CTE `gone` of jobs deleted from history (with id, kind,
 * idempotency_key, completed_at): their runs (history has no foreign key to
 * cascade them) and their forever keys, deleted with them.
 */
function withRunsAndKeys(sql: Queryable, t: Tables) {
  return sql`
    gone_runs as (
      delete from ${sql(t.runsHistory)} r using gone g
      where r.job_id = g.id and r.job_completed_at = g.completed_at
    ), freed as (${keysFreed(sql, t, 'gone')})`
}

/**
 * Deletes one job from history, with its runs and its key, in one statement;
 * answers what it removed, or null when history does not hold it. Every job in
 * history is finished, so a delete always applies.
 */
export async function historyJobDelete(
  sql: Queryable,
  t: Tables,
  id: string,
): Promise<{ prior_status: string; gone: JobGone } | null> {
  const [row] = await sql<(JobGone & { status: string })[]>`
    with gone as (
      delete from ${sql(t.jobsHistory)} where id = ${id}
      returning id, kind, queue, status, idempotency_key, completed_at
    ), ${withRunsAndKeys(sql, t)}
    select id, kind, queue, status from gone`
  if (!row) return null
  const { status, ...gone } = row
  return { prior_status: status, gone }
}

/**
 * A job in history, as a cancel answers it: unchanged (it is finished), with
 * the status it has as `prior_status`, and no dependents (nothing moved them).
 */
export async function historyJobForCancel(
  sql: Queryable,
  t: Tables,
  id: string,
): Promise<(JobRow & { prior_status: string; dependents: null }) | null> {
  const [row] = await sql<(JobRow & { prior_status: string; dependents: null })[]>`
    select ${jobColumns(sql)}, null::text[] as dependents, status as prior_status
    from ${sql(t.jobsHistory)} where id = ${id}`
  return row ?? null
}

/** What a bulk delete did in history: matching jobs found (hot and history, up to limit + 1) and what it removed. */
export interface HistoryBulkDeleted {
  found: number
  /** Picked jobs that were in history: the rest of the `limit` are the oldest hot ones. */
  fromHistory: number
  moved: BulkMoved[]
}

/**
 * The history part of a bulk delete: of the first `limit` matching jobs (hot
 * and history merged, oldest id first), deletes the ones in history with their
 * runs and keys, in one statement. The caller deletes the hot ones with
 * jobBulkApply and a limit of `limit - fromHistory`, which takes exactly those.
 * Rows another statement holds are skipped, never waited for (see jobBulkApply).
 */
export async function historyBulkDelete(
  sql: Queryable,
  t: Tables,
  s: BulkSelection,
  limit: number,
): Promise<HistoryBulkDeleted> {
  const rows = await sql<(Partial<BulkMoved> & { found: number; from_history: number })[]>`
    with ${bulkCandidates(sql, t, actionApplies(sql, 'delete'), s, limit)}, locked as (
      select j.id, j.status as prior_status from ${sql(t.jobsHistory)} j
      where j.id = any(array(select id from picked where in_history))
      for update skip locked
    ), gone as (
      delete from ${sql(t.jobsHistory)} j using locked where j.id = locked.id
      returning j.id, j.kind, j.queue, j.idempotency_key, j.enqueued_at, j.completed_at, locked.prior_status
    ), ${withRunsAndKeys(sql, t)}
    select c.found, c.from_history, gone.id, 'deleted'::text as status, gone.prior_status, gone.kind, gone.queue,
           gone.enqueued_at, gone.completed_at, null::text[] as dependents
    from (select (select count(*) from candidates)::int as found,
                 (select count(*) from picked where in_history)::int as from_history) c
    left join gone on true`
  const found = rows[0]?.found ?? 0
  const fromHistory = rows[0]?.from_history ?? 0
  const moved = rows
    .filter((r): r is BulkMoved & { found: number; from_history: number } => r.id != null)
    .map(({ found: _, from_history: __, ...m }) => m)
  return { found, fromHistory, moved }
}

/**
 * How many jobs in history a bulk `action` (retry or delete) applies to among
 * the selected, counting at most `cap` (a dry run's count adds it to the hot
 * table's). Reads only.
 */
export async function historyBulkCount(
  sql: Queryable,
  t: Tables,
  action: 'retry' | 'delete',
  s: BulkSelection,
  cap: number,
): Promise<number> {
  const [row] = await plannedPerCall(sql<{ n: number }[]>`
    select count(*)::int as n from (
      select 1 from ${sql(t.jobsHistory)} j
      where ${actionApplies(sql, action)} ${selectionWhere(sql, s)}
      limit ${literalLimit(sql, cap)}
    ) c`)
  return row?.n ?? 0
}
