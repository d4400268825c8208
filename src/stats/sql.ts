/** The throughput read: what happened per minute and kind in a recent window. */
import { plannedPerCall, type Sql } from '../db/client'
import type { Tables } from '../db/tables'
import { completedNoEarlierThan } from '../history/windows'
import type { Stats } from './model'

/**
 * Enqueued, succeeded, failed and retried per minute and kind since `minutes`
 * before the current minute began, each from an index over its own time column,
 * so the read is bounded by the window's activity, not by history
 * (tests/stats.test.ts explains it over old history):
 * - enqueued: jobs whose enqueued_at is in the window, found among jobs changed in
 *   it (updated_at index; a job's updated_at is never before its enqueued_at);
 * - succeeded, failed: jobs that ended so in the window (completed_at index);
 * - retried: runs that failed or were abandoned in the window (finished_at index,
 *   migrations/006) and did not end their job: the job went back to pending. A run
 *   that ended its job set completed_at in the same statement as its finished_at,
 *   and a later attempt moved attempt_count past it.
 * Counts come from the rows as they stand: a job deleted since is not counted.
 * Each count reads the hot tables and history alike (a job, with its runs, is
 * in exactly one); on history the window also bounds the partition key, so only
 * its days are read (history/windows.ts).
 * Planned for its values on each call, so the planner sees the window's bounds.
 */
export async function statsRead(sql: Sql, t: Tables, minutes: number): Promise<Stats> {
  // Written out in each condition, not taken from a CTE: the planner estimates a
  // range only against a value it can compute, and a CTE column read as an
  // unknown made it expect a third of the table and hash-join a scan of all jobs.
  const since = sql`(date_trunc('minute', now()) - make_interval(mins => ${minutes}))`
  const [row] = await plannedPerCall(sql<Stats[]>`
    with enqueued as (
      select date_trunc('minute', j.enqueued_at) as minute, j.kind, count(*) as n
      from (
        select j.enqueued_at, j.kind from ${sql(t.jobs)} j
        where j.updated_at >= ${since} and j.enqueued_at >= ${since}
        union all
        select j.enqueued_at, j.kind from ${sql(t.jobsHistory)} j
        where j.updated_at >= ${since} and j.enqueued_at >= ${since}
          and j.completed_at >= ${completedNoEarlierThan(sql, since)}
      ) j
      group by 1, 2
    ), ended as (
      select date_trunc('minute', j.completed_at) as minute, j.kind,
             count(*) filter (where j.status = 'succeeded') as succeeded,
             count(*) filter (where j.status = 'failed') as failed
      from (
        select j.completed_at, j.kind, j.status from ${sql(t.jobs)} j
        where j.completed_at >= ${since} and j.status in ('succeeded', 'failed')
        union all
        select j.completed_at, j.kind, j.status from ${sql(t.jobsHistory)} j
        where j.completed_at >= ${since} and j.status in ('succeeded', 'failed')
      ) j
      group by 1, 2
    ), retried as (
      select date_trunc('minute', r.finished_at) as minute, r.kind, count(*) as n
      from (
        select r.finished_at, j.kind from ${sql(t.runs)} r join ${sql(t.jobs)} j on j.id = r.job_id
        where r.finished_at >= ${since} and r.status in ('failed', 'abandoned')
          and (j.attempt_count > r.attempt or j.completed_at is distinct from r.finished_at)
        union all
        -- A historic run's job is in history, in the run's day: one primary-key
        -- probe per run, in that day's partition alone. (The limit keeps it a probe:
        -- as a join, the planner hashed every job of the window's days.)
        select r.finished_at, j.kind from ${sql(t.runsHistory)} r
        cross join lateral (
          select j.kind, j.attempt_count, j.completed_at from ${sql(t.jobsHistory)} j
          where j.id = r.job_id and j.completed_at = r.job_completed_at
          limit 1
        ) j
        where r.finished_at >= ${since} and r.status in ('failed', 'abandoned')
          and r.job_completed_at >= ${completedNoEarlierThan(sql, since)}
          and (j.attempt_count > r.attempt or j.completed_at is distinct from r.finished_at)
      ) r
      group by 1, 2
    ), rows as (
      select minute, kind, coalesce(e.n, 0) as enqueued, coalesce(d.succeeded, 0) as succeeded,
             coalesce(d.failed, 0) as failed, coalesce(r.n, 0) as retried
      from enqueued e full join ended d using (minute, kind) full join retried r using (minute, kind)
    )
    select ${since} as from, now() as to, 60 as bucket_seconds,
           coalesce((select json_agg(json_build_object(
             'minute', to_char(minute at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.000"Z"'),
             'kind', kind, 'enqueued', enqueued, 'succeeded', succeeded, 'failed', failed, 'retried', retried
           ) order by minute, kind) from rows), '[]') as rows`)
  if (!row) throw new Error('stats read answered no row')
  return row
}
