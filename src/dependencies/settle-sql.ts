/**
 * The statements around what the end of a job does to the jobs waiting on it.
 * The moving itself is the trigger `jobs_dependents_settle` (migrations/008), in
 * the statement that ends the job, whichever statement that is; here are what the
 * services read afterwards (to announce and count the jobs it moved) and the
 * recount that retry needs.
 */
import type { Queryable } from '../db/client'
import { nextStamp } from '../db/rows'
import type { Tables } from '../db/tables'

/** A job that a transition moved because a job it depends on ended. */
export interface DependentChange {
  id: string
  kind: string
  queue: string
  status: string
  enqueued_at: string
  completed_at: string | null
  /** True when this transition ended it (cancelled it), so it is counted as terminal once. */
  ended_here: boolean
}

/** A job a statement ended, as far as its dependents go: when, and its `dependents` as the statement left them. */
export interface EndedWithDependents {
  id: string
  status: string
  completed_at: string | null
  dependents?: string[] | null
}

/**
 * The dependents (and, through cancelled ones, theirs) that the ends of `ended`
 * moved: every one the trigger wrote, told apart from older changes by its
 * updated_at (the trigger stamps now(), the ending transaction's time, which is
 * also the ended job's completed_at). A read after the commit, for announcements:
 * a hint for a job that moved again since is harmless.
 */
export async function dependentsMovedBy(
  sql: Queryable,
  t: Tables,
  ended: EndedWithDependents[],
): Promise<DependentChange[]> {
  const parents = ended.filter((e) => e.dependents && e.dependents.length > 0 && e.completed_at !== null)
  if (parents.length === 0) return []
  const input = parents.map((e) => ({ at: e.completed_at, dependents: e.dependents }))
  const jobs = sql(t.jobs)
  return sql<DependentChange[]>`
    with recursive moved as (
      select d.id, d.kind, d.queue, d.status, d.enqueued_at, d.completed_at, d.dependents, e.at
      from jsonb_to_recordset(${sql.json(input as never)}::jsonb) as e(at timestamptz, dependents text[])
      join ${jobs} d on d.id = any(e.dependents)
      where d.updated_at >= e.at
      union
      select d.id, d.kind, d.queue, d.status, d.enqueued_at, d.completed_at, d.dependents, m.at
      from moved m join ${jobs} d on d.id = any(m.dependents)
      where m.status = 'cancelled' and m.completed_at = m.at and d.updated_at >= m.at
    )
    select distinct on (id) id, kind, queue, status, enqueued_at, completed_at,
           status = 'cancelled' and completed_at = at as ended_here
    from moved
    where status <> 'waiting'
    order by id`
}

/** A job settleWaiting moved: as announced, with its dependents (its cancel moved them too). */
export type SettledJob = DependentChange & { dependents: string[] | null }

/**
 * Settles waiting jobs from scratch: each one's dependencies are read under a
 * share lock (so a completion in flight finishes first and its outcome is read),
 * its `waiting_on` is recounted, and its status decided again: cancelled (a
 * dependency failed or was cancelled; the trigger then cascades), pending, or
 * still waiting. For jobs a retry sent back to waiting; an absolute recount, so
 * settling a job twice is harmless. Answers the jobs whose status it changed.
 */
export async function settleWaiting(
  sql: Queryable,
  t: Tables,
  ids: string[],
): Promise<EndedWithDependents[] & DependentChange[]> {
  const jobs = sql(t.jobs)
  return sql<SettledJob[]>`
    with parents as (
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
    )
    update ${jobs} d set
      status = case when v.cause is not null then 'cancelled' when v.open = 0 then 'pending' else 'waiting' end,
      waiting_on = v.open,
      error = case when v.cause is not null then 'dependency ' || v.cause end,
      completed_at = case when v.cause is not null then now() end,
      updated_at = ${nextStamp(sql, 'd.updated_at')}
    from verdict v
    where d.id = v.id and d.status = 'waiting' and (v.cause is not null or v.open = 0)
    returning d.id, d.kind, d.queue, d.status, d.enqueued_at, d.completed_at, d.dependents,
              d.status = 'cancelled' as ended_here`
}
