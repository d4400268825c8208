/** What a backlog run does to its tables beside loading them: VACUUM ANALYZE, and counts by status. */
import type { Sql } from '../../src/db/client'
import type { Tables } from '../../src/db/tables'

/**
 * VACUUM ANALYZE both tables, as autovacuum would have by the time a backlog this
 * old exists: statistics for the planner, and a visibility map for index-only scans.
 */
export async function vacuumAnalyze(sql: Sql, t: Tables): Promise<void> {
  await sql.unsafe(`vacuum analyze "${t.jobs}"`)
  await sql.unsafe(`vacuum analyze "${t.runs}"`)
}

/** Row counts by status, for reports. */
export async function countByStatus(sql: Sql, t: Tables): Promise<Record<string, number>> {
  const rows = await sql<{ status: string; n: number }[]>`
    select status || case when status = 'pending' and scheduled_at > now() then ' (not due)' else '' end as status,
           count(*)::int as n
    from ${sql(t.jobs)} group by 1 order by 1`
  return Object.fromEntries(rows.map((r) => [r.status, r.n]))
}
