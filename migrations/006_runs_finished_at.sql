-- Runs by when they ended, for GET /foreman/stats (retries per minute) and
-- GET /foreman/workers (runs finished in the last hour): both read a recent
-- window, and without it each read the whole run history. Partial: a running
-- run is not in it, so a claim and a heartbeat pay nothing for it; each run
-- that ends adds one entry (cost measured in docs/performance.md's issue 11
-- before/after).
create index {{prefix}}job_runs_finished_at_idx
  on {{prefix}}job_runs (finished_at)
  where finished_at is not null;
