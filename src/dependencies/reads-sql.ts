/** Reads of a job's dependencies and dependents. */
import type { Queryable, Sql } from '../db/client'
import type { Tables } from '../db/tables'
import { jobColumns } from '../jobs/columns'
import type { Dependency, Job } from '../jobs/model'

/** A job row as a statement that may answer a job with dependencies reads it. */
export type WithDependsOn<T> = T & { depends_on?: string[] | null }

/**
 * The jobs as answered, each with `dependencies: [{id, kind, status, result}]`
 * (in `depends_on` order) when it has any, and without `depends_on`. One read for
 * all of them, by primary key, and none when no job has dependencies: the claim
 * answers `depends_on` instead of joining the dependencies in, since a subquery in
 * the claim's statement cost every claim its set-up, used or not (the hand-off
 * ~10% more Postgres CPU).
 */
export async function withDependencies<T extends object>(
  sql: Queryable,
  t: Tables,
  rows: WithDependsOn<T>[],
): Promise<(T & { dependencies?: Dependency[] })[]> {
  const ids = [...new Set(rows.flatMap((r) => r.depends_on ?? []))]
  const found =
    ids.length === 0
      ? []
      : await sql<Dependency[]>`
        select id, kind, status, result from ${sql(t.jobs)} where id = any(${ids}::text[])`
  const byId = new Map(found.map((d) => [d.id, d]))
  return rows.map(({ depends_on, ...job }) => {
    if (!depends_on) return job as T
    // A dependency deleted since (an ended job, by retention or DELETE) drops out.
    const dependencies = depends_on.flatMap((id) => byId.get(id) ?? [])
    return { ...(job as T), dependencies }
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
