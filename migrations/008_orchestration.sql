-- Orchestration (issue 13): dependencies between jobs, uniqueness while active,
-- time to live and run timeouts. How each transition uses these columns:
-- docs/design/orchestration.md. Every column is nullable without a default, so
-- adding it rewrites nothing and a job that uses none of it stores nulls only.

-- A job with dependencies is `waiting` until every one has succeeded.
alter table {{prefix}}jobs drop constraint {{prefix}}jobs_status_check;
alter table {{prefix}}jobs add constraint {{prefix}}jobs_status_check
  check (status in ('waiting', 'pending', 'active', 'succeeded', 'failed', 'cancelled'));

-- Why a job ended without a run to say so: "dependency <id> <status>", "expired".
alter table {{prefix}}jobs add column error text;

-- The edges live on both ends, as arrays on the job rows. depends_on (what this
-- job waits for) never changes after the insert. dependents (what waits on this
-- job) is appended to by the enqueue of each dependent, under the row lock that
-- every completion of this job also takes: so the statement that ends the job
-- reads the list as it stands when it ends it, never an older snapshot of it.
-- waiting_on counts the dependencies that have not yet succeeded; each one that
-- succeeds decrements it on the locked dependent row, so exactly one statement
-- sees it reach 0 and moves the job to pending.
alter table {{prefix}}jobs add column depends_on text[];
alter table {{prefix}}jobs add column dependents text[];
alter table {{prefix}}jobs add column waiting_on integer;
-- 'run': a dependency that fails or is cancelled counts as done for this job
-- (a clean-up step); null: it cancels this job.
alter table {{prefix}}jobs add column on_dependency_failure text;

-- unique_while_active: such a job's idempotency_key is unique among its kind's
-- live jobs only (true here; null for every other job). The forever-unique index
-- of idempotency keys leaves these jobs out, so the two kinds of key never meet.
alter table {{prefix}}jobs add column unique_while_active boolean;
drop index {{prefix}}jobs_kind_idempotency_key_key;
create unique index {{prefix}}jobs_kind_idempotency_key_key
  on {{prefix}}jobs (kind, idempotency_key)
  where idempotency_key is not null and unique_while_active is null;
create unique index {{prefix}}jobs_kind_active_key_key
  on {{prefix}}jobs (kind, idempotency_key)
  where unique_while_active and status in ('waiting', 'pending', 'active');

-- Time to live: not claimed by then, cancelled with error "expired".
alter table {{prefix}}jobs add column expires_at timestamptz;
create index {{prefix}}jobs_expires_at_idx
  on {{prefix}}jobs (expires_at)
  where expires_at is not null and status in ('waiting', 'pending');

-- Run timeout: a run of the job older than this fails with "timed out".
alter table {{prefix}}jobs add column timeout_seconds integer;
create index {{prefix}}jobs_timeout_idx
  on {{prefix}}jobs (id)
  where timeout_seconds is not null and status = 'active';

-- GET /jobs?status=waiting reads its own index, as active, failed and cancelled do.
drop index {{prefix}}jobs_status_id_idx;
create index {{prefix}}jobs_status_id_idx on {{prefix}}jobs (status, id)
  where status in ('waiting', 'active', 'failed', 'cancelled');

-- What the end of a job does to the jobs waiting on it, in the statement that
-- ends it: a trigger, so every way a job ends (complete, batch complete and
-- hand-off, fail, cancel, bulk cancel, the reaper, expiry, run timeout) moves its
-- dependents with it, and a job without dependents pays one WHEN test per status
-- change, not a data-modifying CTE in every statement (which cost each complete
-- about 13% more Postgres CPU). It sends no NOTIFY (SPEC: NOTIFY comes from our
-- own SQL): the service announces the dependents once the statement has committed.
--
-- Each statement in the function reads a fresh snapshot, taken after the row that
-- fired it was locked: a dependent enqueued a moment before (its enqueue appended
-- it to `dependents` under that lock and committed) is visible to it.
--
-- succeeded: each waiting dependent's waiting_on counts down on its locked row;
--   the one statement that takes it to 0 makes it pending.
-- failed or cancelled: waiting dependents are cancelled, and theirs in turn (one
--   recursive statement, so a long chain nests no deeper than this), with
--   error "dependency <id> <status>"; a dependent with on_dependency_failure
--   'run' counts the failure as done instead. Each job cancelled here fires this
--   trigger once more, which finds its own dependents cancelled already and only
--   counts down its 'run' dependents.
-- A released job of a kind with limits gets its key's slot row back (the limited
-- claim drops the row of a key whose jobs are all waiting).
create function {{prefix}}jobs_dependents_settle() returns trigger language plpgsql as $$
begin
  if new.status <> 'succeeded' then
    with recursive doomed(id, cause) as (
      select d.id, 'dependency ' || new.id || ' ' || new.status
      from unnest(new.dependents) as x(id) join {{prefix}}jobs d on d.id = x.id
      where d.status = 'waiting' and d.on_dependency_failure is null
      union
      select d.id, 'dependency ' || p.id || ' cancelled'
      from doomed p
      join {{prefix}}jobs pj on pj.id = p.id
      cross join unnest(pj.dependents) as x(id)
      join {{prefix}}jobs d on d.id = x.id
      where pj.dependents is not null and d.status = 'waiting' and d.on_dependency_failure is null
    )
    update {{prefix}}jobs d set
      status = 'cancelled', error = dd.cause, completed_at = now(),
      updated_at = greatest(now(), d.updated_at + interval '1 microsecond')
    from (select distinct on (id) id, cause from doomed order by id, cause) dd
    where d.id = dd.id and d.status = 'waiting';
  end if;
  -- What is left waiting on this job counts it down: every dependent when it
  -- succeeded, the 'run' ones when it failed or was cancelled.
  with released as (
    update {{prefix}}jobs d set
      waiting_on = d.waiting_on - c.n,
      status = case when d.waiting_on <= c.n then 'pending' else d.status end,
      updated_at = greatest(now(), d.updated_at + interval '1 microsecond')
    from (select x.id, count(*)::int as n from unnest(new.dependents) as x(id) group by x.id) c
    where d.id = c.id and d.status = 'waiting'
      and (new.status = 'succeeded' or d.on_dependency_failure = 'run')
    returning d.kind, d.concurrency_key, d.status, d.flow_controlled
  )
  insert into {{prefix}}flow_slots (kind, key)
  select distinct kind, coalesce(concurrency_key, '') from released
  where status = 'pending' and flow_controlled
  order by 1, 2
  on conflict (kind, key) do update set kind = excluded.kind where false;
  return null;
end
$$;

create trigger {{prefix}}jobs_dependents_settle
  after update of status on {{prefix}}jobs
  for each row
  when (new.dependents is not null and old.status is distinct from new.status
        and new.status in ('succeeded', 'failed', 'cancelled'))
  execute function {{prefix}}jobs_dependents_settle();
