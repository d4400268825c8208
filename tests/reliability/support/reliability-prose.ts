/** The words of docs/reliability.md around the figures (render-doc.ts lays out the numbers). */

/** Opening paragraph. */
export const INTRO = `Foreman's promise is that a job, once enqueued, ends exactly once (succeeded, failed or
cancelled) whatever happens to workers, servers and the database on the way. The fault suite
tests that promise against the real thing: Foreman as child processes (\`bun src/index.ts\`),
a real Postgres, workers on the real TypeScript client, faults injected under load, every
operation recorded, and one checker at the end. \`npm run test:reliability\` runs it at the
scale of issue 10 (under 15 minutes on a 2-core machine); \`npm test\` runs a reduced version of
every scenario (about two minutes of \`npm test\`).`

/** Per scenario (keyed by its file's number): what it does and what it proves. */
export const SCENARIO_TEXT: Record<string, string> = {
  s1: `Sixteen workers claim batches of a random size between 1 and 100 (\`POST /claims\`), handlers
fail at random (retryable with backoff 0, or permanently), completes go one by one or batched
(\`POST /runs/complete\`), and a canceller cancels recent jobs, pending or active, the whole
time. Proves: under concurrent claims of any batch size, every job ends exactly once, in the
state its history explains (a cancelled job was cancelled, a failed one used up its attempts
or failed permanently), with attempts counted correctly.`,
  s2: `Leases of 1–3 s; a fifth of the handlers overrun theirs without a heartbeat and complete
\`reaper interval + 1.5 s\` after the lease ran out, when the reaper has abandoned the run and
another worker may hold the job; the rest heartbeat every third of their lease. Proves: a late
complete answers 409 and changes nothing (the run stays abandoned, the job's result is the
winning run's), the reaper never takes a lease that is still live, and heartbeats keep leases.`,
  s3: `Worker processes run the client's own \`Worker\` class (concurrency 8, lease 3 s); one of
them is killed with SIGKILL every few seconds while it holds jobs, and a fresh one starts.
Proves: every job the dead worker held is pending again within lease + reaper interval + 1 s of
the kill (the bound is asserted per job) and succeeds on another worker.`,
  s4: `The Foreman process is killed with SIGKILL ten times in a minute under load and restarted
at once on the same port; then it gets SIGTERM under load. Producers and workers ride through
(every job has an idempotency key; an outcome whose answer was lost is sent again). Proves: no
job is lost or made twice by a crash at any point of a request, a restart serves again within
about two seconds, and SIGTERM drains and exits 0 with no job left active without a live lease
(read straight from the tables the moment the process has exited).`,
  s5: `Three Foreman processes share one database (one table prefix); workers, producer and
canceller spread over them, a schedule \`@every 2s\` is fired by whichever instance's
scheduler (every 0.25 s) takes the tick, and a \`GET /events\` stream is open on each
instance. Proves: no job is claimed twice at once across instances, each schedule slot fires
exactly once (no slot twice, none skipped, all on the cadence), and every job's terminal
state reaches the subscribers of every instance, whichever instance made the change.`,
  s6: `A private Postgres (never the one other tests share) is stopped in immediate mode (SIGQUIT,
what \`pg_ctl stop -m immediate\` sends: no checkpoint, every connection dropped, crash recovery
on start), kept down a few seconds and started again on the same port, under load, with three
\`GET /events\` streams open and readyz polled every 100 ms. Proves: readiness answers 503 within seconds (bound 10 s), no request hangs
past its client's timeout (30 s, the TS client's default), service resumes without
restarting Foreman (bound: readyz 200 and a complete accepted within 10 s of Postgres accepting
connections), nothing is lost or duplicated, and events flow again on every stream that was
open across the outage.`,
}

