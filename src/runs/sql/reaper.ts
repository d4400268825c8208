/** The reaper's transition: runs whose lease expired are abandoned and their jobs move on. */
import type { Sql } from '../../db/client'
import { literalLimit } from '../../db/literal'
import { nextStamp } from '../../db/rows'
import type { Tables } from '../../db/tables'
import { changeOf, type JobChange } from '../../events/hub'

/** One run a sweep ended (the reaper, the run timeout), with its job's kind and (when the job moved on) where it went. */
export interface SweptRun {
  run_id: string
  run_kind: string
  run_started_at: string
  run_finished_at: string
  /** Null when the job was not active (nothing moved). */
  status?: string | null
  job_enqueued_at: string | null
  job_completed_at: string | null
  /** The job's, when it moved (what its end moved: see dependencies/effects.ts). */
  dependents?: string[] | null
  completed_at?: string | null
}

/**
 * The answer of a sweep that ended runs (CTE `runs`: id, job_id, started_at,
 * finished_at) and moved their jobs (CTE `jobs`): one SweptRun per run.
 */
export function sweptRuns(sql: Sql, t: Tables, runs: string, jobs: string) {
  return sql`
    select r.id as run_id, r.started_at as run_started_at, r.finished_at as run_finished_at, k.kind as run_kind,
           m.enqueued_at as job_enqueued_at, m.completed_at as job_completed_at,
           m.id, m.status, m.kind, m.queue, m.dependents, m.completed_at
    from ${sql(runs)} r
    join ${sql(t.jobs)} k on k.id = r.job_id
    left join ${sql(jobs)} m on m.id = r.job_id`
}

/** Answers a sweep's rows: the runs it ended, and its moved jobs as change hints. */
export function sweptAnswer(rows: (SweptRun & Partial<JobChange>)[]): { jobs: JobChange[]; ended: SweptRun[] } {
  return { jobs: rows.filter((r): r is typeof r & JobChange => r.id != null).map(changeOf), ended: rows }
}

/**
 * The reaper's transition: up to `batch` running runs whose lease has expired
 * become abandoned and their jobs move on (cancelled if cancel was requested,
 * pending if attempts remain, failed otherwise). The update re-checks status and
 * lease on the locked row, so a run completed a moment earlier is never reopened.
 */
export async function runAbandonExpired(
  sql: Sql,
  t: Tables,
  batch: number,
): Promise<{ runs: number; jobs: JobChange[]; ended: SweptRun[] }> {
  const rows = await sql<(SweptRun & Partial<JobChange>)[]>`
    with expired as (
      select id from ${sql(t.runs)}
      where status = 'running' and lease_expires_at < now()
      order by lease_expires_at
      limit ${literalLimit(sql, batch)}
      for update skip locked
    ), abandoned as (
      update ${sql(t.runs)} r set
        status = 'abandoned', error = 'lease expired', lease_expires_at = null,
        finished_at = now(), updated_at = ${nextStamp(sql, 'r.updated_at')}
      from expired
      where r.id = expired.id and r.status = 'running' and r.lease_expires_at < now()
      returning r.id, r.job_id, r.updated_at, r.started_at, r.finished_at
    ), moved as (
      update ${sql(t.jobs)} j set
        status = case
          when j.cancel_requested then 'cancelled'
          when j.attempt_count < j.max_attempts then 'pending'
          else 'failed'
        end,
        completed_at = case
          when not j.cancel_requested and j.attempt_count < j.max_attempts then null
          else now()
        end,
        updated_at = greatest(${nextStamp(sql, 'j.updated_at')}, a.updated_at)
      from abandoned a
      where j.id = a.job_id and j.status = 'active'
      returning j.id, j.status, j.kind, j.queue, j.enqueued_at, j.completed_at, j.dependents
    )
    ${sweptRuns(sql, t, 'abandoned', 'moved')}`
  return { runs: rows.length, ...sweptAnswer(rows) }
}
