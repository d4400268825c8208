/**
 * What the end of a job does to the jobs waiting on it, as CTEs that the
 * statement ending the job appends to itself, so the dependents move in the same
 * statement (docs/design/orchestration.md):
 * - a dependency that succeeded decrements each waiting dependent's `waiting_on`
 *   on its locked row, and the statement that takes it to 0 makes it `pending`;
 * - one that failed or was cancelled cancels its waiting dependents, and theirs,
 *   with `error: "dependency <id> <status>"`, except those with
 *   `on_dependency_failure = 'run'`, for which it counts as done.
 *
 * The host names a CTE of the jobs it ended, returning `id`, `status` and
 * `dependents` as the update wrote them: the list read under the row lock, so a
 * dependent enqueued a moment before (whose enqueue appended to it) is on it. A
 * dependent committed after the host's snapshot is on the list yet invisible to
 * the host's update; the host answers such ids as `dependents_missed` and the
 * service settles them with settleWaiting once the host has committed.
 *
 * A job without dependents (`dependents` null) gives these CTEs no rows: a plain
 * completion reads nothing more.
 */
import type { Fragment, Queryable } from '../db/client'
import { nextStamp } from '../db/rows'
import type { Tables } from '../db/tables'
import { flowSlotsEnsured } from '../limits/enqueue-sql'

/** One job a host statement moved on behalf of a dependency (released, cancelled, or counted down). */
export interface DependentChange {
  id: string
  kind: string
  queue: string
  status: string
  enqueued_at: string
  completed_at: string | null
  /** Of a kind with limits: a released one needs its key's slot row (see slotsEnsured). */
  flow_controlled: boolean
  concurrency_key: string | null
}

/** The columns dependentsAnswer adds to a host's rows. */
export interface DependentsAnswer {
  /** Dependents the statement moved (null when none). */
  dependents_changed?: DependentChange[] | null
  /** Dependents the statement could not see (committed after its snapshot); settle them (null when none). */
  dependents_missed?: string[] | null
}

const changedColumns =
  'd.id, d.kind, d.queue, d.status, d.enqueued_at, d.completed_at, d.flow_controlled, d.concurrency_key'

/**
 * For hosts whose ended jobs all succeeded (complete, batch complete, hand-off):
 * CTEs `dep_edges` and `dep_changed`. Cheaper than dependentsSettled: no recursion.
 */
export function dependentsReleased(sql: Queryable, t: Tables, ended: string) {
  return sql`
    dep_edges as (
      select x.id from ${sql(ended)} e cross join unnest(e.dependents) as x(id)
      where e.dependents is not null and e.status = 'succeeded'
    ), dep_changed as (
      ${countDown(sql, t, sql`select id from dep_edges`, sql``)}
    )`
}

/**
 * For hosts whose ended jobs may have failed or been cancelled (fail, cancel,
 * reaper, expiry, timeout, settle): CTEs `dep_edges`, `dep_doomed`,
 * `dep_cancelled`, `dep_counted`, `dep_changed`. The host's WITH must be
 * `with recursive`. The cascade below the first level follows the dependents
 * lists of this statement's snapshot.
 */
export function dependentsSettled(sql: Queryable, t: Tables, ended: string) {
  const jobs = sql(t.jobs)
  return sql`
    dep_edges as (
      select x.id, e.id as parent_id, e.status as parent_status
      from ${sql(ended)} e cross join unnest(e.dependents) as x(id)
      where e.dependents is not null and e.status in ('succeeded', 'failed', 'cancelled')
    ), dep_doomed(id, cause) as (
      select d.id, 'dependency ' || e.parent_id || ' ' || e.parent_status
      from dep_edges e join ${jobs} d on d.id = e.id
      where e.parent_status <> 'succeeded' and d.status = 'waiting' and d.on_dependency_failure is null
      union
      select d.id, 'dependency ' || p.id || ' cancelled'
      from dep_doomed p
      join ${jobs} pj on pj.id = p.id
      cross join unnest(pj.dependents) as x(id)
      join ${jobs} d on d.id = x.id
      where pj.dependents is not null and d.status = 'waiting' and d.on_dependency_failure is null
    ), dep_cancelled as (
      update ${jobs} d set
        status = 'cancelled', error = dd.cause, completed_at = now(), updated_at = ${nextStamp(sql, 'd.updated_at')}
      from (select distinct on (id) id, cause from dep_doomed order by id, cause) dd
      where d.id = dd.id and d.status = 'waiting'
      returning ${sql.unsafe(changedColumns)}, d.dependents
    ), dep_counted as (
      -- Every edge from an ended or doomed job into a dependent that is not doomed
      -- itself: one that succeeded counts for all, one that failed only for 'run'.
      select id from dep_edges
      union all
      select x.id from (select distinct id from dep_doomed) p
      join ${jobs} pj on pj.id = p.id
      cross join unnest(pj.dependents) as x(id)
      where pj.dependents is not null
    ), dep_released as (
      ${countDown(sql, t, sql`select id from dep_counted`, sql`and d.id not in (select id from dep_doomed)`)}
    ), dep_changed as (
      select id, kind, queue, status, enqueued_at, completed_at, flow_controlled, concurrency_key from dep_cancelled
      union all
      select * from dep_released
    )`
}

