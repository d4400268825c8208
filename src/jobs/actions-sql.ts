/**
 * The operator's actions on jobs (cancel, retry, delete): which jobs each applies
 * to and what it writes, as fragments, and the statements that apply them to one
 * job or to a bounded batch. One job and a batch share the fragments, so a job
 * moves by the same rule either way (cancel's is jobCancel's, in sql.ts).
 */
import { plannedPerCall, type Queryable, type Sql } from '../db/client'
import { literalLimit } from '../db/literal'
import { nextStamp } from '../db/rows'
import type { Tables } from '../db/tables'
import { flowControlled, flowSlotsEnsured } from '../limits/enqueue-sql'
import { jobColumns } from './columns'
import type { BulkAction, Job } from './model'
import { cancelSet, type JobFilter, jobFilterWhere } from './sql'

/** A job row as stored (no current_run). */
type JobRow = Omit<Job, 'current_run'>

/**
 * The jobs (as row `j`) an action moves. Retry and delete of any other job are a
 * 409; bulk calls match only these. (Cancel of one job also answers a terminal or
 * already cancel-requested job, unchanged.)
 */
export function actionApplies(sql: Queryable, action: BulkAction) {
  switch (action) {
    case 'cancel':
      return sql`(j.status in ('waiting', 'pending') or (j.status = 'active' and not j.cancel_requested))`
    case 'retry':
      return sql`j.status in ('failed', 'cancelled')`
    case 'delete':
      return sql`j.status in ('succeeded', 'failed', 'cancelled')`
  }
}

/**
 * Retry, on a failed or cancelled row `j`: pending and due now (scheduled_at = now,
 * as a failed attempt with zero backoff, so it queues behind jobs due before it),
 * no longer terminal (completed_at and result cleared; the table ties completed_at
 * to a terminal status), cancel_requested cleared, and one more attempt allowed
 * when its attempts are used up. attempt_count and the runs stay: the next claim
 * is attempt attempt_count + 1.
 */
function retrySet(sql: Queryable, t: Tables) {
  return sql`
    status = case when j.depends_on is null then 'pending' else 'waiting' end,
    waiting_on = cardinality(j.depends_on),
    error = null,
    -- A retry is a request to run it now: an expiry that passed would cancel it again.
    expires_at = null,
    flow_controlled = ${flowControlled(sql, t, sql`j.kind`)},
    scheduled_at = now(),
    completed_at = null,
    result = null,
    cancel_requested = false,
    max_attempts = greatest(j.max_attempts, j.attempt_count + 1),
    updated_at = ${nextStamp(sql, 'j.updated_at')}`
}

/**
 * Retries one job in one statement; answers the status it found (locked, so the
 * latest committed) and the job when it moved, or null when no such job exists.
 * A job with dependencies goes back to `waiting` (the caller settles it: see
 * settleWaiting). With `cascade`, the jobs its end cancelled (error `dependency
 * …`, transitively) go back to `waiting` too, and are answered as `rearmed`.
 */
export async function jobRetry(
  sql: Queryable,
  t: Tables,
  id: string,
  cascade = false,
): Promise<{ prior_status: string; job: JobRow | null; rearmed: JobRow[] } | null> {
  const jobs = sql(t.jobs)
  const [row] = await sql<(Partial<JobRow> & { prior_status: string; rearmed: JobRow[] | null })[]>`
    with recursive prior as (
      select id, status from ${jobs} where id = ${id} for update
    ), retried as (
      update ${jobs} j set ${retrySet(sql, t)}
      from prior
      where j.id = prior.id and ${actionApplies(sql, 'retry')}
      returning ${jobColumns(sql, 'j')}, j.flow_controlled, j.dependents
    ), slotted as (${flowSlotsEnsured(sql, t, 'retried')}),
    ${cascade ? rearmedCtes(sql, t) : sql`rearmed as (select null::jsonb as job where false)`}
    select prior.status as prior_status, ${jobColumns(sql, 'retried')},
           (select jsonb_agg(job) from rearmed) as rearmed
    from prior left join retried on true`
  if (!row) return null
  const { prior_status, rearmed, ...job } = row
  return { prior_status, job: job.id ? (job as JobRow) : null, rearmed: rearmed ?? [] }
}

