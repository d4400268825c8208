/**
 * Reads of runs, live or historic: one by id, and pages across jobs. A run moves
 * to history with its job, in one statement, so each read is one statement over
 * both tables (`union all`) and sees every run once.
 */
import type { Sql } from '../../db/client'
import { literalLimit } from '../../db/literal'
import type { Tables } from '../../db/tables'
import { runColumns } from '../../jobs/columns'
import type { Run } from '../../jobs/model'

/** One run by id: the hot table first (`limit 1` then skips history), else a primary-key probe per day of history. */
export async function runGet(sql: Sql, t: Tables, id: string): Promise<Run | null> {
  const [row] = await sql<Run[]>`
    (select ${runColumns(sql, 'r')} from ${sql(t.runs)} r where r.id = ${id})
    union all
    (select ${runColumns(sql, 'r')} from ${sql(t.runsHistory)} r where r.id = ${id})
    limit 1`
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

/**
 * A page of runs across all jobs, newest first, keyset-paged by id: each table's
 * own first page (in history, up to a page per day partition), merged. Running
 * runs are never in history, so `status=running` reads the hot table alone.
 */
export async function runList(sql: Sql, t: Tables, q: RunListParams): Promise<Run[]> {
  const limit = literalLimit(sql, q.limit)
  const page = (runs: string, jobs: string, historic: boolean) => sql`
    select ${runColumns(sql, 'r')} from ${sql(runs)} r
    ${
      q.kind !== undefined
        ? // A run's job is on the same side; in history, in the same day (its primary key).
          sql`join ${sql(jobs)} j on j.id = r.job_id ${historic ? sql`and j.completed_at = r.job_completed_at` : sql``}
              and j.kind = ${q.kind}`
        : sql``
    }
    where true
      ${q.status ? sql`and r.status = ${q.status}` : sql``}
      ${q.workerId !== undefined ? sql`and r.worker_id = ${q.workerId}` : sql``}
      ${q.jobId ? sql`and r.job_id = ${q.jobId}` : sql``}
      ${q.cursor ? sql`and r.id < ${q.cursor}` : sql``}
    order by r.id desc
    limit ${limit}`
  if (q.status === 'running') return sql<Run[]>`${page(t.runs, t.jobs, false)}`
  return sql<Run[]>`
    select * from ((${page(t.runs, t.jobs, false)}) union all (${page(t.runsHistory, t.jobsHistory, true)})) r
    order by r.id desc
    limit ${limit}`
}