/**
 * The dependents in `edges` (one row per edge, so a job two ended dependencies
 * release counts twice) counted down on their locked rows; a count that reaches
 * 0 makes the job pending.
 */
function countDown(sql: Queryable, t: Tables, edges: Fragment, also: Fragment) {
  return sql`
    update ${sql(t.jobs)} d set
      waiting_on = d.waiting_on - c.n,
      status = case when d.waiting_on <= c.n then 'pending' else d.status end,
      updated_at = ${nextStamp(sql, 'd.updated_at')}
    from (select id, count(*)::int as n from (${edges}) e group by id) c
    where d.id = c.id and d.status = 'waiting' ${also}
    returning ${sql.unsafe(changedColumns)}`
}

/**
 * The host's answer columns (DependentsAnswer), read once per statement (InitPlans).
 * `settled`: the host used dependentsSettled (its cancelled dependents' own lists count too).
 */
export function dependentsAnswer(sql: Queryable, t: Tables, settled: boolean) {
  const listed = settled
    ? sql`select id from dep_edges union all select unnest(dependents) from dep_cancelled where dependents is not null`
    : sql`select id from dep_edges`
  return sql`
    (select jsonb_agg(to_jsonb(c)) from dep_changed c) as dependents_changed,
    (select array_agg(distinct m.id) from (${listed}) m
     where not exists (select 1 from ${sql(t.jobs)} j where j.id = m.id)) as dependents_missed`
}

/**
 * Settles waiting jobs from scratch: each one's dependencies are read under a
 * share lock (so a completion in flight finishes first and its outcome is read),
 * and its `waiting_on` is recounted, its status decided again (cancelled, pending
 * or still waiting) and the cascade run for those it cancels. For dependents a
 * host statement could not see (DependentsAnswer.dependents_missed); an absolute
 * recount, so settling a job twice, or one a count-down also reached, is harmless.
 */
export async function settleWaiting(
  sql: Queryable,
  t: Tables,
  ids: string[],
): Promise<DependentsAnswer & { settled: DependentChange[] | null }> {
  const jobs = sql(t.jobs)
  const [row] = await sql<(DependentsAnswer & { settled: DependentChange[] | null })[]>`
    with recursive parents as (
      select p.id, p.status from ${jobs} p
      where p.id in (select unnest(c.depends_on) from ${jobs} c where c.id = any(${ids}::text[]) and c.status = 'waiting')
      order by p.id
      for share
    ), verdict as (
      select c.id,
        count(*) filter (where p.status <> 'succeeded'
          and not (c.on_dependency_failure = 'run' and p.status in ('failed', 'cancelled')))::int as open,
        min(p.id || ' ' || p.status) filter (where p.status in ('failed', 'cancelled')
          and c.on_dependency_failure is null) as cause
      from ${jobs} c cross join unnest(c.depends_on) as x(id) join parents p on p.id = x.id
      where c.id = any(${ids}::text[]) and c.status = 'waiting'
      group by c.id
    ), settled as (
      update ${jobs} d set
        status = case when v.cause is not null then 'cancelled' when v.open = 0 then 'pending' else 'waiting' end,
        waiting_on = v.open,
        error = case when v.cause is not null then 'dependency ' || v.cause end,
        completed_at = case when v.cause is not null then now() end,
        updated_at = ${nextStamp(sql, 'd.updated_at')}
      from verdict v
      where d.id = v.id and d.status = 'waiting'
      returning ${sql.unsafe(changedColumns)}, d.dependents
    ), ${dependentsSettled(sql, t, 'settled')}
    select (select jsonb_agg(to_jsonb(s) - 'dependents') from settled s where s.status <> 'waiting') as settled,
           ${dependentsAnswer(sql, t, true)}`
  return row ?? { settled: null }
}

/**
 * The slot rows of released jobs of kinds with limits: a key whose only jobs were
 * waiting had its row deleted by the limited claim as empty, and without it the
 * claim cannot find the job (docs/design/flow-control.md).
 */
export async function slotsEnsured(sql: Queryable, t: Tables, jobs: DependentChange[]): Promise<void> {
  const rows = jobs.map((j) => ({ kind: j.kind, concurrency_key: j.concurrency_key }))
  await sql`
    with released as (
      select * from jsonb_to_recordset(${sql.json(rows as never)}::jsonb) as x(kind text, concurrency_key text)
    ) ${flowSlotsEnsured(sql, t, 'released', true)}`
}
