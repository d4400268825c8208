-- Keep every hot read bounded by what it answers, not by how many jobs the
-- tables hold (bench/backlog.ts measures each; tests/hot-plans.test.ts keeps
-- the plan shapes).

-- Claim order by due time. A retry keeps its enqueued_at, so in the old index
-- (kind, priority desc, enqueued_at, id) every job waiting out a backoff sat at
-- the head, and each claim filtered past all of them (100k in backoff: 30 ms a
-- claim, "Rows Removed by Filter: 100000"). Ordered by when a job became due,
-- the not-yet-due rows sort after every due row of their priority.
drop index {{prefix}}jobs_claim_idx;
create index {{prefix}}jobs_claim_idx
  on {{prefix}}jobs (kind, priority desc, (coalesce(scheduled_at, enqueued_at)), id)
  where status = 'pending';

-- The next-due lookup of a waiting claimer (when does the earliest scheduled job
-- or retry come due?). Only rows with a scheduled_at enter it, so a plain
-- enqueue pays nothing for it.
create index {{prefix}}jobs_scheduled_idx
  on {{prefix}}jobs (kind, scheduled_at)
  where status = 'pending' and scheduled_at is not null;

-- Filtered job lists (GET /jobs?status=…, ?kind=…), newest first. Without them a
-- rare filter walked the primary key through the whole table. Each is in list
-- order, so a page reads its own rows (and the dead entries among them) and
-- stops; a bitmap over one (status, kind, id) index read every entry of the
-- status. Lists are planned for their values (src/jobs/sql.ts), so the partial
-- index serves exactly the statuses it holds.
--
-- Every index on jobs is written by each transition (a status change is never a
-- HOT update), so the status index leaves out the two statuses most jobs pass
-- through and most rows hold: pending (every enqueue) and succeeded (every
-- completion). Those lists walk the primary key, where such rows are plentiful.
-- (Both list indexes in full cost bulk enqueue ~25% more database CPU per job,
-- 32–37 µs against 25–28 µs without them.)
create index {{prefix}}jobs_status_id_idx on {{prefix}}jobs (status, id)
  where status in ('active', 'failed', 'cancelled');
create index {{prefix}}jobs_kind_id_idx on {{prefix}}jobs (kind, id);

-- The running-run indexes say "running" by their lease (equivalent: the table's
-- check ties status = 'running' to a lease being set). Keyed on status, they
-- matched every statement that re-checks `status = 'running'` on a run it found
-- by id, and generic plans then AND-ed a bitmap over every running entry (dead
-- ones included, 20,000 after a burst) with the primary key, for a batch complete
-- of 50. Statements that want all running runs ask for a lease; the ones that
-- re-check status use the primary key alone.
drop index {{prefix}}job_runs_one_running_key;
create unique index {{prefix}}job_runs_one_running_key
  on {{prefix}}job_runs (job_id)
  where lease_expires_at is not null;
drop index {{prefix}}job_runs_lease_idx;
create index {{prefix}}job_runs_lease_idx
  on {{prefix}}job_runs (lease_expires_at)
  where lease_expires_at is not null;
