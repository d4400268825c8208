/** Reads of a job's dependencies and dependents. */
import type { Queryable, Sql } from '../db/client'
import type { Tables } from '../db/tables'
import { jobColumns } from '../jobs/columns'
import type { Dependency, Job } from '../jobs/model'

/**
 * Row `alias`'s dependencies as a jsonb array of `{id, kind, status, result}` in
 * the order they were given, or null for a job without any: the join step of a
 * fan-in reads its inputs with its claim. A job without dependencies does not
 * run the subquery at all.
 */
export function dependenciesOf(sql: Queryable, t: Tables, alias: string) {
  const depends = sql.unsafe(`${alias}.depends_on`)
  return sql`case when ${depends} is null then null else (
      select jsonb_agg(jsonb_build_object('id', p.id, 'kind', p.kind, 'status', p.status, 'result', p.result)
                       order by u.n)
      from unnest(${depends}) with ordinality as u(id, n) join ${sql(t.jobs)} p on p.id = u.id
    ) end`
}

/** A row with a `dependencies` column: without the key when null (the answer schema has no null for it). */
export function withDependencies<T extends { dependencies?: Dependency[] | null }>(
  row: T,
): Omit<T, 'dependencies'> & { dependencies?: Dependency[] } {
  const { dependencies, ...rest } = row
  return dependencies ? { ...rest, dependencies } : rest
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
