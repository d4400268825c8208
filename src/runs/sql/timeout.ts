/** The run-timeout sweep's transition: runs older than their job's timeout_seconds fail with "timed out". */
import type { Sql } from '../../db/client'
import { literalLimit } from '../../db/literal'
import { nextStamp } from '../../db/rows'
import type { Tables } from '../../db/tables'
import type { JobChange } from '../../events/hub'
import { defaultBackoff } from './held'
import { type SweptRun, sweptAnswer, sweptRuns } from './reaper'

/**
 * Fails up to `batch` running runs that started more than their job's
 * timeout_seconds ago, heartbeats or not, with error "timed out"; each job moves
 * as runFail moves it on a retryable failure with no backoff given: cancelled if
 * cancel was requested, pending after the default backoff if attempts remain,
 * failed otherwise. One statement.
 *
 * Found from the jobs side (jobs_timeout_idx holds only active jobs with a
 * timeout, so jobs without one cost nothing) and joined to their running run by
 * the one-running index. The runs are locked with SKIP LOCKED (a heartbeat or a
 * completion in flight wins; the next sweep looks again) and re-checked on the
 * locked row, so a run completed a moment earlier is never failed. The run is
 * locked before its job, the order complete and fail take them in.
 * A job that ends here moves its dependents in the same statement (the trigger
 * of migrations/008); the answer carries its `dependents` for the announcements.
 */
export async function runTimeOutMany(
  sql: Sql,
  t: Tables,
  batch: number,
): Promise<{ jobs: JobChange[]; ended: SweptRun[] }> {
  const retries = sql`(not j.cancel_requested and j.attempt_count < j.max_attempts)`
  const rows = await sql<(SweptRun & Partial<JobChange>)[]>`
    with due as (
      select r.id
      from ${sql(t.jobs)} j
      join ${sql(t.runs)} r on r.job_id = j.id and r.lease_expires_at is not null
      where j.timeout_seconds is not null and j.status = 'active'
        and r.started_at < now() - make_interval(secs => j.timeout_seconds)
      limit ${literalLimit(sql, batch)}
      for update of r skip locked
    ), timed_out as (
      update ${sql(t.runs)} r set
        status = 'failed', error = 'timed out', lease_expires_at = null,
        finished_at = now(), updated_at = ${nextStamp(sql, 'r.updated_at')}
      from due
      -- started_at never changes: whether the run is still running is the re-check.
      where r.id = due.id and r.status = 'running'
      returning r.id, r.job_id, r.attempt, r.updated_at, r.started_at, r.finished_at
    ), ended as (
      update ${sql(t.jobs)} j set
        status = case when j.cancel_requested then 'cancelled' when ${retries} then 'pending' else 'failed' end,
        scheduled_at = case when ${retries} then now() + make_interval(secs => ${defaultBackoff(sql, 'f.attempt')})
                       else j.scheduled_at end,
        completed_at = case when ${retries} then null else now() end,
        updated_at = greatest(${nextStamp(sql, 'j.updated_at')}, f.updated_at)
      from timed_out f
      where j.id = f.job_id and j.status = 'active'
      returning j.id, j.kind, j.queue, j.status, j.enqueued_at, j.completed_at, j.dependents
    )
    ${sweptRuns(sql, t, 'timed_out', 'ended')}`
  return sweptAnswer(rows)
}
