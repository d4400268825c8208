-- Flow control (issue 12): a concurrency key per job (and per schedule) and
-- limits per kind. How claims enforce them: docs/design/flow-control.md.

alter table {{prefix}}jobs add column concurrency_key text;
alter table {{prefix}}jobs add constraint {{prefix}}jobs_concurrency_key_check
  check (concurrency_key is null or length(concurrency_key) between 1 and 200);
alter table {{prefix}}schedules add column concurrency_key text;
-- The same rule as on jobs: a schedule holding a key the jobs table refuses
-- would fail every fire.
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
