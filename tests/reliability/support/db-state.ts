/**
 * The final state of a scenario's tables, read with SQL. Timestamps come back as
 * epoch milliseconds with their microseconds (the API rounds to milliseconds,
 * which is too coarse to order two runs of one job).
 */
import postgres from 'postgres'
import { tablesFor } from '../../../src/db/tables'

/** A job as stored. */
export interface DbJob {
  id: string
  kind: string
  status: string
  key: string | null
  attempt_count: number
  max_attempts: number
  cancel_requested: boolean
  result: unknown
}

/** A run as stored; `*_ms` are epoch milliseconds (fractional). */
export interface DbRun {
  id: string
  job_id: string
  attempt: number
  worker_id: string
  status: string
  started_ms: number
  finished_ms: number | null
  error: string | null
}

/** Every job and run under `prefix`. */
export interface DbState {
  jobs: DbJob[]
  runs: DbRun[]
}

/** Opens a small pool on `url` (closed by the caller with `.end()`). */
export function openSql(url: string) {
  return postgres(url, { max: 2, onnotice: () => {}, types: { bigint: postgres.BigInt } })
}

/** Reads every job and run of `prefix`. */
export async function readState(url: string, prefix: string): Promise<DbState> {
  const sql = openSql(url)
  const t = tablesFor(prefix)
  try {
    // Hot and history together: finished jobs move to history while a scenario runs.
    const jobs = await sql<DbJob[]>`
      select id, kind, status, idempotency_key as key, attempt_count, max_attempts, cancel_requested, result
      from ${sql(t.jobs)}
      union all
      select id, kind, status, idempotency_key as key, attempt_count, max_attempts, cancel_requested, result
      from ${sql(t.jobsHistory)}`
    const runs = await sql<DbRun[]>`
      select id, job_id, attempt, worker_id, status, error,
        extract(epoch from started_at)::float8 * 1000 as started_ms,
        extract(epoch from finished_at)::float8 * 1000 as finished_ms
      from (select id, job_id, attempt, worker_id, status, error, started_at, finished_at from ${sql(t.runs)}
            union all
            select id, job_id, attempt, worker_id, status, error, started_at, finished_at from ${sql(t.runsHistory)}) r
      order by job_id, attempt`
    return { jobs: [...jobs], runs: [...runs] }
  } finally {
    await sql.end({ timeout: 5 })
  }
}

/** Jobs of `prefix` not yet terminal (a scenario drains until this is 0). */
export async function countUnfinished(url: string, prefix: string): Promise<number> {
  const sql = openSql(url)
  try {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from ${sql(tablesFor(prefix).jobs)} where status in ('pending', 'active')`
    return row?.n ?? 0
  } finally {
    await sql.end({ timeout: 5 })
  }
}
