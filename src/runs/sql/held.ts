/**
 * Statements on a held run: heartbeat, complete and fail. Each re-checks on the
 * locked row that the run is still running and held by the caller, and moves the
 * run and its job together in one statement.
 */
import type { Queryable, Sql } from '../../db/client'
import { nextStamp } from '../../db/rows'
import type { Tables } from '../../db/tables'
import { jobColumns } from '../../jobs/columns'
import type { Job } from '../../jobs/model'
import type { HeartbeatResult, RunTarget } from '../model'

/**
 * What the statement saw of the addressed run before acting, so a refused call can
 * say why (unknown id → 404; not running or someone else's → 409).
 */
export interface TargetSeen {
  target_run_id: string | null
  target_status: string | null
  target_worker_id: string | null
}

/** The addressed run as it stands, under its `target_*` names. */
function targetCte(sql: Sql, t: Tables, target: RunTarget) {
  return 'runId' in target
    ? sql`
        select r.id as target_run_id, r.status as target_status, r.worker_id as target_worker_id
        from ${sql(t.runs)} r where r.id = ${target.runId}`
    : sql`
        select r.id as target_run_id, r.status as target_status, r.worker_id as target_worker_id
        from ${sql(t.jobs)} j
        left join ${sql(t.runs)} r on r.job_id = j.id and r.lease_expires_at is not null
        where j.id = ${target.jobId}`
}

/** The running run addressed, if `workerId` holds it (re-checked on the locked row). */
function heldRun(sql: Sql, workerId: string) {
  return sql`r.id = (select target_run_id from target) and r.status = 'running' and r.worker_id = ${workerId}`
}

/** The ended job's `dependents` (what its end moved: see dependencies/effects.ts); not part of the answer. */
export interface WithDependents {
  dependents?: string[] | null
}

/** When the run a complete or fail just ended started and finished (for its duration). */
export interface RunEnded {
  run_started_at?: string | null
  run_finished_at?: string | null
}

/** The kind and queue of a heartbeat's job, for its change hint. */
export interface JobOfRun {
  job_kind?: string
  job_queue?: string
}

/** What heartbeat stores. */
export interface HeartbeatParams {
  workerId: string
  leaseSec: number
  progressCurrent?: number
  progressTotal?: number
  progressMessage?: string
}

/**
 * Extends the lease and stores progress; answers the run plus the job's
 * cancel_requested, read in the same statement so a committed cancel is seen.
 * No row: the target does not exist. A row with a null id: refused (see TargetSeen).
 */
export async function runHeartbeat(
  sql: Sql,
  t: Tables,
  target: RunTarget,
  p: HeartbeatParams,
): Promise<(TargetSeen & Partial<HeartbeatResult> & JobOfRun) | null> {
  const [row] = await sql<(TargetSeen & Partial<HeartbeatResult> & JobOfRun)[]>`
    with target as (${targetCte(sql, t, target)}),
    beat as (
      update ${sql(t.runs)} r set
        lease_expires_at = now() + make_interval(secs => ${p.leaseSec}),
        progress_current = coalesce(${p.progressCurrent ?? null}::bigint, r.progress_current),
        progress_total = coalesce(${p.progressTotal ?? null}::bigint, r.progress_total),
        progress_message = coalesce(${p.progressMessage ?? null}::text, r.progress_message),
        updated_at = ${nextStamp(sql, 'r.updated_at')}
      where ${heldRun(sql, p.workerId)}
      returning r.*
    )
    select target.*, beat.*, j.cancel_requested, j.kind as job_kind, j.queue as job_queue
    from target
    left join beat on true
    left join ${sql(t.jobs)} j on j.id = beat.job_id`
  return row ?? null
}

/**
 * Marks the held run succeeded and its job succeeded with the run's result.
 * Same answer convention as runHeartbeat.
 */
