/**
 * Bringing finished jobs back from history to the hot tables, for the actions
 * that make a finished job live again (retry, one or in bulk). Each restore is
 * one statement: the job rows leave jobs_history and enter jobs, their runs
 * leave job_runs_history and enter job_runs, together, so a crash leaves a job
 * in exactly one place. It runs inside the action's transaction, before the
 * action's own statement, which then runs unchanged on the hot table: the
 * restored rows are this transaction's, and nobody else sees them until it
 * commits with the action applied.
 */
import type { Fragment, Queryable } from '../db/client'
import { literalLimit } from '../db/literal'
import type { Tables } from '../db/tables'
import { type BulkSelection, selectionWhere } from '../jobs/actions-sql'

/**
 * The CTEs after a CTE `gone` of job rows deleted from history (returning h.*):
 * their runs deleted from history and both inserted into the hot tables. Jobs go
 * back with `select *` (the two tables have the same columns in the same order);
 * a run's history row has one more column, job_completed_at, so runs go back
 * through jsonb_populate_record, which fills the hot table's columns by name
 * and drops that one: a column a later migration adds to both comes back too.
 * The runs' foreign key is checked at the end of the statement, after both inserts.
 */
function restoredCtes(sql: Queryable, t: Tables): Fragment {
  return sql`
    gone_runs as (
      delete from ${sql(t.runsHistory)} r using gone g
      where r.job_id = g.id and r.job_completed_at = g.completed_at
      returning r.*
    ), back as (
      insert into ${sql(t.jobs)} select * from gone
      returning id
    ), runs_back as (
      insert into ${sql(t.runs)}
      select p.* from gone_runs r
      cross join lateral jsonb_populate_record(null::${sql(t.runs)}, to_jsonb(r)) p
    )`
}

/** What one restore round found and secured. */
interface RestoreRound {
  /** Jobs of the set, hot or in history, as the statement's snapshot saw them. */
  members: number
  /** Of those, the ones now held by this transaction: locked in the hot table, or restored into it. */
  secured: number
}

/** Rounds before giving up on a set the history sweep keeps moving under us (each needs a move mid-round). */
const MAX_ROUNDS = 4

/**
 * Makes the job `id` hot and holds it for the transaction: locked if it is hot,
 * restored from history if it is there. With `cascade`, also every job its end
 * cancelled (error `dependency …`, transitively through dependents, as retry's
 * rearm follows them), wherever each one is. Answers nothing: the caller's next
 * statement finds them all in the hot table (or the job does not exist).
 *
 * One statement per round. A round can miss a job the history sweep moved after
 * the round's snapshot (its lock finds the hot row gone); the next round's
 * snapshot sees it in history. Once held, a job stays put: the sweep skips
 * locked rows. Rounds end when every job of the set is held.
 */
export async function jobsRestoredForRetry(sql: Queryable, t: Tables, id: string, cascade: boolean): Promise<void> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const { members, secured } = await restoreRound(sql, t, id, cascade)
    if (secured >= members) return
  }
  throw new Error(`job ${id}: the history sweep kept moving it (or its dependents) during a retry`)
}

async function restoreRound(sql: Queryable, t: Tables, id: string, cascade: boolean): Promise<RestoreRound> {
  const everywhere = sql`(
    select id, status, error, dependents, false as in_history from ${sql(t.jobs)}
    union all
    select id, status, error, dependents, true from ${sql(t.jobsHistory)}
  )`
  // The set: the job, and (cascade) the jobs its end cancelled, as rearmedCtes in jobs/actions-sql.ts.
  const inSet = sql`(d.id = ${id} or (d.status = 'cancelled' and d.error like 'dependency %'))`
  const [row] = await sql<RestoreRound[]>`
    with recursive tree(id) as (
      select ${id}::text
      ${
        cascade
          ? sql`union
      select x.id from tree a
      join ${everywhere} d on d.id = a.id
      cross join unnest(d.dependents) as x(id)
      where d.dependents is not null and ${inSet}`
          : sql``
      }
    ), members as (
      select d.id, d.in_history from tree join ${everywhere} d on d.id = tree.id
      where ${inSet}
    ), held as (
      -- The lock re-reads the latest row: one the sweep moved meanwhile is not held.
      select j.id from ${sql(t.jobs)} j
      where j.id in (select id from members where not in_history)
      order by j.id
      for update of j
    ), gone as (
      delete from ${sql(t.jobsHistory)} h
      where h.id in (select id from members where in_history)
      returning h.*
    ), ${restoredCtes(sql, t)}
    select (select count(*) from members)::int as members,
           ((select count(*) from held) + (select count(*) from back))::int as secured`
  return row ?? { members: 0, secured: 0 }
}

/**
 * The ids a bulk `action` (retry or delete) would take first, hot and history
 * merged: the oldest `limit` matching ids of either table, and how many match
 * in all, counting up to limit + 1. As jobBulkApply, oldest id first.
 */
export function bulkCandidates(sql: Queryable, t: Tables, applies: Fragment, s: BulkSelection, limit: number) {
  const cap = literalLimit(sql, limit + 1)
  return sql`
    candidates as (
      select id, in_history from (
        (select j.id, false as in_history from ${sql(t.jobs)} j
         where ${applies} ${selectionWhere(sql, s)} order by j.id limit ${cap})
        union all
        (select j.id, true from ${sql(t.jobsHistory)} j
         where ${applies} ${selectionWhere(sql, s)} order by j.id limit ${cap})
      ) c
      order by id
      limit ${cap}
    ), picked as (
      select id, in_history from candidates order by id limit ${literalLimit(sql, limit)}
    )`
}

/** What a bulk restore did: matching jobs found (hot and history, up to limit + 1), and how many it restored. */
export interface BulkRestored {
  found: number
  /** Picked jobs that were in history, restored or not (a locked one is left for the next call). */
  fromHistory: number
  restored: number
}

/**
 * Restores, for a bulk retry, the jobs in history among the first `limit`
 * matching ones (hot and history merged, oldest id first), so that jobBulkApply,
 * run next in the same transaction with the same limit, finds exactly those in
 * the hot table. Rows another statement holds are skipped, never waited for
 * (see jobBulkApply): the caller reports `more`, and the next call takes them.
 */
export async function jobsRestoredForBulk(
  sql: Queryable,
  t: Tables,
  applies: Fragment,
  s: BulkSelection,
  limit: number,
): Promise<BulkRestored> {
  const [row] = await sql<BulkRestored[]>`
    with ${bulkCandidates(sql, t, applies, s, limit)}, locked as (
      select j.id from ${sql(t.jobsHistory)} j
      where j.id = any(array(select id from picked where in_history))
      for update skip locked
    ), gone as (
      delete from ${sql(t.jobsHistory)} h using locked where h.id = locked.id
      returning h.*
    ), ${restoredCtes(sql, t)}
    select (select count(*) from candidates)::int as found,
           (select count(*) from picked where in_history)::int as "fromHistory",
           (select count(*) from back)::int as restored`
  return row ?? { found: 0, fromHistory: 0, restored: 0 }
}
