/**
 * Named statements on the jobs table. Each state transition is one statement, so
 * a crash between two round-trips can never leave a half-done transition. Reads
 * of jobs, live or historic, are in reads-sql.ts.
 */
import type { Queryable, Sql } from '../db/client'
import { nextStamp } from '../db/rows'
import type { Tables } from '../db/tables'
import type { JobChange } from '../events/hub'
import { jobsHotAndHistory } from '../history/anywhere-sql'
import { flowSlotsEnsured } from '../limits/enqueue-sql'
import { jobColumns } from './columns'
import type { Job } from './model'

/** A job row as stored (no current_run). */
type JobRow = Omit<Job, 'current_run'>

/** What jobInsert needs; defaults are already applied. */
export interface JobInsert {
  id: string
  kind: string
  queue: string
  service: string
  idempotencyKey: string | null
  concurrencyKey: string | null
  params: unknown
  priority: number
  maxAttempts: number
  scheduledAt: string | null
  /**
   * Its kind has limits, as this process last read them (LimitedKinds): the job
   * goes through the limited claim and gets its slot row. Decided here rather
   * than by a lookup in the statement, which cost every enqueue ~12% more
   * Postgres CPU (and the slot-row CTE ~13% more again) for kinds without limits.
   * A job enqueued unmarked just after its kind gained limits is marked by the
   * sweep (limits/stragglers-sql.ts).
   */
  flowControlled: boolean
  /** expires_in_seconds: the job is cancelled ("expired") if not claimed this long after the insert. */
  expiresInSeconds?: number | null
  /** timeout_seconds: a run longer than this fails ("timed out"). */
  timeoutSeconds?: number | null
}

/**
 * The time-limit columns of an insert, named only for a job that has one: a job
 * without them goes through exactly the statement it did before they existed.
 * `columns` goes after the column list's last entry, `values` after the last value.
 */
export function timeLimitColumns(sql: Queryable, j: Pick<JobInsert, 'expiresInSeconds' | 'timeoutSeconds'>) {
  if (j.expiresInSeconds == null && j.timeoutSeconds == null) return { columns: sql``, values: sql`` }
  return {
    columns: sql`, expires_at, timeout_seconds`,
    values: sql`, now() + make_interval(secs => ${j.expiresInSeconds ?? null}::float8), ${j.timeoutSeconds ?? null}::int`,
  }
}

/**
 * Inserts a job unless (kind, idempotency_key) is taken; answers the stored job
 * and whether this call created it. Empty only when a concurrent insert of the
 * same key committed after this statement's snapshot: the caller retries.
 *
 * The key is claimed in job_keys (migrations/009) in the same statement, and the
 * job inserted only when the claim took: a key stays taken after its job moved
 * to history, which the partial unique index on jobs cannot see. The job that
 * holds a taken key is answered from the hot table or history, whichever this
 * statement's snapshot finds it in. The jobs insert has no ON CONFLICT: every
 * statement that inserts a forever key claims it here first, so a conflict on
 * jobs_kind_idempotency_key_key (kept as a second guard) would mean a job whose
 * key was never claimed, and it fails the statement rather than leaving a claim
 * that names no job. Cost (bench/keyed-enqueue.ts, 10 alternating rounds of
 * 3,000): Postgres backend CPU 307 → 347 µs per keyed enqueue (×1.13), wall
 * 622 → 691 µs; a job without a key runs jobInsertKeyless, unchanged.
 */
