-- Jobs and their runs. Every name carries {{prefix}} so several Foremans can
-- share one database; ids are app-generated ULIDs (no sequences).

create table {{prefix}}jobs (
  id               text        not null,
  kind             text        not null,
  queue            text        not null default 'default',
  service          text        not null default '',
  idempotency_key  text,
  params           jsonb       not null default '{}'::jsonb,
  priority         integer     not null default 0,
  max_attempts     integer     not null default 1,
  scheduled_at     timestamptz,
  status           text        not null default 'pending',
  cancel_requested boolean     not null default false,
  attempt_count    integer     not null default 0,
  result           jsonb,
  enqueued_at      timestamptz not null default now(),
  started_at       timestamptz,
  completed_at     timestamptz,
  updated_at       timestamptz not null default now(),
  constraint {{prefix}}jobs_pkey primary key (id),
  constraint {{prefix}}jobs_status_check
    check (status in ('pending', 'active', 'succeeded', 'failed', 'cancelled')),
  constraint {{prefix}}jobs_max_attempts_check check (max_attempts >= 1),
  constraint {{prefix}}jobs_attempt_count_check check (attempt_count >= 0),
  constraint {{prefix}}jobs_completed_at_check
    check ((status in ('succeeded', 'failed', 'cancelled')) = (completed_at is not null))
);

-- Idempotent enqueue: one job per (kind, idempotency_key). Partial, so jobs
-- without a key cost the index nothing.
create unique index {{prefix}}jobs_kind_idempotency_key_key
  on {{prefix}}jobs (kind, idempotency_key)
  where idempotency_key is not null;

-- Serves the claim: only pending rows are in it, in claim order per kind, so a
-- claim never walks finished jobs however many the table holds.
create index {{prefix}}jobs_claim_idx
  on {{prefix}}jobs (kind, priority desc, enqueued_at, id)
  where status = 'pending';

-- Retention deletes terminal jobs by age.
create index {{prefix}}jobs_completed_at_idx
  on {{prefix}}jobs (completed_at)
  where completed_at is not null;

create table {{prefix}}job_runs (
  id               text        not null,
  job_id           text        not null,
  attempt          integer     not null,
  worker_id        text        not null,
  status           text        not null default 'running',
  lease_expires_at timestamptz,
  progress_current bigint,
  progress_total   bigint,
  progress_message text,
  result           jsonb,
  error            text,
  started_at       timestamptz not null default now(),
  finished_at      timestamptz,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  constraint {{prefix}}job_runs_pkey primary key (id),
  constraint {{prefix}}job_runs_job_id_fkey
    foreign key (job_id) references {{prefix}}jobs (id) on delete cascade,
  constraint {{prefix}}job_runs_job_id_attempt_key unique (job_id, attempt),
  constraint {{prefix}}job_runs_status_check
    check (status in ('running', 'succeeded', 'failed', 'abandoned')),
  constraint {{prefix}}job_runs_lease_check
    check ((status = 'running') = (lease_expires_at is not null)),
  constraint {{prefix}}job_runs_finished_at_check
    check ((status = 'running') = (finished_at is null))
);

-- At most one running run per job, enforced by the database.
create unique index {{prefix}}job_runs_one_running_key
  on {{prefix}}job_runs (job_id)
  where status = 'running';

-- Serves the reaper: running runs by lease expiry.
create index {{prefix}}job_runs_lease_idx
  on {{prefix}}job_runs (lease_expires_at)
  where status = 'running';
