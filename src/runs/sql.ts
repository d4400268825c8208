/**
 * Named statements for the worker side. Claim, heartbeat, complete, fail and the
 * reaper's abandon are each one statement: the run and its job move together.
 */
import type { Sql } from '../db/client'
import { nextStamp, runFromJson } from '../db/rows'
import type { Tables } from '../db/tables'
import { changeOf, type JobChange } from '../events/hub'
import type { Job, Run } from '../jobs/model'
import type { Claimed, HeartbeatResult } from './model'

/** Which running run a call addresses: by its id, or as "the running run of this job". */
export type RunTarget = { runId: string } | { jobId: string }

/**
 * What the statement saw of the addressed run before acting, so a refused call can
 * say why (unknown id → 404; not running or someone else's → 409).
 */
export interface TargetSeen {
  target_run_id: string | null
  target_status: string | null
  target_worker_id: string | null
}

/** What runClaim needs. */
export interface ClaimParams {
  kinds: string[]
  queues?: string[]
  workerId: string
  leaseSec: number
  /** One fresh run id per job to claim; its length is the batch size. */
  runIds: string[]
}

/**
 * Claims up to runIds.length pending, due jobs of `kinds` (highest priority, then
 * oldest) and opens a running run for each, in one statement. SKIP LOCKED lets
 * concurrent claimers pass each other instead of queueing on the same row.
 */
export async function runClaim(sql: Sql, t: Tables, p: ClaimParams): Promise<Claimed[]> {
  // One kind compares with `=` so the claim index returns rows already in order
  // and the LIMIT stops the scan; `= any` makes the planner sort the pending rows.
  const kindMatch = p.kinds.length === 1 ? sql`kind = ${p.kinds[0] ?? ''}` : sql`kind = any(${p.kinds})`
  const rows = await sql<(Job & { run: unknown })[]>`
    with picked as (
      select id from ${sql(t.jobs)}
      where status = 'pending' and ${kindMatch}
        ${p.queues ? sql`and queue = any(${p.queues})` : sql``}
        and (scheduled_at is null or scheduled_at <= now())
      order by priority desc, enqueued_at, id
      limit ${p.runIds.length}
      for update skip locked
    ), claimed as (
      update ${sql(t.jobs)} j set
        status = 'active',
        attempt_count = j.attempt_count + 1,
        started_at = coalesce(j.started_at, now()),
        updated_at = ${nextStamp(sql, 'j.updated_at')}
      from picked where j.id = picked.id
      returning j.*
    ), numbered as (
      select c.id as job_id, c.attempt_count, row_number() over (order by c.id) as n from claimed c
    ), opened as (
      insert into ${sql(t.runs)} (id, job_id, attempt, worker_id, status, lease_expires_at)
      select ids.run_id, numbered.job_id, numbered.attempt_count, ${p.workerId}, 'running',
             now() + make_interval(secs => ${p.leaseSec})
      from numbered join unnest(${p.runIds}::text[]) with ordinality as ids(run_id, n) using (n)
      returning *
    )
    select c.*, to_jsonb(o) as run
    from claimed c join opened o on o.job_id = c.id
    order by c.priority desc, c.enqueued_at, c.id`
  return rows.map(({ run, ...job }) => ({ job, run: runFromJson(run) as Run }))
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
        left join ${sql(t.runs)} r on r.job_id = j.id and r.status = 'running'
        where j.id = ${target.jobId}`
}

/** The running run addressed, if `workerId` holds it (re-checked on the locked row). */
function heldRun(sql: Sql, workerId: string) {
  return sql`r.id = (select target_run_id from target) and r.status = 'running' and r.worker_id = ${workerId}`
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
): Promise<(TargetSeen & Partial<Job> & RunEnded) | null> {
  const result = p.result === undefined ? null : sql.json(p.result as never)
  const [row] = await sql<(TargetSeen & Partial<Job> & RunEnded)[]>`
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
      returning j.*
    )
    select target.*, job.*, finished.started_at as run_started_at, finished.finished_at as run_finished_at
    from target left join job on true left join finished on true`
  return row ?? null
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
 */
export async function runFail(
  sql: Sql,
  t: Tables,
  target: RunTarget,
  p: FailParams,
): Promise<(TargetSeen & Partial<Job> & RunEnded) | null> {
  const result = p.result === undefined ? null : sql.json(p.result as never)
  const [row] = await sql<(TargetSeen & Partial<Job> & RunEnded)[]>`
    with target as (${targetCte(sql, t, target)}),
    finished as (
      update ${sql(t.runs)} r set
        status = 'failed', error = ${p.error}, result = ${result}, lease_expires_at = null,
        finished_at = now(), updated_at = ${nextStamp(sql, 'r.updated_at')}
      where ${heldRun(sql, p.workerId)}
      returning r.job_id, r.attempt, r.updated_at, r.started_at, r.finished_at
    ), decided as (
      select j.id, finished.updated_at as run_updated_at,
        case
          when j.cancel_requested then 'cancelled'
          when ${p.retryable} and j.attempt_count < j.max_attempts then 'pending'
          else 'failed'
        end as next_status,
        coalesce(
          ${p.backoffSec}::float8,
          least(3600, power(2, least(finished.attempt, 12)) * (0.8 + random() * 0.4))
        ) as backoff
      from ${sql(t.jobs)} j join finished on j.id = finished.job_id
    ), job as (
      update ${sql(t.jobs)} j set
        status = d.next_status,
        scheduled_at = case when d.next_status = 'pending'
                            then now() + make_interval(secs => d.backoff) else j.scheduled_at end,
        completed_at = case when d.next_status = 'pending' then null else now() end,
        updated_at = greatest(${nextStamp(sql, 'j.updated_at')}, d.run_updated_at)
      from decided d where j.id = d.id
      returning j.*
    )
    select target.*, job.*, finished.started_at as run_started_at, finished.finished_at as run_finished_at
    from target left join job on true left join finished on true`
  return row ?? null
}

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
    limit ${q.limit}`
}

/** One run the reaper abandoned, with its job's kind and (when the job moved on) where it went. */
export interface AbandonedRun {
  run_id: string
  run_kind: string
  run_started_at: string
  run_finished_at: string
  /** Null when the job was not active (nothing moved). */
  status?: string | null
  job_enqueued_at: string | null
  job_completed_at: string | null
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
): Promise<{ runs: number; jobs: JobChange[]; ended: AbandonedRun[] }> {
  const rows = await sql<(AbandonedRun & Partial<JobChange>)[]>`
    with expired as (
      select id from ${sql(t.runs)}
      where status = 'running' and lease_expires_at < now()
      order by lease_expires_at
      limit ${batch}
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
      returning j.id, j.status, j.kind, j.queue, j.enqueued_at, j.completed_at
    )
    select a.id as run_id, a.started_at as run_started_at, a.finished_at as run_finished_at, k.kind as run_kind,
           m.enqueued_at as job_enqueued_at, m.completed_at as job_completed_at,
           m.id, m.status, m.kind, m.queue
    from abandoned a
    join ${sql(t.jobs)} k on k.id = a.job_id
    left join moved m on m.id = a.job_id`
  return {
    runs: rows.length,
    jobs: rows.filter((r): r is typeof r & JobChange => r.id != null).map(changeOf),
    ended: rows,
  }
}
