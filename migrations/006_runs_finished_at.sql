-- Runs by when they ended, for GET /foreman/stats (retries per minute) and
-- GET /foreman/workers (runs finished in the last hour): both read a recent
-- window, and without it each read the whole run history. Partial: a running
-- run is not in it, so a claim and a heartbeat pay nothing for it; each run
-- that ends adds one entry: a complete wrote 1,090 bytes of WAL with it against
-- 1,026 without (+6%, 1,000 completes each way, twice). The process benchmark
-- (62de235 → this, 3 and 5 rounds on a shared machine at load 4–14) could not
-- tell the two apart: its identical load generator's CPU moved as much (±15%).
create index {{prefix}}job_runs_finished_at_idx
  on {{prefix}}job_runs (finished_at)
  where finished_at is not null;
