/** Reads of runs: one by id, and pages across jobs. */
import type { Sql } from '../../db/client'
import { literalLimit } from '../../db/literal'
import type { Tables } from '../../db/tables'
import type { Run } from '../../jobs/model'

/** One run by id. */
export async function runGet(sql: Sql, t: Tables, id: string): Promise<Run | null> {
  const [row] = await sql<Run[]>`select * from ${sql(t.runs)} where id = ${id}`
  return row ?? null
}

/** Filters for runList. */
export interface RunListParams {
  status?: string
  workerId?: string
  jobId?: string
  kind?: string
  cursor?: string
  limit: number
}

/** A page of runs across all jobs, newest first, keyset-paged by id. */
export async function runList(sql: Sql, t: Tables, q: RunListParams): Promise<Run[]> {
  return sql<Run[]>`
    select r.* from ${sql(t.runs)} r
    ${q.kind !== undefined ? sql`join ${sql(t.jobs)} j on j.id = r.job_id and j.kind = ${q.kind}` : sql``}
    where true
      ${q.status ? sql`and r.status = ${q.status}` : sql``}
      ${q.workerId !== undefined ? sql`and r.worker_id = ${q.workerId}` : sql``}
      ${q.jobId ? sql`and r.job_id = ${q.jobId}` : sql``}
      ${q.cursor ? sql`and r.id < ${q.cursor}` : sql``}
    order by r.id desc
    limit ${literalLimit(sql, q.limit)}`
}
