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
  await dependenciesHeld(sql, t, ids)
  const jobs = sql(t.jobs)
  const wanted = sql`select unnest(c.depends_on) from ${jobs} c where c.id = any(${ids}::text[]) and c.status = 'waiting'`
  return sql<SettledJob[]>`
    with hot_parents as (
      select p.id, p.status from ${jobs} p
      where p.id in (${wanted})
      order by p.id
      for share
    ), parents as (
      -- Ended dependencies may be in history (held by dependenciesHeld: they stay there).
      select id, status from hot_parents
      union all
      select p.id, p.status from ${sql(t.jobsHistory)} p where p.id in (${wanted})
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

/** Rounds of dependenciesHeld before settling with what it holds (a dependency deleted meanwhile is never found). */
const HOLD_ROUNDS = 3

/**
 * Holds the dependencies of the waiting jobs `ids` for the transaction, where
 * each one is: a share lock on its row in the hot table or in history. Held, a
 * row stays put (the history sweep skips locked rows, a restore waits for the
 * lock), so settleWaiting's next statement reads every dependency, once. A
 * round can miss one the sweep moved after its snapshot (the lock finds the hot
 * row gone); the next round sees it in history. One that is gone for good (a
 * deleted job) counts as not there, as it did before history.
 */
async function dependenciesHeld(sql: Queryable, t: Tables, ids: string[]): Promise<void> {
  for (let round = 0; round < HOLD_ROUNDS; round++) {
    const [row] = await sql<{ wanted: number; held: number }[]>`
      with wanted as (
        select distinct x.id from ${sql(t.jobs)} c cross join unnest(c.depends_on) as x(id)
        where c.id = any(${ids}::text[]) and c.status = 'waiting'
      ), hot as (
        select p.id from ${sql(t.jobs)} p where p.id in (select id from wanted) order by p.id for share
      ), history as (
        select p.id from ${sql(t.jobsHistory)} p where p.id in (select id from wanted) order by p.id for share
      )
      select (select count(*) from wanted)::int as wanted,
             ((select count(*) from hot) + (select count(*) from history))::int as held`
    if (!row || row.held >= row.wanted) return
  }
}