/** How the suite is built and what the checker checks. */
export const HOW_IT_WORKS = `## How it works

- **Processes.** Each scenario starts Foreman with \`bun src/index.ts\` on a port chosen up front
  (so a restart comes back at the same address), its own table prefix on the test Postgres
  (scenario 6: a Postgres of its own), a reaper every 0.5 s. Worker processes (scenario 3) run
  \`tests/reliability/support/worker-main.ts\`; elsewhere workers run inside the test process.
  Every child is killed in \`afterAll\` and on exit.
- **Recorder.** Every operation is recorded with its time: enqueue (job, key), claim (run,
  attempt, worker, lease), heartbeat (answer, new lease, server time), handler start and
  finish, complete and fail (every try, with its answer: 200, 409, 5xx, or none), cancel, and
  each injected fault. Worker processes append the same records to a file each with one
  \`write(2)\` per record, so a kill -9 loses at most the record being written.
- **Checker** (\`tests/reliability/support/checker.ts\`, with its own test). From the records
  and the final tables: every enqueued job is in a terminal state (none lost); one job per
  idempotency key and no job nobody enqueued (none duplicated, none unexpected); at most one
  succeeded run, and a succeeded job's last run is that run and its result that run's; runs
  are attempts 1..n and each began only after the one before ended, or, for a run the reaper
  abandoned, after its last live lease (recorded from the claim and heartbeat answers) ran out;
  no run was abandoned before its live lease ran out; no heartbeat was accepted after the
  next run started; claims of a job come in increasing attempts; every 200 from complete or
  fail changed the run, and no 409 did; every succeeded job's handler ran to completion in the
  succeeded run; a cancelled job was cancelled by someone; a failed one used up its attempts or
  failed permanently; every run in the tables was handed to a recorded worker, unless it was
  abandoned (a claim whose answer was lost when the server died).
- **No timing assertions** except the bounds the issue states: lease + reaper interval + 1 s
  (scenario 3), readiness 503 "within seconds" (10 s) and resuming service (10 s) in scenario 6.
- **Scale.** \`FOREMAN_FAULTS=full\` is the issue's scale; unset, each scenario runs a reduced
  version inside \`npm test\`. Full runs write \`bench/results/reliability/<scenario>.json\`.`

/** Defects the suite found, and where they stand. */
export const FINDINGS = `## Defects found

The full run above is on the final code of issue 10, with every finding below fixed. Each
finding's sequence and evidence are in the issue's note.

- **F1, fixed (6ec1899): service resumed 10–20 s after a Postgres restart.** postgres.js'
  default reconnect backoff (a counter shared by the pool, \`3^n / 100\` s capped at 20 s)
  climbed during the outage, and connections then slept that long once Postgres was back.
  Before the fix, scenario 6 measured 8–14 s from Postgres accepting connections to the
  first accepted complete and requests of up to 21 s; after it (backoff at most 1 s, connects
  time out after 5 s), at most {MAX_RESUME}, and no request over 5 s.
- **F2, fixed (c58a357): a database outage answered 500.** It now answers \`503 database
  unavailable\` with \`Retry-After\`, and the TS client retries idempotent calls on it; these are
  the 503s in the table.
- **F3, fixed (7460af4, 431ccbd): a request sent during an outage went unanswered for 30 s.**
  postgres.js 3.4.9 can leave a query pending for good when a connection fails at certain
  moments (a server that closes during startup, a half-open connection, a query handed to a
  connection between its error and its close); and a close that overtook a pending write
  threw from a timer and ended the process. Every database call now has a deadline (10 s,
  then \`503\`), Foreman opens the client's sockets itself so a close reaches postgres.js in
  order, and stranded connections are closed so the pool recovers.
- **F4, fixed (same commits): an open \`GET /events\` stream went silent after a restart**,
  neither ended nor reset, while the other streams carried on: its replay query never
  settled. The deadline ends the replay, which runs again on the next safety poll.
- **F5, fixed: jobs that ended in the moments before a Postgres crash reached no stream.**
  The feed's re-read of them failed with the connection and the batch was dropped; the
  resync replays only from each stream's cursor, already past them. A failed re-read now
  keeps its batch for the next one (\`tests/events-feed-retry.test.ts\`).
- **F6, fixed (efca78a): after a restart, one stream could miss hundreds of jobs' ends**
  while the others got them (603 in the first full run of the final code). A replay after the
  re-listen holds live changes; past 1,000 it drops them and replays again from the stream's
  cursor, but after a restart a change can commit well behind the cursor. The next replay now
  starts at the oldest dropped change's version.
- Scenario 6 asserts the README's "delivery is at least once": every job's end reaches every
  stream open across the outages; \`terminalEventsMissedPerStream\` in its figures shows it.
- **Harness lesson, not a defect:** Postgres with \`synchronous_commit=off\` (the test
  preload's fast mode) loses acknowledged commits on an immediate shutdown; the checker caught
  completes answered 200 whose runs came back as running and were then abandoned. Scenario 6
  therefore runs its own Postgres durable.`
