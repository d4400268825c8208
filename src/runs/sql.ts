/**
 * Named statements for runs: claim, reads, and the reaper's abandon, each one
 * statement (the run and its job move together). Statements on a held run
 * (heartbeat, complete, fail) are in held-run-sql.ts.
 */
import type { Sql } from '../db/client'
import { literalLimit } from '../db/literal'
import { nextStamp, runFromJson } from '../db/rows'
import type { Tables } from '../db/tables'
import { changeOf, type JobChange } from '../events/hub'
import type { Job, Run } from '../jobs/model'
import type { Claimed } from './model'

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
 * the one due longest) and opens a running run for each, in one statement. SKIP
 * LOCKED lets concurrent claimers pass each other instead of queueing on a row.
 */
export async function runClaim(sql: Sql, t: Tables, p: ClaimParams): Promise<Claimed[]> {
  const rows = await sql<(Job & { run: unknown })[]>`
    with ${claimCtes(sql, t, p)}
    select c.*, to_jsonb(o) as run
    from claimed c join opened o on o.job_id = c.id
    order by c.priority desc, coalesce(c.scheduled_at, c.enqueued_at), c.id`
  return rows.map(({ run, ...job }) => ({ job, run: runFromJson(run) as Run }))
}

/**
 * The claim as CTEs (`picked`, `claimed`, `opened`), so a statement
 * that also completes runs can claim in the same transaction.
 *
 * Each kind is its own ordered, limited branch of the claim index, merged after:
 * with `kind = any(...)` the index cannot give the order, so Postgres read and
 * sorted every pending row of those kinds before the LIMIT (293 ms a claim with
 * 200k pending, against 0.6 ms for one kind). A branch may lock a few rows the
 * merge then drops; they are free again when the statement ends.
 */
export function claimCtes(sql: Sql, t: Tables, p: ClaimParams) {
  // The batch size is part of the text (see literalLimit), so a generic plan knows
  // the scan stops after it.
  const limit = literalLimit(sql, p.runIds.length)
  // One kind and one job, the commonest claim, is spelled with plain values: then
  // Postgres costs the generic plan as it does a custom one, settles on it after a
  // few calls and stops planning each claim (arrays of unknown length kept it
  // planning every time: 0.4 ms a claim, about a third of its database time).
  const [onlyKind] = p.kinds
  const [onlyRunId] = p.runIds
  const kinds =
    p.kinds.length === 1 && onlyKind !== undefined
      ? sql`(select ${onlyKind}::text as kind) as k`
      : sql`unnest(${p.kinds}::text[]) as k(kind)`
  const opened =
    p.runIds.length === 1 && onlyRunId !== undefined
      ? sql`
      insert into ${sql(t.runs)} (id, job_id, attempt, worker_id, status, lease_expires_at)
      select ${onlyRunId}, c.id, c.attempt_count, ${p.workerId}, 'running', now() + make_interval(secs => ${p.leaseSec})
      from claimed c`
      : sql`
      insert into ${sql(t.runs)} (id, job_id, attempt, worker_id, status, lease_expires_at)
      select ids.run_id, numbered.job_id, numbered.attempt_count, ${p.workerId}, 'running',
             now() + make_interval(secs => ${p.leaseSec})
      from (select c.id as job_id, c.attempt_count, row_number() over (order by c.id) as n from claimed c) numbered
      join unnest(${p.runIds}::text[]) with ordinality as ids(run_id, n) using (n)`
  return sql`
    picked as (
      select branch.id from ${kinds}
      cross join lateral (
        select j.id, j.priority, ${dueAt(sql)} as due
        from ${sql(t.jobs)} j
        where j.status = 'pending' and j.kind = k.kind and ${dueAt(sql)} <= now()
          ${p.queues ? sql`and j.queue = any(${p.queues}::text[])` : sql``}
        order by j.priority desc, ${dueAt(sql)}, j.id
        limit ${limit}
        for update skip locked
      ) branch
      order by branch.priority desc, branch.due, branch.id
      limit ${limit}
    ), claimed as (
      update ${sql(t.jobs)} j set
        status = 'active',
        attempt_count = j.attempt_count + 1,
        started_at = coalesce(j.started_at, now()),
        updated_at = ${nextStamp(sql, 'j.updated_at')}
      from picked where j.id = picked.id
      returning j.*
    ), opened as (${opened}
      returning *
    )`
}

/**
 * When a pending job becomes claimable: its scheduled_at (a scheduled job, a retry
 * after its backoff) or else when it was enqueued. The claim index is built on
 * this very expression (migrations/004), so it must be spelled the same way.
 */
function dueAt(sql: Sql) {
  return sql`coalesce(j.scheduled_at, j.enqueued_at)`
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
    limit ${literalLimit(sql, q.limit)}`
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