export async function jobInsert(
  sql: Queryable,
  t: Tables,
  j: JobInsert,
): Promise<{ created: boolean; job: JobRow } | null> {
  if (j.idempotencyKey === null) return { created: true, job: await jobInsertKeyless(sql, t, j) }
  const limits = timeLimitColumns(sql, j)
  const rows = await sql<(JobRow & { created: boolean })[]>`
    with claimed as (
      insert into ${sql(t.jobKeys)} (kind, idempotency_key, job_id)
      values (${j.kind}, ${j.idempotencyKey}, ${j.id})
      on conflict (kind, idempotency_key) do nothing
      returning job_id
    ), inserted as (
      -- INSERT … SELECT: Postgres does not type these parameters from the columns, hence the casts.
      insert into ${sql(t.jobs)}
        (id, kind, queue, service, idempotency_key, concurrency_key, params, priority, max_attempts, scheduled_at
         ${j.flowControlled ? sql`, flow_controlled` : sql``} ${limits.columns})
      select job_id, ${j.kind}::text, ${j.queue}::text, ${j.service}::text, ${j.idempotencyKey}::text,
             ${j.concurrencyKey}::text, ${sql.json(j.params as never)}::jsonb, ${j.priority}::int,
             ${j.maxAttempts}::int, ${j.scheduledAt}::timestamptz
             ${j.flowControlled ? sql`, true` : sql``} ${limits.values}
      from claimed
      returning ${jobColumns(sql)}
    )${j.flowControlled ? sql`, slotted as (${flowSlotsEnsured(sql, t, 'inserted', true)})` : sql``}
    select true as created, * from inserted
    union all
    select false as created, ${jobColumns(sql, 'j')}
    from ${sql(t.jobKeys)} k join ${jobsHotAndHistory(sql, t, jobColumns(sql))} j on j.id = k.job_id
    where k.kind = ${j.kind} and k.idempotency_key = ${j.idempotencyKey}
      and not exists (select 1 from inserted)`
  const [row] = rows
  if (!row) return null
  const { created, ...job } = row
  return { created, job }
}

/**
 * A job without an idempotency key cannot conflict: a plain insert. The keyed
 * statement's conflict arm and union cost a keyless enqueue about a quarter more
 * Postgres CPU (16 callers: 153–200 against 130–137 µs per job) for nothing.
 */
async function jobInsertKeyless(sql: Queryable, t: Tables, j: JobInsert): Promise<JobRow> {
  const limits = timeLimitColumns(sql, j)
  const values = sql`
    values (${j.id}, ${j.kind}, ${j.queue}, ${j.service}, null, ${j.concurrencyKey}, ${sql.json(j.params as never)},
            ${j.priority}, ${j.maxAttempts}, ${j.scheduledAt}::timestamptz ${limits.values}`
  const [row] = j.flowControlled
    ? await sql<JobRow[]>`
      with inserted as (
        insert into ${sql(t.jobs)}
          (id, kind, queue, service, idempotency_key, concurrency_key, params, priority, max_attempts, scheduled_at
           ${limits.columns}, flow_controlled)
        ${values}, true)
        returning ${jobColumns(sql)}
      ), slotted as (${flowSlotsEnsured(sql, t, 'inserted', true)})
      select * from inserted`
    : await sql<JobRow[]>`
      insert into ${sql(t.jobs)}
        (id, kind, queue, service, idempotency_key, concurrency_key, params, priority, max_attempts, scheduled_at
         ${limits.columns})
      ${values})
      returning ${jobColumns(sql)}`
  if (!row) throw new Error(`insert of job ${j.id} answered no row`)
  return row
}

/** What the job lists and bulk actions filter on; `params` is a JSON object the job's params must contain. */
export interface JobFilter {
  status?: string
  kind?: string
  service?: string
  queue?: string
  params?: Record<string, unknown>
}

/**
 * The filter's conditions on row `j`, each as `and …`. `params @>` can use the
 * optional GIN index (FOREMAN_PARAMS_INDEX); without it the other conditions'
 * rows are filtered.
 */
export function jobFilterWhere(sql: Queryable, f: JobFilter) {
  return sql`
    ${f.status ? sql`and j.status = ${f.status}` : sql``}
    ${f.kind !== undefined ? sql`and j.kind = ${f.kind}` : sql``}
    ${f.service !== undefined ? sql`and j.service = ${f.service}` : sql``}
    ${f.queue !== undefined ? sql`and j.queue = ${f.queue}` : sql``}
    ${f.params !== undefined ? sql`and j.params @> ${sql.json(f.params as never)}::jsonb` : sql``}`
}

