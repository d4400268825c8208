-- Recurring recipes that enqueue jobs. The scheduler takes due rows with
-- FOR UPDATE SKIP LOCKED from the partial index below.
create table {{prefix}}schedules (
  id            text        not null,
  kind          text        not null,
  queue         text        not null default 'default',
  service       text        not null default '',
  params        jsonb       not null default '{}'::jsonb,
  priority      integer     not null default 0,
  max_attempts  integer     not null default 1,
  cron_expr     text        not null,
  timezone      text        not null default 'UTC',
  enabled       boolean     not null default true,
  next_fire_at  timestamptz,
  last_fire_at  timestamptz,
  last_job_id   text,
  -- Why the scheduler disabled it (an expression that no longer parses), if it did.
  last_error    text,
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  constraint {{prefix}}schedules_pkey primary key (id),
  constraint {{prefix}}schedules_max_attempts_check check (max_attempts >= 1)
);

create index {{prefix}}schedules_due_idx
  on {{prefix}}schedules (next_fire_at)
  where enabled;
