/**
 * The enqueue statements of `unique_while_active` and `debounce_seconds` (issue
 * 13): jobs whose idempotency key is unique only among their kind's live jobs
 * (waiting, pending, active), through the partial unique index
 * jobs_kind_active_key_key (migrations/008). They live apart from sql.ts so that
 * the keyed insert every other enqueue runs stays exactly today's statement: the
 * service picks these from the request, never a lookup inside a statement
 * (docs/design/orchestration.md).
 */
import type { Fragment, Queryable } from '../db/client'
import { nextStamp } from '../db/rows'
import type { Tables } from '../db/tables'
import { flowSlotsEnsured } from '../limits/enqueue-sql'
import { jobColumns } from './columns'
import type { Job } from './model'
import { type JobInsert, timeLimitColumns } from './sql'

/** A job row as stored (no current_run). */
type JobRow = Omit<Job, 'current_run'>

/** What a while-active insert needs: a JobInsert that has its key. */
export interface JobInsertWhileActive extends JobInsert {
  idempotencyKey: string
}

/** What jobDebounce needs: the job to insert when no live job holds the key, and the delay. */
export interface JobDebounce extends JobInsertWhileActive {
  /** The job (new or moved) comes due this many seconds after the statement runs. */
  debounceSeconds: number
}

/**
 * How a while-active enqueue ended: `created` a new job; `debounced` the live
 * holder of the key, moved; `duplicate` the live holder, unchanged.
 */
export type WhileActiveOutcome = 'created' | 'debounced' | 'duplicate'

/** A while-active enqueue's answer: what happened, and the job it happened to. */
export interface WhileActiveAnswer {
  outcome: WhileActiveOutcome
  job: JobRow
}

/**
 * The live key: the predicate of jobs_kind_active_key_key, word for word, so the
 * conflict clause infers that index and lookups read it.
 */
const liveKey = (sql: Queryable) => sql`unique_while_active and status in ('waiting', 'pending', 'active')`

/**
 * Inserts a job keyed while active unless a live job of its kind holds the key;
 * answers the new job (`created`) or the holder (`duplicate`). Empty only when
 * the holder was inserted by a transaction that committed after this statement's
 * snapshot (the conflict saw it, the read cannot): the caller retries, as it does
 * for jobInsert. A holder that ended concurrently is no conflict: its key is free.
 */
export async function jobInsertWhileActive(
  sql: Queryable,
  t: Tables,
  j: JobInsertWhileActive,
): Promise<WhileActiveAnswer | null> {
  const rows = await sql<(JobRow & { outcome: WhileActiveOutcome })[]>`
    with inserted as (
      ${whileActiveInsert(sql, t, j, sql`${j.scheduledAt}::timestamptz`, sql``)}
    )${j.flowControlled ? sql`, slotted as (${flowSlotsEnsured(sql, t, 'inserted', true)})` : sql``}
    select 'created' as outcome, * from inserted
    union all
    select 'duplicate' as outcome, ${jobColumns(sql)} from ${sql(t.jobs)}
    where kind = ${j.kind} and idempotency_key = ${j.idempotencyKey} and ${liveKey(sql)}
      and not exists (select 1 from inserted)`
  return answerOf(rows)
}

/**
 * Debounces in one statement. It locks the live holder of (kind, key), if any:
 * - a holder that is `pending` and not yet due gets the new params and comes due
 *   `debounceSeconds` from now (`debounced`);
 * - a holder that is live but not so (active, waiting, or pending and already
 *   due) is left alone and answered (`duplicate`): a worker may already run it
 *   with the params it has, a waiting job comes due when its dependencies allow,
 *   and a due job is a claim away from running, so moving any of them would
 *   silently drop or delay work a worker is entitled to;
 * - without a holder, a new job keyed while active, due `debounceSeconds` from
 *   now (`created`).
 *
 * Concurrent debounces of one key queue on the holder's row lock and each moves
 * it in turn (the lock wait re-reads the row, so each sees the last one's move,
 * or that the holder was claimed or ended meanwhile). Concurrent first enqueues
 * of a key meet in the unique index: one inserts, the others come back empty
 * (their snapshot cannot see the winner) and the caller retries, which then
 * debounces the winner. Due times use clock_timestamp(), read after the lock
 * wait: now() is the statement's start, and a debounce that waited behind
 * another would otherwise set an earlier due time than the one it follows.
 */
export async function jobDebounce(sql: Queryable, t: Tables, j: JobDebounce): Promise<WhileActiveAnswer | null> {
  const dueAt = sql`clock_timestamp() + make_interval(secs => ${j.debounceSeconds}::float8)`
  const rows = await sql<(JobRow & { outcome: WhileActiveOutcome })[]>`
    with holder as (
      select ${jobColumns(sql)} from ${sql(t.jobs)}
      where kind = ${j.kind} and idempotency_key = ${j.idempotencyKey} and ${liveKey(sql)}
      -- The lock the update below takes anyway: no key column changes, so run
      -- inserts (which share-lock the key) are not blocked.
      for no key update
    ), debounced as (
      update ${sql(t.jobs)} j
      set params = ${sql.json(j.params as never)}::jsonb, scheduled_at = ${dueAt},
          updated_at = ${nextStamp(sql, 'j.updated_at')}
      from holder h
      where j.id = h.id and h.status = 'pending' and h.scheduled_at > clock_timestamp()
      returning ${jobColumns(sql, 'j')}
    ), inserted as (
      ${whileActiveInsert(sql, t, j, dueAt, sql`where not exists (select 1 from holder)`)}
    )${j.flowControlled ? sql`, slotted as (${flowSlotsEnsured(sql, t, 'inserted', true)})` : sql``}
    select 'debounced' as outcome, * from debounced
    union all
    select 'created' as outcome, * from inserted
    union all
    -- The holder as locked (the latest version), not as this snapshot saw it.
    select 'duplicate' as outcome, * from holder where not exists (select 1 from debounced)`
  return answerOf(rows)
}

/**
 * The insert of a job keyed while active, due at `dueAt`, written only when
 * `guard` (a WHERE clause, or nothing) holds. Values are cast: in INSERT …
 * SELECT, Postgres does not type parameters from the target columns.
 */
function whileActiveInsert(sql: Queryable, t: Tables, j: JobInsertWhileActive, dueAt: Fragment, guard: Fragment) {
  const limits = timeLimitColumns(sql, j)
  return sql`
    insert into ${sql(t.jobs)}
      (id, kind, queue, service, idempotency_key, concurrency_key, params, priority, max_attempts, scheduled_at,
       unique_while_active ${j.flowControlled ? sql`, flow_controlled` : sql``} ${limits.columns})
    select ${j.id}::text, ${j.kind}::text, ${j.queue}::text, ${j.service}::text, ${j.idempotencyKey}::text,
           ${j.concurrencyKey}::text, ${sql.json(j.params as never)}::jsonb, ${j.priority}::int, ${j.maxAttempts}::int,
           ${dueAt}, true ${j.flowControlled ? sql`, true` : sql``} ${limits.values}
    ${guard}
    on conflict (kind, idempotency_key) where ${liveKey(sql)} do nothing
    returning ${jobColumns(sql)}`
}

function answerOf(rows: (JobRow & { outcome: WhileActiveOutcome })[]): WhileActiveAnswer | null {
  const [row] = rows
  if (!row) return null
  const { outcome, ...job } = row
  return { outcome, job }
}
