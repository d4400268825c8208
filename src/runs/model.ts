/** Schemas for the worker side: claim, heartbeat, complete, fail, and run listings. */
import { t } from 'elysia'
import { JsonValue, Limit, Name, StrictBoolean, StrictInteger, StrictNumber } from '../http/schema'
import { Job, JobId, Run, RunId, RunStatus } from '../jobs/model'

/** Longest lease a worker may ask for (one day). */
export const MAX_LEASE_SEC = 86_400
/** Longest long-poll wait on claim and enqueue. */
export const MAX_WAIT_SEC = 30
/** Longest explicit retry backoff (30 days). */
export const MAX_BACKOFF_SEC = 30 * 86_400

const LeaseSeconds = StrictInteger(1, MAX_LEASE_SEC, 'Lease length in seconds (default FOREMAN_DEFAULT_LEASE_SEC)')
const WorkerId = Name('The worker holding (or asking for) the lease')

/** POST /claim and /jobs/claim. */
export const ClaimBody = t.Object({
  kinds: t.Array(Name('A job kind'), { minItems: 1, maxItems: 100, description: 'Kinds this worker handles' }),
  worker_id: WorkerId,
  queues: t.Optional(t.Array(Name('A queue name'), { minItems: 1, maxItems: 100, description: 'Only these queues' })),
  lease_seconds: t.Optional(LeaseSeconds),
  wait_seconds: t.Optional(
    StrictNumber(
      0,
      MAX_WAIT_SEC,
      'When nothing is claimable, wait up to this long for work (default 0: answer 204 now)',
    ),
  ),
})
export type ClaimBody = typeof ClaimBody.static

/** A successful claim: the job (now active) and the run that holds it. */
export const Claimed = t.Object({ job: Job, run: Run })
export type Claimed = typeof Claimed.static

/** Most jobs one batch claim or runs one batch complete may address. */
export const MAX_BATCH = 100

/** POST /claims: the claim body plus how many jobs to take at most. */
export const ClaimManyBody = t.Composite([
  ClaimBody,
  t.Object({ max_jobs: StrictInteger(1, MAX_BATCH, `Claim up to this many jobs (1–${MAX_BATCH})`) }),
])
export type ClaimManyBody = typeof ClaimManyBody.static

/** Progress is a count; a double holds it exactly up to 2^53. */
const Progress = (description: string) => t.Optional(StrictInteger(0, Number.MAX_SAFE_INTEGER, description))

/** Heartbeat body. */
export const HeartbeatBody = t.Object({
  worker_id: WorkerId,
  progress_current: Progress('Units done so far'),
  progress_total: Progress('Units in all'),
  progress_message: t.Optional(t.String({ maxLength: 10_000, description: 'Free-form status line' })),
  lease_seconds: t.Optional(LeaseSeconds),
})
export type HeartbeatBody = typeof HeartbeatBody.static

/** Heartbeat answer: the run as it now stands plus the job's cancel flag. */
export const HeartbeatResult = t.Composite([Run, t.Object({ cancel_requested: t.Boolean() })])
export type HeartbeatResult = typeof HeartbeatResult.static

/** Complete body. */
export const CompleteBody = t.Object({
  worker_id: WorkerId,
  result: t.Optional(JsonValue('The outcome (JSON), copied onto the job')),
})
export type CompleteBody = typeof CompleteBody.static

/** POST /runs/complete: several held runs completed in one statement. */
export const CompleteManyBody = t.Object({
  worker_id: WorkerId,
  runs: t.Array(
    t.Object({
      run_id: RunId,
      result: t.Optional(JsonValue('The outcome (JSON), copied onto the job')),
    }),
    { minItems: 1, maxItems: MAX_BATCH, description: `The runs to complete (1–${MAX_BATCH}, each once)` },
  ),
  claim: t.Optional(
    t.Object(
      {
        kinds: ClaimBody.properties.kinds,
        queues: ClaimBody.properties.queues,
        lease_seconds: ClaimBody.properties.lease_seconds,
        max_jobs: StrictInteger(0, MAX_BATCH, `Claim up to this many jobs (0–${MAX_BATCH}; 0 claims nothing)`),
      },
      {
        description:
          'Also claim the next jobs for worker_id in the same statement (no waiting): a worker hands back what it finished and takes new work in one round trip.',
      },
    ),
  ),
})
export type CompleteManyBody = typeof CompleteManyBody.static

/** One run's outcome in a batch complete: 200 with the job, or 404/409 with the reason. */
export const CompleteOutcome = t.Object({
  run_id: RunId,
  status: t.Union([t.Literal(200), t.Literal(404), t.Literal(409)], {
    description: '200 completed; 404 unknown run; 409 not running or held by another worker',
  }),
  job: t.Optional(Job),
  error: t.Optional(t.String({ description: 'Why the run was not completed' })),
})
export type CompleteOutcome = typeof CompleteOutcome.static

/** The answer of a batch complete, in input order. */
export const CompleteManyResult = t.Object({
  results: t.Array(CompleteOutcome),
  claimed: t.Optional(t.Array(Claimed, { description: 'With `claim`: the jobs claimed, best first (maybe none)' })),
})
export type CompleteManyResult = typeof CompleteManyResult.static

/** Fail body. */
export const FailBody = t.Object({
  worker_id: WorkerId,
  error: t.Optional(t.String({ maxLength: 100_000, description: 'What went wrong' })),
  retryable: t.Optional(StrictBoolean('Return to pending if attempts remain (default false)')),
  backoff_seconds: t.Optional(
    StrictNumber(0, MAX_BACKOFF_SEC, 'Delay before the retry; omitted = 2^attempt s (±20%, ≤1 h); 0 = at once'),
  ),
  result: t.Optional(JsonValue('Partial result, kept on the run')),
})
export type FailBody = typeof FailBody.static

/** GET /runs filters. */
export const RunListQuery = t.Object({
  status: t.Optional(RunStatus),
  worker_id: t.Optional(t.String({ maxLength: 200 })),
  job_id: t.Optional(JobId),
  kind: t.Optional(t.String({ maxLength: 200 })),
  limit: Limit,
  cursor: t.Optional(RunId),
})
export type RunListQuery = typeof RunListQuery.static

/** Which running run a worker call addresses: by its id, or as "the running run of this job". */
export type RunTarget = { runId: string } | { jobId: string }
