-- History that never bloats the hot tables (issue 14). Finished jobs and their
-- runs move out of jobs/job_runs (which claims, heartbeats and the reaper touch)
-- into jobs_history/job_runs_history, partitioned by the day the job completed;
-- retention drops a whole day at a time. The move is a sweep (src/history/),
-- not part of the statement that ends a job, so complete, fail and cancel cost
-- what they cost before. Design and figures: docs/design/history.md.
--
-- The history tables have the hot tables' columns in the same order, so a move
-- is `insert … select *` from the deleted rows: a migration that adds a column
-- to jobs or job_runs adds it to its history table too (tests/history-*.test.ts
-- compares the two column lists).

create table {{prefix}}jobs_history (
  like {{prefix}}jobs including defaults including constraints,
  constraint {{prefix}}jobs_history_pkey primary key (id, completed_at)
) partition by range (completed_at);

-- A run moves with its job and lands in the job's day, so a day dropped by
-- retention takes the job and all its attempts together.
create table {{prefix}}job_runs_history (
  like {{prefix}}job_runs including defaults including constraints,
  job_completed_at timestamptz not null,
  constraint {{prefix}}job_runs_history_pkey primary key (id, job_completed_at)
) partition by range (job_completed_at);

-- The read routes' orders and filters, as on the hot tables (each partition
-- gets its own copy of these).
create index {{prefix}}jobs_history_kind_id_idx on {{prefix}}jobs_history (kind, id);
create index {{prefix}}jobs_history_status_id_idx on {{prefix}}jobs_history (status, id);
create index {{prefix}}jobs_history_updated_at_idx on {{prefix}}jobs_history (updated_at, id);
create index {{prefix}}job_runs_history_job_id_idx on {{prefix}}job_runs_history (job_id, attempt);
create index {{prefix}}job_runs_history_finished_at_idx on {{prefix}}job_runs_history (finished_at);
-- GET /stats and GET /queues count the jobs that ended in a recent window: the
-- window prunes history to its days, and this index reads the window's rows
-- within them (without it, every row of those days). The hot table's
-- completed_at index serves the same reads there. History's writes are the
-- sweep's batched inserts, not a transition: no claim or completion pays for it.
create index {{prefix}}jobs_history_completed_at_idx on {{prefix}}jobs_history (completed_at);

-- Idempotency keys unique forever, across hot and history: a unique index cannot
-- span partitions unless it includes the partition key, and a key must stay
-- taken after its job leaves the hot table. Every enqueue with a forever key
-- (unique_while_active is null) claims its key here in the statement that inserts
-- the job; a job without a key pays nothing. Retention deletes the keys of the
-- jobs it drops.
create table {{prefix}}job_keys (
  kind            text not null,
  idempotency_key text not null,
  job_id          text not null,
  constraint {{prefix}}job_keys_pkey primary key (kind, idempotency_key)
);

insert into {{prefix}}job_keys (kind, idempotency_key, job_id)
select kind, idempotency_key, id
from {{prefix}}jobs
where idempotency_key is not null and unique_while_active is null;

-- Creates the day's partitions (UTC days) of both history tables unless they are there.
-- Instances call it side by side: the advisory lock makes them take turns, so
-- two never race to create the same table.
create function {{prefix}}history_ensure_day(day date) returns void language plpgsql as $$
declare
  suffix text := to_char(day, 'YYYYMMDD');
  lower_bound timestamptz := day::timestamp at time zone 'UTC';
  upper_bound timestamptz := (day + 1)::timestamp at time zone 'UTC';
begin
  perform pg_advisory_xact_lock(hashtext('{{prefix}}history_partitions'));
  execute format(
    'create table if not exists %I partition of %I for values from (%L) to (%L)',
    '{{prefix}}jobs_history_p' || suffix, '{{prefix}}jobs_history', lower_bound, upper_bound);
  execute format(
    'create table if not exists %I partition of %I for values from (%L) to (%L)',
    '{{prefix}}job_runs_history_p' || suffix, '{{prefix}}job_runs_history', lower_bound, upper_bound);
end
$$;