/**
 * The CTEs `rearm` and `rearmed` after `retried`: every job the retried job's
 * end cancelled through its dependencies (error `dependency …`), following
 * dependents down, back to `waiting` with nothing counted yet (settled after).
 */
function rearmedCtes(sql: Queryable, t: Tables) {
  const jobs = sql(t.jobs)
  return sql`
    rearm(id) as (
      select x.id from retried r cross join unnest(r.dependents) as x(id) where r.dependents is not null
      union
      select x.id from rearm a
      join ${jobs} d on d.id = a.id and d.status = 'cancelled' and d.error like 'dependency %'
      cross join unnest(d.dependents) as x(id)
      where d.dependents is not null
    ), rearmed as (
      update ${jobs} d set
        status = 'waiting', error = null, completed_at = null, cancel_requested = false,
        waiting_on = cardinality(d.depends_on), updated_at = ${nextStamp(sql, 'd.updated_at')}
      where d.id in (select id from rearm) and d.status = 'cancelled' and d.error like 'dependency %'
      returning to_jsonb(d) - 'flow_controlled' - 'depends_on' - 'dependents' - 'waiting_on'
                - 'on_dependency_failure' - 'unique_while_active' as job
    )`
}

/** What a delete removed: enough for its `deleted` hint. */
export interface JobGone {
  id: string
  kind: string
  queue: string
}

/**
 * A CTE body that frees the forever keys (job_keys, migrations/009) of the jobs
 * in `gone` (a CTE with id, kind and idempotency_key): a deleted job's key can
 * be used again, as it could when the unique index on jobs was its only record.
 * Matched on job_id too: a job keyed while active has no claim, and its key's
 * text may be another job's forever key.
 */
export function keysFreed(sql: Queryable, t: Tables, gone: string) {
  return sql`
    delete from ${sql(t.jobKeys)} k using ${sql(gone)} g
    where g.idempotency_key is not null
      and k.kind = g.kind and k.idempotency_key = g.idempotency_key and k.job_id = g.id`
}

/**
 * Deletes one terminal job in one statement (its runs go by the foreign key's
 * cascade, its key with it); answers the status it found and what it removed, or null when no such
 * job exists.
 */
export async function jobDelete(
  sql: Sql,
  t: Tables,
  id: string,
): Promise<{ prior_status: string; gone: JobGone | null } | null> {
  const [row] = await sql<{ prior_status: string; id: string | null; kind: string | null; queue: string | null }[]>`
    with prior as (
      select id, status from ${sql(t.jobs)} where id = ${id} for update
    ), gone as (
      delete from ${sql(t.jobs)} j using prior
      where j.id = prior.id and ${actionApplies(sql, 'delete')}
      returning j.id, j.kind, j.queue, j.idempotency_key
    ), freed as (${keysFreed(sql, t, 'gone')})
    select prior.status as prior_status, gone.id, gone.kind, gone.queue from prior left join gone on true`
  if (!row) return null
  const { prior_status, id: goneId, kind, queue } = row
  return { prior_status, gone: goneId && kind !== null && queue !== null ? { id: goneId, kind, queue } : null }
}

/** Which jobs a bulk call looks at: a list of ids, or a filter. */
export type BulkSelection = { ids: string[] } | { filter: JobFilter }

/** The selection's conditions on row `j`, each as `and …` (a list of ids, or a filter). */
export function selectionWhere(sql: Queryable, s: BulkSelection) {
  return 'ids' in s ? sql`and j.id = any(${s.ids}::text[])` : jobFilterWhere(sql, s.filter)
}

/**
 * How many selected jobs the action applies to, counting at most `cap`: a dry run
 * asks for limit + 1 to tell whether more remain. Reads only.
 */
