/** Statements on queues: the overview read, pause and resume. */
import { plannedPerCall, type Sql } from '../db/client'
import type { Tables } from '../db/tables'
import type { JobChange } from '../events/hub'
import type { QueueState, QueueSummary } from './model'

/**
 * Every queue with live work (pending or active jobs), with a job ended in the
 * last hour, or paused, by name. Reads the pending and active jobs (the claim
 * index and the active part of the status index) and the last hour's endings
 * (the completed_at index, hot and in history, where the hour also prunes the
 * days): bounded by the live backlog and the hour's activity, never by history. A queue whose jobs all ended more than an hour ago is not
 * listed. Planned for its values on each call: `now() - interval` is known to
 * the planner then, not in a generic plan.
 */
export async function queueList(sql: Sql, t: Tables): Promise<QueueSummary[]> {
  const due = sql`coalesce(j.scheduled_at, j.enqueued_at)`
  return plannedPerCall(sql<QueueSummary[]>`
    with live as (
      select j.queue, j.kind,
        count(*) filter (where j.status = 'pending' and ${due} <= now()) as pending,
        count(*) filter (where j.status = 'pending' and ${due} > now()) as scheduled,
        count(*) filter (where j.status = 'active') as active,
        min(${due}) filter (where j.status = 'pending' and ${due} <= now()) as oldest_due
      -- Two branches, each on the partial index that holds its status (the claim
      -- index; the status index), where 'status in (…)' read the whole table.
      from (
        select queue, kind, status, scheduled_at, enqueued_at from ${sql(t.jobs)} where status = 'pending'
        union all
        select queue, kind, status, scheduled_at, enqueued_at from ${sql(t.jobs)} where status = 'active'
      ) j
      group by j.queue, j.kind
    ), ended as (
      select j.queue, j.kind,
        count(*) filter (where j.status = 'succeeded' and j.completed_at >= now() - interval '1 minute') as succeeded_last_minute,
        count(*) filter (where j.status = 'failed' and j.completed_at >= now() - interval '1 minute') as failed_last_minute,
        count(*) filter (where j.status = 'succeeded') as succeeded_last_hour,
        count(*) filter (where j.status = 'failed') as failed_last_hour
      from (
        select j.queue, j.kind, j.status, j.completed_at from ${sql(t.jobs)} j
        where j.completed_at >= now() - interval '1 hour'
        union all
        select j.queue, j.kind, j.status, j.completed_at from ${sql(t.jobsHistory)} j
        where j.completed_at >= now() - interval '1 hour'
      ) j
      group by j.queue, j.kind
    ), kinds as (
      select queue, kind,
        coalesce(l.pending, 0) as pending, coalesce(l.scheduled, 0) as scheduled, coalesce(l.active, 0) as active,
        l.oldest_due,
        coalesce(e.succeeded_last_minute, 0) as succeeded_last_minute,
        coalesce(e.failed_last_minute, 0) as failed_last_minute,
        coalesce(e.succeeded_last_hour, 0) as succeeded_last_hour,
        coalesce(e.failed_last_hour, 0) as failed_last_hour
      from live l full join ended e using (queue, kind)
    ), queues as (
      select queue from kinds union select queue from ${sql(t.pausedQueues)}
    )
    select q.queue, p.queue is not null as paused, p.paused_at,
      coalesce(sum(k.pending), 0)::int8 as pending,
      coalesce(sum(k.scheduled), 0)::int8 as scheduled,
      coalesce(sum(k.active), 0)::int8 as active,
      coalesce(greatest(0, extract(epoch from now() - min(k.oldest_due))), 0)::float8 as oldest_pending_age_seconds,
      coalesce(sum(k.succeeded_last_minute), 0)::int8 as succeeded_last_minute,
      coalesce(sum(k.failed_last_minute), 0)::int8 as failed_last_minute,
      coalesce(sum(k.succeeded_last_hour), 0)::int8 as succeeded_last_hour,
      coalesce(sum(k.failed_last_hour), 0)::int8 as failed_last_hour,
      coalesce(json_agg(json_build_object(
        'kind', k.kind, 'pending', k.pending, 'scheduled', k.scheduled, 'active', k.active,
        'succeeded_last_hour', k.succeeded_last_hour, 'failed_last_hour', k.failed_last_hour
      ) order by k.kind) filter (where k.kind is not null), '[]') as kinds
    from queues q
    left join ${sql(t.pausedQueues)} p on p.queue = q.queue
    left join kinds k on k.queue = q.queue
    group by q.queue, p.queue, p.paused_at
    order by q.queue`)
}

/** Pauses a queue; pausing a paused queue keeps its first paused_at. */
export async function queuePause(sql: Sql, t: Tables, queue: string): Promise<QueueState> {
  const [row] = await sql<QueueState[]>`
    with added as (
      insert into ${sql(t.pausedQueues)} (queue) values (${queue})
      on conflict (queue) do nothing
      returning queue, paused_at
    )
    select queue, true as paused, paused_at from added
    union all
    select queue, true, paused_at from ${sql(t.pausedQueues)} where queue = ${queue}
    limit 1`
  if (!row) throw new Error(`pause of ${queue} answered no row`)
  return row
}

/**
 * Resumes a queue, and answers (when it was paused) the head of each kind's due
 * jobs in it, as hints for waiting claimers: a claimer sleeps until a job of its
 * kinds becomes pending, and a resume makes pending jobs claimable without
 * changing a row of them. Kinds are found by a skip scan of the claim index (one
 * probe per pending kind, not a read of the backlog); each kind's head is its
 * first due row in the resumed queue, past other queues' rows of the kind that
 * sort ahead (bounded by the pending backlog; a resume is a rare operator act).
 * Resuming a queue that is not paused changes nothing and answers no hints.
 */
export async function queueResume(sql: Sql, t: Tables, queue: string): Promise<JobChange[]> {
  return sql<JobChange[]>`
    with recursive resumed as (
      delete from ${sql(t.pausedQueues)} where queue = ${queue} returning queue
    ), kinds(kind) as (
      (select j.kind from ${sql(t.jobs)} j where j.status = 'pending' order by j.kind limit 1)
      union all
      select (
        select j.kind from ${sql(t.jobs)} j where j.status = 'pending' and j.kind > kinds.kind order by j.kind limit 1
      ) from kinds where kinds.kind is not null
    )
    select head.id, head.status, head.kind, head.queue
    from kinds cross join lateral (
      select j.id, j.status, j.kind, j.queue from ${sql(t.jobs)} j
      where j.status = 'pending' and j.kind = kinds.kind and j.queue = ${queue}
        and coalesce(j.scheduled_at, j.enqueued_at) <= now()
      order by j.priority desc, coalesce(j.scheduled_at, j.enqueued_at), j.id
      limit 1
    ) head
    where exists (select 1 from resumed)`
}
