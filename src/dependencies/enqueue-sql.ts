/**
 * The statements of an enqueue with dependencies, run in one transaction by
 * enqueueGraph (enqueue.ts): find the jobs that already hold the nodes' keys, lock
 * the stored dependencies while appending the new jobs to their `dependents`, and
 * insert the new jobs with the status their dependencies give them.
 */
import type { Queryable } from '../db/client'
import type { Tables } from '../db/tables'
import { jobsHotAndHistory } from '../history/anywhere-sql'
import { jobColumns } from '../jobs/columns'
import type { Job } from '../jobs/model'
import { flowSlotsEnsured } from '../limits/enqueue-sql'

/** A job row as stored (no current_run). */
type JobRow = Omit<Job, 'current_run'>

/** A key a node asks for: unique forever (`active` false) or while a job holding it is live. */
export interface NodeKey {
  kind: string
  key: string
  active: boolean
}

/**
 * The stored jobs holding any of `keys`, each with the key it answers for. A
 * forever key is found through job_keys (migrations/009), so its job answers
 * whether it is hot or in history; a key unique while active only by a live
 * job, which is always hot.
 */
export async function keyHolders(
  sql: Queryable,
  t: Tables,
  keys: NodeKey[],
): Promise<(JobRow & { unique_while_active: boolean | null })[]> {
  if (keys.length === 0) return []
  const input = sql`jsonb_to_recordset(${sql.json(keys as never)}::jsonb) as k(kind text, key text, active boolean)`
  return sql<(JobRow & { unique_while_active: boolean | null })[]>`
    select ${jobColumns(sql, 'j')}, j.unique_while_active
    from ${input}
    join ${sql(t.jobs)} j on j.kind = k.kind and j.idempotency_key = k.key
    where k.active and j.unique_while_active and j.status in ('waiting', 'pending', 'active')
    union all
    select ${jobColumns(sql, 'j')}, null::boolean
    from ${input}
    join ${sql(t.jobKeys)} jk on jk.kind = k.kind and jk.idempotency_key = k.key
    join ${jobsHotAndHistory(sql, t, jobColumns(sql))} j on j.id = jk.job_id
    where not k.active`
}

/** A stored dependency, locked, as the new jobs see it. */
export interface LockedParent {
  id: string
  status: string
}

/**
 * Appends each new job to the `dependents` of the stored jobs it depends on, and
 * answers those jobs' statuses as they stand under that lock. Locked in id order,
 * so two enqueues sharing dependencies wait for each other in the same order. A
 * completion of one of them that began before this transaction commits sees the
 * new jobs on the list it reads under the same lock (settle-sql.ts).
 *
 * A dependency that has ended may have moved to history (migrations/009); there
 * it is appended to in place, so a retry of it with cascade still finds the jobs
 * its end cancelled (a restore carries the row back whole). A job can move
 * between statements, so: the hot table (a lock on a row the history sweep is
 * moving waits for the move and finds it gone), then history for the ids not
 * found (a later snapshot, which sees the move), then the hot table once more
 * for any still missing (a retry may have restored one in between). An id found
 * in none of them is unknown.
 */
export async function parentsLocked(
  sql: Queryable,
  t: Tables,
  children: { id: string; children: string[] }[],
): Promise<LockedParent[]> {
  const found: LockedParent[] = []
  let missing = children
  for (const table of [t.jobs, t.jobsHistory, t.jobs]) {
    if (missing.length === 0) break
    const locked = await parentsLockedIn(sql, table, missing)
    found.push(...locked)
    const seen = new Set(locked.map((p) => p.id))
    missing = missing.filter((c) => !seen.has(c.id))
  }
  return found
}

/** parentsLocked's statement on one table (`jobs`, or `jobs_history`: same columns). */
async function parentsLockedIn(
  sql: Queryable,
  table: string,
  children: { id: string; children: string[] }[],
): Promise<LockedParent[]> {
  return sql<LockedParent[]>`
    with input as (
      select * from jsonb_to_recordset(${sql.json(children as never)}::jsonb) as x(id text, children text[])
    ), locked as (
      select p.id from ${sql(table)} p where p.id in (select id from input) order by p.id for no key update
    )
    update ${sql(table)} p set dependents = coalesce(p.dependents, '{}') || i.children
    from input i join locked l on l.id = i.id
    where p.id = i.id
    returning p.id, p.status`
}