export async function jobBulkCount(
  sql: Sql,
  t: Tables,
  action: BulkAction,
  s: BulkSelection,
  cap: number,
): Promise<number> {
  const [row] = await plannedPerCall(sql<{ n: number }[]>`
    select count(*)::int as n from (
      select 1 from ${sql(t.jobs)} j
      where ${actionApplies(sql, action)} ${selectionWhere(sql, s)}
      limit ${literalLimit(sql, cap)}
    ) c`)
  return row?.n ?? 0
}

/** A job a bulk call moved, with the status it had (for metrics) and where it went (`deleted` for a delete). */
export interface BulkMoved {
  id: string
  status: string
  prior_status: string
  kind: string
  queue: string
  enqueued_at: string
  completed_at: string | null
  /** Its dependents (what a cancel that ended it moved: see dependencies/effects.ts); null for a delete. */
  dependents: string[] | null
}

/**
 * Applies `action` to up to `limit` selected jobs it applies to, oldest id first,
 * in one statement. Answers how many it found (counting up to limit + 1, so the
 * caller knows whether more remain) and the jobs it moved.
 *
 * Rows are locked with SKIP LOCKED, not waited for. The statements of running
 * workers lock a run, then its job (complete, fail, the reaper, a batch complete
 * of many runs in no set order), and the claim holds the jobs it picks while it
 * opens their runs. A bulk statement that waited, holding the jobs it had already
 * locked, could close a cycle with any of them: Postgres then aborts one side
 * (40P01), a 500 for the bulk call or for a worker. Skipping never waits, so it
 * is never part of a cycle. A job skipped because someone holds it is still
 * counted as found but not as moved; the caller reports `more`, and the next call
 * re-reads it in whatever state that statement left it (a claimed job is then
 * active, and a bulk cancel requests its cancel). The lock re-checks the rule on
 * the latest committed row, so a job that moved on since the read is not touched.
 */
export async function jobBulkApply(
  sql: Queryable,
  t: Tables,
  action: BulkAction,
  s: BulkSelection,
  limit: number,
): Promise<{ found: number; moved: BulkMoved[] }> {
  const rows = await plannedPerCall(sql<(Partial<BulkMoved> & { found: number })[]>`
    with candidates as (
      select j.id from ${sql(t.jobs)} j
      where ${actionApplies(sql, action)} ${selectionWhere(sql, s)}
      order by j.id
      limit ${literalLimit(sql, limit + 1)}
    ), locked as (
      -- By primary key (= any(array)): joined to the list, Postgres may hash the whole table.
      select j.id, j.status as prior_status from ${sql(t.jobs)} j
      where j.id = any(array(select id from candidates order by id limit ${literalLimit(sql, limit)}))
        and ${actionApplies(sql, action)}
      for update skip locked
    ), moved as (${movedCte(sql, t, action)})${
      action === 'retry' ? sql`, slotted as (${flowSlotsEnsured(sql, t, 'moved')})` : sql``
    }${action === 'delete' ? sql`, freed as (${keysFreed(sql, t, 'moved')})` : sql``}
    select c.found, moved.id, moved.status, moved.prior_status, moved.kind, moved.queue, moved.enqueued_at,
           moved.completed_at, moved.dependents
    from (select count(*)::int as found from candidates) c left join moved on true`)
  const found = rows[0]?.found ?? 0
  const moved = rows.filter((r): r is BulkMoved & { found: number } => r.id != null).map(({ found: _, ...m }) => m)
  return { found, moved }
}

function movedCte(sql: Queryable, t: Tables, action: BulkAction) {
  const answer = sql`j.kind, j.queue, j.enqueued_at, j.completed_at, locked.prior_status`
  if (action === 'delete') {
    return sql`
      delete from ${sql(t.jobs)} j using locked where j.id = locked.id
      returning j.id, 'deleted'::text as status, ${answer}, null::text[] as dependents, j.idempotency_key`
  }
  const set = action === 'cancel' ? cancelSet(sql) : retrySet(sql, t)
  return sql`
    update ${sql(t.jobs)} j set ${set} from locked where j.id = locked.id
    returning j.id, j.status, ${answer}, j.concurrency_key, j.flow_controlled, j.dependents`
}
