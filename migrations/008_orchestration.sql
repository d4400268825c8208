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