export async function runComplete(
  sql: Sql,
  t: Tables,
  target: RunTarget,
  p: { workerId: string; result: unknown },
): Promise<(TargetSeen & Partial<Job> & RunEnded & WithDependents) | null> {
  const result = p.result === undefined ? null : sql.json(p.result as never)
  const [row] = await sql<(TargetSeen & Partial<Job> & RunEnded & WithDependents)[]>`
    with target as (${targetCte(sql, t, target)}),
    finished as (
      update ${sql(t.runs)} r set
        status = 'succeeded', result = ${result}, lease_expires_at = null,
        finished_at = now(), updated_at = ${nextStamp(sql, 'r.updated_at')}
      where ${heldRun(sql, p.workerId)}
      returning r.job_id, r.result, r.updated_at, r.started_at, r.finished_at
    ), job as (
      update ${sql(t.jobs)} j set
        status = 'succeeded', result = finished.result, completed_at = now(), updated_at = greatest(${nextStamp(sql, 'j.updated_at')}, finished.updated_at)
      from finished where j.id = finished.job_id
      returning ${jobColumns(sql, 'j')}, j.dependents
    )
    select target.*, job.*, finished.started_at as run_started_at, finished.finished_at as run_finished_at
    from target left join job on true left join finished on true`
  return row ?? null
}

/**
 * The retry delay when a failure names none, in seconds: 2^attempt (2 s, 4 s,
 * 8 s …) with ±20% jitter so jobs that failed together do not retry together,
 * capped at an hour. `attempt` names the failed run's attempt column.
 */
export function defaultBackoff(sql: Queryable, attempt: string) {
  return sql`least(3600, power(2, least(${sql(attempt)}, 12)) * (0.8 + random() * 0.4))`
}

/** What fail stores and decides with. */
export interface FailParams {
  workerId: string
  error: string | null
  retryable: boolean
  /** null: 2^attempt seconds with ±20% jitter, capped at an hour. */
  backoffSec: number | null
  result: unknown
}

/**
 * Marks the held run failed and decides the job's next status in the same
 * statement: cancelled if cancel was requested; pending after the backoff if
 * retryable with attempts left; failed otherwise.
 *
 * The decision reads the job row the update has locked, not the statement's
 * snapshot: when the statement waited on a lock (a heartbeat holding the run, a
 * cancel holding the job), Postgres re-reads only the row it updates, so a cancel
 * committed during the wait is visible there and nowhere else.
 */
export async function runFail(
  sql: Sql,
  t: Tables,
  target: RunTarget,
  p: FailParams,
): Promise<(TargetSeen & Partial<Job> & RunEnded & WithDependents) | null> {
  const result = p.result === undefined ? null : sql.json(p.result as never)
  const retries = sql`(not j.cancel_requested and ${p.retryable} and j.attempt_count < j.max_attempts)`
  const [row] = await sql<(TargetSeen & Partial<Job> & RunEnded & WithDependents)[]>`
    with target as (${targetCte(sql, t, target)}),
    finished as (
      update ${sql(t.runs)} r set
        status = 'failed', error = ${p.error}, result = ${result}, lease_expires_at = null,
        finished_at = now(), updated_at = ${nextStamp(sql, 'r.updated_at')}
      where ${heldRun(sql, p.workerId)}
      returning r.job_id, r.attempt, r.updated_at, r.started_at, r.finished_at
    ), job as (
      update ${sql(t.jobs)} j set
        status = case when j.cancel_requested then 'cancelled' when ${retries} then 'pending' else 'failed' end,
        scheduled_at = case when ${retries} then now() + make_interval(secs => coalesce(
                         ${p.backoffSec}::float8, ${defaultBackoff(sql, 'f.attempt')}
                       )) else j.scheduled_at end,
        completed_at = case when ${retries} then null else now() end,
        updated_at = greatest(${nextStamp(sql, 'j.updated_at')}, f.updated_at)
      from finished f where j.id = f.job_id
      returning ${jobColumns(sql, 'j')}, j.dependents
    )
    select target.*, job.*, finished.started_at as run_started_at, finished.finished_at as run_finished_at
    from target left join job on true left join finished on true`
  return row ?? null
}
