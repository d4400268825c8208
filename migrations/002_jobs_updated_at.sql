-- The all-jobs event stream replays "what changed since" for reconnecting
-- clients (Last-Event-ID) and on its safety poll.
create index {{prefix}}jobs_updated_at_idx on {{prefix}}jobs (updated_at, id);