/** One new job of the graph, its status decided. */
export interface GraphRow {
  id: string
  kind: string
  queue: string
  service: string
  idempotency_key: string | null
  unique_while_active: boolean | null
  concurrency_key: string | null
  params: unknown
  priority: number
  max_attempts: number
  scheduled_at: string | null
  status: 'waiting' | 'pending' | 'cancelled'
  error: string | null
  depends_on: string[] | null
  dependents: string[] | null
  waiting_on: number | null
  on_dependency_failure: 'run' | null
  expires_in_seconds: number | null
  timeout_seconds: number | null
  flow_controlled: boolean
}

/** The graph's rows as a record set (both insert statements read them so). */
function graphRecords(sql: Queryable, rows: GraphRow[]) {
  return sql`jsonb_to_recordset(${sql.json(rows as never)}::jsonb) as x(
        id text, kind text, queue text, service text, idempotency_key text, unique_while_active boolean,
        concurrency_key text, params jsonb, priority int, max_attempts int, scheduled_at timestamptz, status text,
        error text, depends_on text[], dependents text[], waiting_on int, on_dependency_failure text,
        expires_in_seconds float8, timeout_seconds int, flow_controlled boolean)`
}

/** `insert into jobs (…) select …`: the columns a graph's job is stored with, from a source that follows. */
function graphJobsInsert(sql: Queryable, t: Tables) {
  return sql`insert into ${sql(t.jobs)}
        (id, kind, queue, service, idempotency_key, unique_while_active, concurrency_key, params, priority,
         max_attempts, scheduled_at, status, error, completed_at, depends_on, dependents, waiting_on,
         on_dependency_failure, expires_at, timeout_seconds, flow_controlled)
      select id, kind, queue, service, idempotency_key, unique_while_active, concurrency_key, params, priority,
             max_attempts, scheduled_at, status, error, case when status = 'cancelled' then now() end, depends_on,
             dependents, waiting_on, on_dependency_failure, now() + make_interval(secs => expires_in_seconds),
             timeout_seconds, flow_controlled`
}

/**
 * Inserts the new jobs; answers each one inserted. A job whose key a concurrent
 * enqueue took after keyHolders read is not inserted (and not answered): the
 * caller rolls the transaction back and starts again, since others may depend on it.
 */
export async function graphInserted(sql: Queryable, t: Tables, rows: GraphRow[]): Promise<JobRow[]> {
  const flowing = rows.some((r) => r.flow_controlled)
  // Forever keys are claimed in job_keys first (migrations/009); a graph without
  // one keeps the statement it had before.
  if (rows.some((r) => r.idempotency_key !== null && r.unique_while_active === null)) {
    return graphInsertedKeyed(sql, t, rows, flowing)
  }
  return sql<JobRow[]>`
    with inserted as (
      ${graphJobsInsert(sql, t)}
      from ${graphRecords(sql, rows)}
      order by kind, idempotency_key, id
      on conflict do nothing
      returning ${jobColumns(sql)}, flow_controlled
    )${flowing ? sql`, slotted as (${flowSlotsEnsured(sql, t, 'inserted')})` : sql``}
    select ${jobColumns(sql)} from inserted`
}

/**
 * graphInserted for rows with forever keys: each key is claimed in job_keys
 * (migrations/009), in (kind, key) order as the jobs are inserted, and a job is
 * inserted only with its key claimed. A key taken meanwhile is not claimed, its
 * job not inserted, and the caller starts again; a claim whose job still did not
 * go in (a conflict on jobs itself) rolls back with that transaction.
 */
async function graphInsertedKeyed(sql: Queryable, t: Tables, rows: GraphRow[], flowing: boolean): Promise<JobRow[]> {
  return sql<JobRow[]>`
    with input as (
      select * from ${graphRecords(sql, rows)}
    ), claimed as (
      insert into ${sql(t.jobKeys)} (kind, idempotency_key, job_id)
      select kind, idempotency_key, id from input
      where idempotency_key is not null and unique_while_active is null
      order by kind, idempotency_key
      on conflict (kind, idempotency_key) do nothing
      returning job_id
    ), inserted as (
      ${graphJobsInsert(sql, t)}
      from input
      where idempotency_key is null or unique_while_active or id in (select job_id from claimed)
      order by kind, idempotency_key, id
      on conflict do nothing
      returning ${jobColumns(sql)}, flow_controlled
    )${flowing ? sql`, slotted as (${flowSlotsEnsured(sql, t, 'inserted')})` : sql``}
    select ${jobColumns(sql)} from inserted`
}
