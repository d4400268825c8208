/**
 * Reads of a job's dependencies and dependents, live or historic: a dependency
 * has usually finished, so it is often in history (migrations/009) by the time
 * its dependent is claimed or read.
 */
import type { Queryable, Sql } from '../db/client'
import type { Tables } from '../db/tables'
import { jobColumns } from '../jobs/columns'
import type { Dependency, Job } from '../jobs/model'

/** A job row as a statement that may answer a job with dependencies reads it. */
export type WithDependsOn<T> = T & { depends_on?: string[] | null }

/**
 * Gives each job that has dependencies (`dependsOn[i]`, the `depends_on` its row
 * carried) `dependencies: [{id, kind, status, result}]` in that order; jobs
 * without any are left as they are. One read for all of them, by primary key,
 * and none when no job has dependencies: the claim answers `depends_on` rather
 * than joining the dependencies in, since a subquery in the claim's statement
 * cost every claim its set-up, used or not (the hand-off ~10% more Postgres CPU).
 * Callers drop `depends_on` from the rows as they build them (a key the answer
 * schema lacks would be deleted on the way out, which costs more). History is
 * asked only for the ids the hot table lacks (one primary-key probe per day
 * partition each), in the same statement, so a job moving meanwhile is seen once.
 */
export async function attachDependencies(
  sql: Queryable,
  t: Tables,
  jobs: { dependencies?: Dependency[] }[],
  dependsOn: readonly (string[] | null | undefined)[],
): Promise<void> {
  if (!dependsOn.some((d) => d)) return
  const ids = [...new Set(dependsOn.flatMap((d) => d ?? []))]
  const found = await sql<Dependency[]>`
    with hot as (
      select id, kind, status, result from ${sql(t.jobs)} where id = any(${ids}::text[])
    )
    select * from hot
    union all
    select id, kind, status, result from ${sql(t.jobsHistory)}
    where id = any(array(select unnest(${ids}::text[]) except select id from hot))`
  const byId = new Map(found.map((d) => [d.id, d]))
  jobs.forEach((job, i) => {
    const wanted = dependsOn[i]
    // A dependency deleted since (an ended job, by retention or DELETE) drops out.
    if (wanted) job.dependencies = wanted.flatMap((id) => byId.get(id) ?? [])
  })
}

/**
 * The jobs waiting on (or once waiting on) job `id`, in the order they were
 * enqueued; null when no such job. The job and each dependent are looked up hot
 * first, then in history (`limit 1` skips history when the hot table has it).
 */
export async function jobDependents(sql: Sql, t: Tables, id: string): Promise<Job[] | null> {
  const rows = await sql<(Job & { found: boolean })[]>`
    with parent as (
      (select j.dependents from ${sql(t.jobs)} j where j.id = ${id})
      union all
      (select j.dependents from ${sql(t.jobsHistory)} j where j.id = ${id})
      limit 1
    )
    select true as found, d.*
    from parent p
    left join lateral unnest(p.dependents) with ordinality as u(id, n) on true
    left join lateral (
      (select ${jobColumns(sql, 'h')} from ${sql(t.jobs)} h where h.id = u.id)
      union all
      (select ${jobColumns(sql, 'h')} from ${sql(t.jobsHistory)} h where h.id = u.id)
      limit 1
    ) d on true
    order by u.n`
  if (rows.length === 0) return null
  return rows.filter((r) => r.id !== null).map(({ found: _, ...job }) => job)
}
