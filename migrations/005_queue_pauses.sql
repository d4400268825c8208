-- Queues an operator paused (POST /foreman/queues/:queue/pause): one row per
-- paused queue, removed on resume. Every claim reads this table once per
-- statement (an InitPlan, src/runs/sql/claim.ts) and skips the queues in it, so
-- a pause holds on every instance the moment it commits.
create table {{prefix}}paused_queues (
  queue     text        not null,
  paused_at timestamptz not null default now(),
  constraint {{prefix}}paused_queues_pkey primary key (queue)
);
