/** Reads of a job's dependencies and dependents. */
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
 * schema lacks would be deleted on the way out, which costs more).
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
    select id, kind, status, result from ${sql(t.jobs)} where id = any(${ids}::text[])`
  const byId = new Map(found.map((d) => [d.id, d]))
  jobs.forEach((job, i) => {
    const wanted = dependsOn[i]
    // A dependency deleted since (an ended job, by retention or DELETE) drops out.
    if (wanted) job.dependencies = wanted.flatMap((id) => byId.get(id) ?? [])
  })
}

/** The jobs waiting on (or once waiting on) job `id`, in the order they were enqueued; null when no such job. */
export async function jobDependents(sql: Sql, t: Tables, id: string): Promise<Job[] | null> {
  const rows = await sql<(Job & { found: boolean })[]>`
    select true as found, ${jobColumns(sql, 'd')}
    from ${sql(t.jobs)} j
    left join lateral unnest(j.dependents) with ordinality as u(id, n) on true
    left join ${sql(t.jobs)} d on d.id = u.id
    where j.id = ${id}
    order by u.n`
  if (rows.length === 0) return null
  return rows.filter((r) => r.id !== null).map(({ found: _, ...job }) => job)
}