/**
 * Cancels in one statement: waiting or pending → cancelled now, and the jobs
 * waiting on it with it (settle-sql.ts); active → cancel_requested (the worker sees
 * it on its next heartbeat, and the cascade follows when its run ends); terminal →
 * unchanged. Also answers the status it found, so the caller knows whether this
 * call ended the job. The locking read gives the latest committed status
 * (RETURNING sees only new values).
 */
export async function jobCancel(
  sql: Sql,
  t: Tables,
  id: string,
): Promise<(JobRow & { prior_status: string; dependents: string[] | null }) | null> {
  const [row] = await sql<(JobRow & { prior_status: string; dependents: string[] | null })[]>`
    with prior as (
      select id, status from ${sql(t.jobs)} where id = ${id} for update
    )
    update ${sql(t.jobs)} j set ${cancelSet(sql)}
    from prior
    where j.id = prior.id
    returning ${jobColumns(sql, 'j')}, j.dependents, prior.status as prior_status`
  return row ?? null
}

/**
 * Cancel, on row `j` (jobCancel's rule, and a bulk cancel's): waiting or pending →
 * cancelled now; active → cancel_requested; terminal → unchanged.
 */
export function cancelSet(sql: Queryable) {
  return sql`
    status = case when j.status in ('waiting', 'pending') then 'cancelled' else j.status end,
    completed_at = case when j.status in ('waiting', 'pending') then now() else j.completed_at end,
    cancel_requested = j.cancel_requested or j.status in ('waiting', 'pending', 'active'),
    updated_at = case when j.status in ('waiting', 'pending', 'active') then ${nextStamp(sql, 'j.updated_at')}
                 else j.updated_at end`
}

/**
 * Milliseconds until the earliest pending job of `kinds` (and `queues`) that is
 * not yet due comes due; null when none waits. Relative to the database clock.
 * One probe per kind into the scheduled-jobs index (migrations/004): every waiting
 * claimer asks after each empty claim, and a scan here cost 86 ms with 100k
 * jobs in backoff.
 */
export async function jobNextDueIn(sql: Sql, t: Tables, kinds: string[], queues?: string[]): Promise<number | null> {
  const [row] = await sql<{ ms: number | null }[]>`
    select ceil(extract(epoch from min(next.scheduled_at) - now()) * 1000)::float8 as ms
    from unnest(${kinds}::text[]) as k(kind)
    cross join lateral (
      select j.scheduled_at from ${sql(t.jobs)} j
      where j.status = 'pending' and j.scheduled_at is not null and j.kind = k.kind and j.scheduled_at > now()
        ${queues ? sql`and j.queue = any(${queues}::text[])` : sql``}
      order by j.scheduled_at
      limit 1
    ) next`
  return row?.ms ?? null
}

/**
 * Deletes up to `batch` terminal jobs completed more than `days` ago (runs
 * cascade), freeing their forever keys in the same statement.
 */
export async function jobDeleteExpired(sql: Sql, t: Tables, days: number, batch: number): Promise<JobChange[]> {
  const rows = await sql<{ id: string; kind: string; queue: string }[]>`
    with gone as (
      delete from ${sql(t.jobs)} where id in (
        select id from ${sql(t.jobs)}
        where completed_at < now() - make_interval(secs => ${days * 86_400})
        limit ${batch}
      )
      returning id, kind, queue, idempotency_key
    ), freed as (
      delete from ${sql(t.jobKeys)} k using gone g
      where g.idempotency_key is not null
        and k.kind = g.kind and k.idempotency_key = g.idempotency_key and k.job_id = g.id
    )
    select id, kind, queue from gone`
  return rows.map((r) => ({ ...r, status: 'deleted' }))
}
