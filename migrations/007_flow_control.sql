-- Flow control (issue 12): a concurrency key per job (and per schedule) and
-- limits per kind. How claims enforce them: docs/design/flow-control.md.

-- A key is 1–200 characters. The API checks it on every route that takes one;
-- the jobs table does not: a fifth CHECK on that table cost each enqueue
-- about 8% more Postgres CPU (one insert statement against another, in one
-- process, alternating rounds). Schedules keep theirs (rare writes).
alter table {{prefix}}jobs add column concurrency_key text;
alter table {{prefix}}schedules add column concurrency_key text;
alter table {{prefix}}schedules add constraint {{prefix}}schedules_concurrency_key_check
  check (concurrency_key is null or length(concurrency_key) between 1 and 200);

-- Limits per kind; a null column is no limit of that sort. Rates are sliding
-- windows: at most `rate_limit` claims in any `rate_seconds`.
create table {{prefix}}limits (
  kind                  text        not null,
  max_active            integer,
  max_active_per_key    integer,
  rate_limit            integer,
  rate_seconds          integer,
  rate_per_key_limit    integer,
  rate_per_key_seconds  integer,
  -- When the kind gained limits: for a minute after, the reaper marks jobs that
  -- instances enqueued before they heard of them (limits/stragglers-sql.ts).
  created_at            timestamptz not null default now(),
  updated_at            timestamptz not null default now(),
  constraint {{prefix}}limits_pkey primary key (kind),
  constraint {{prefix}}limits_positive_check check (
    coalesce(max_active, 0) >= 0 and coalesce(max_active_per_key, 0) >= 0
    and coalesce(rate_limit, 1) >= 1 and coalesce(rate_seconds, 1) >= 1
    and coalesce(rate_per_key_limit, 1) >= 1 and coalesce(rate_per_key_seconds, 1) >= 1),
  constraint {{prefix}}limits_rate_pair_check check (
    (rate_limit is null) = (rate_seconds is null)
    and (rate_per_key_limit is null) = (rate_per_key_seconds is null))
);

-- The kind-wide rate window: the newest claim times of the kind (at most
-- rate_limit of them, newest first), written by the limited claim under this
-- row's lock.
alter table {{prefix}}limits add column recent_claims timestamptz[] not null default '{}';

-- A job of a kind with limits goes through the limited claim; the flag is set at
-- enqueue (and by PUT /limits for the kind's live jobs) so the two indexes below
-- hold only such jobs and every other enqueue and claim writes neither. A
-- constant default adds the column without rewriting the table.
alter table {{prefix}}jobs add column flow_controlled boolean not null default false;

-- A key's claimable jobs in claim order. Jobs without a key form one group, ''
-- (a key cannot be empty), so they are found through the same index.
create index {{prefix}}jobs_flow_claim_idx
  on {{prefix}}jobs (kind, (coalesce(concurrency_key, '')), priority desc, (coalesce(scheduled_at, enqueued_at)), id)
  where status = 'pending' and flow_controlled;

-- A key's running jobs, counted (up to the limit) by the limited claim.
create index {{prefix}}jobs_flow_active_idx
  on {{prefix}}jobs (kind, (coalesce(concurrency_key, '')))
  where status = 'active' and flow_controlled;

-- One row per (kind, key) of a limited kind while the key has live jobs: the
-- claim locks it (SKIP LOCKED) before counting the key's running jobs, so two
-- claimers never both see the same free slot, and serves keys in the order of
-- last_served_at (round-robin). recent_claims is the key's rate window.
create table {{prefix}}flow_slots (
  kind            text          not null,
  key             text          not null,
  last_served_at  timestamptz,
  recent_claims   timestamptz[] not null default '{}',
  constraint {{prefix}}flow_slots_pkey primary key (kind, key)
);
create index {{prefix}}flow_slots_turn_idx
  on {{prefix}}flow_slots (kind, last_served_at nulls first, key);
