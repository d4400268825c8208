/** The workers read: who holds runs now, and who ended runs in the last hour. */
import { plannedPerCall, type Sql } from '../db/client'
import type { Tables } from '../db/tables'
import { completedNoEarlierThan } from '../history/windows'
import type { WorkerSummary } from './model'

/**
 * Every worker with a running run or a run ended in the last hour, by worker id.
 * Running runs come from the lease index (only running runs have a lease), ended
 * ones from the finished_at index (migrations/006), hot and in history (where
 * the hour also prunes the days, history/windows.ts): bounded by the work in
 * flight and the hour's activity, never by the run history. A heartbeat writes
 * the run's lease, progress and updated_at; a run just claimed has updated_at
 * equal to started_at, so a later updated_at on a running run is its last
 * heartbeat. Planned for its values on each call (`now() - interval` is known
 * to the planner then).
 */
export async function workerList(sql: Sql, t: Tables): Promise<WorkerSummary[]> {
  return plannedPerCall(sql<WorkerSummary[]>`
    with running as (
      select r.worker_id, r.id as run_id, r.job_id, j.kind, j.queue, r.attempt, r.started_at, r.lease_expires_at,
             r.progress_current, r.progress_total, r.progress_message,
             case when r.updated_at > r.started_at then r.updated_at end as heartbeat_at
      from ${sql(t.runs)} r join ${sql(t.jobs)} j on j.id = r.job_id
      where r.lease_expires_at is not null
    ), held as (
      select worker_id, max(heartbeat_at) as last_heartbeat_at,
             json_agg(json_build_object(
               'run_id', run_id, 'job_id', job_id, 'kind', kind, 'queue', queue, 'attempt', attempt,
               'started_at', started_at, 'lease_expires_at', lease_expires_at,
               'progress_current', progress_current, 'progress_total', progress_total,
               'progress_message', progress_message
             ) order by started_at, run_id) as running
      from running group by worker_id
    ), ended as (
      select worker_id, count(*) as finished_last_hour,
             count(*) filter (where status = 'succeeded') as succeeded_last_hour,
             count(*) filter (where status in ('failed', 'abandoned')) as failed_last_hour
      from (
        select worker_id, status from ${sql(t.runs)}
        where finished_at >= now() - interval '1 hour'
        union all
        select worker_id, status from ${sql(t.runsHistory)}
        where finished_at >= now() - interval '1 hour'
          and job_completed_at >= ${completedNoEarlierThan(sql, sql`now() - interval '1 hour'`)}
      ) r
      group by worker_id
    )
    select worker_id, coalesce(h.running, '[]') as running, h.last_heartbeat_at,
           coalesce(e.finished_last_hour, 0) as finished_last_hour,
           coalesce(e.succeeded_last_hour, 0) as succeeded_last_hour,
           coalesce(e.failed_last_hour, 0) as failed_last_hour
    from held h full join ended e using (worker_id)
    order by worker_id`)
}
