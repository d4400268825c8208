/** Schemas (and their types) for jobs and their runs: what the API accepts and answers. */
import { t } from 'elysia'
import { InvalidInput } from '../errors'
import {
  JsonValue,
  Limit,
  Name,
  Nullable,
  OneOf,
  PrefixedId,
  StrictBoolean,
  StrictInteger,
  StrictNumber,
  Timestamp,
} from '../http/schema'

export const JOB_STATUSES = ['waiting', 'pending', 'active', 'succeeded', 'failed', 'cancelled'] as const
export const RUN_STATUSES = ['running', 'succeeded', 'failed', 'abandoned'] as const

const TERMINAL_STATUSES: ReadonlySet<string> = new Set(['succeeded', 'failed', 'cancelled'])
/** True for the job statuses nothing moves on from: succeeded, failed, cancelled. */
export const isTerminal = (status: string) => TERMINAL_STATUSES.has(status)

/** A job's lifecycle status. */
export const JobStatus = OneOf(JOB_STATUSES)
/** A run's lifecycle status. */
export const RunStatus = OneOf(RUN_STATUSES)

/** `job_` + ULID. */
export const JobId = PrefixedId('job_', 'Job')
/** `run_` + ULID. */
export const RunId = PrefixedId('run_', 'Run')

/** One attempt at a job: the immutable audit trail. */
export const Run = t.Object({
  id: RunId,
  job_id: JobId,
  attempt: t.Integer({ description: '1-based attempt number' }),
  worker_id: t.String(),
  status: RunStatus,
  lease_expires_at: Nullable(Timestamp),
  progress_current: Nullable(t.Number()),
  progress_total: Nullable(t.Number()),
  progress_message: Nullable(t.String()),
  result: JsonValue('What the worker reported'),
  error: Nullable(t.String()),
  started_at: Timestamp,
  finished_at: Nullable(Timestamp),
  created_at: Timestamp,
  updated_at: Timestamp,
})
export type Run = typeof Run.static

/** Longest concurrency key (migrations/007 checks the same). */
export const MAX_CONCURRENCY_KEY = 200

/** A job's concurrency key as a body field: what flow-control limits count per key (e.g. a customer id). */
export const ConcurrencyKey = (description: string) =>
  t.Optional(Nullable(t.String({ minLength: 1, maxLength: MAX_CONCURRENCY_KEY, description })))

/** Most dependencies one job may have (`depends_on`). */
export const MAX_DEPENDENCIES = 1000

/** A job a job depends on, as the dependent (its claim, GET /jobs/:id) sees it: enough to join results. */
export const Dependency = t.Object({
  id: JobId,
  kind: t.String(),
  status: JobStatus,
  result: JsonValue("The dependency's result (its winning run's)"),
})
export type Dependency = typeof Dependency.static

/** A unit of work and its overall outcome. */
export const Job = t.Object({
  id: JobId,
  kind: t.String(),
  queue: t.String(),
  service: t.String(),
  idempotency_key: Nullable(t.String()),
  concurrency_key: Nullable(t.String({ description: 'What per-key limits count this job under; null when none' })),
  params: JsonValue('What the producer passed'),
  priority: t.Integer(),
  max_attempts: t.Integer(),
  scheduled_at: Nullable(Timestamp),
  status: JobStatus,
  cancel_requested: t.Boolean(),
  attempt_count: t.Integer(),
  result: JsonValue("The winning run's result"),
  enqueued_at: Timestamp,
  started_at: Nullable(Timestamp),
  completed_at: Nullable(Timestamp),
  updated_at: Timestamp,
  error: Nullable(
    t.String({
      description:
        'Why the job ended without a run saying so: `dependency <id> <status>` (a dependency failed or was cancelled) or `expired`; null otherwise',
    }),
  ),
  expires_at: Nullable(Timestamp),
  timeout_seconds: Nullable(t.Integer({ description: 'A run longer than this fails with "timed out"' })),
  current_run: t.Optional(Nullable(Run)),
  dependencies: t.Optional(t.Array(Dependency, { description: 'The jobs this one depends on, with their results' })),
})
export type Job = typeof Job.static

/** POST /jobs. */
export const EnqueueBody = t.Object({
  kind: Name('What kind of work this is; workers claim by kind'),
  queue: t.Optional(Name('Queue name', 1)),
  service: t.Optional(t.String({ maxLength: 200, description: 'Producing service' })),
  idempotency_key: t.Optional(
    Nullable(t.String({ minLength: 1, maxLength: 512, description: 'At most one job per (kind, idempotency_key)' })),
  ),
  concurrency_key: ConcurrencyKey(
    `Groups jobs for per-key limits (PUT /limits/:kind), e.g. a customer id (1–${MAX_CONCURRENCY_KEY} characters)`,
  ),
  params: t.Optional(JsonValue('Anything the worker needs (JSON)')),
  priority: t.Optional(StrictInteger(-1_000_000, 1_000_000, 'Higher is claimed first')),
  max_attempts: t.Optional(StrictInteger(1, 1000, 'Attempts before the job fails for good (default 1)')),
  scheduled_at: t.Optional(Nullable(t.String({ format: 'date-time', description: 'Not claimable before this time' }))),
  depends_on: t.Optional(
    t.Array(t.String({ minLength: 1, maxLength: 200 }), {
      maxItems: MAX_DEPENDENCIES,
      description: `Job ids (in a batch, also \`ref\`s of the same batch) this job waits for: it stays \`waiting\` until all have succeeded (at most ${MAX_DEPENDENCIES})`,
    }),
  ),
  on_dependency_failure: t.Optional(
    OneOf(
      ['cancel', 'run'] as const,
      'When a dependency fails or is cancelled: cancel this job (default) or run it anyway (a clean-up step)',
    ),
  ),
  unique_while_active: t.Optional(
    StrictBoolean(
      "The idempotency_key is unique only among this kind's waiting, pending and active jobs: once the earlier job has ended, the key can be used again",
    ),
  ),
  debounce_seconds: t.Optional(
    StrictNumber(
      0,
      86_400,
      'With an idempotency_key: while the job holding the key is pending and not yet due, replace its params and move it to now + this many seconds (answers 200 with `debounced: true`)',
    ),
  ),
  expires_in_seconds: t.Optional(
    StrictNumber(0.001, 31_536_000, 'Cancel the job with error "expired" if no worker has claimed it by then'),
  ),
  timeout_seconds: t.Optional(
    StrictInteger(1, 604_800, 'A run longer than this fails with error "timed out" (retried as any failure)'),
  ),
  wait_seconds: t.Optional(
    StrictNumber(0, 30, 'Hold the answer until the job is terminal or this many seconds pass (default 0)'),
  ),
})
export type EnqueueBody = typeof EnqueueBody.static

/** Most jobs one POST /jobs/batch may carry. */
export const MAX_ENQUEUE_BATCH = 1000

/** One job of POST /jobs/batch: the body of POST /jobs without `wait_seconds` (a batch answers at once), plus `ref`. */
export const EnqueueBatchItem = t.Composite([
  t.Omit(EnqueueBody, ['wait_seconds']),
  t.Object({
    ref: t.Optional(
      t.String({
        minLength: 1,
        maxLength: 200,
        pattern: '^(?!job_)',
        description:
          "This job's name within the batch, for other items' `depends_on` (unique in the batch; not `job_…`)",
      }),
    ),
  }),
])
export type EnqueueBatchItem = typeof EnqueueBatchItem.static

/** POST /jobs/batch. */
export const EnqueueBatchBody = t.Object({
  jobs: t.Array(EnqueueBatchItem, {
    minItems: 1,
    maxItems: MAX_ENQUEUE_BATCH,
    description: `The jobs to enqueue (1–${MAX_ENQUEUE_BATCH}), each as the body of POST /jobs without wait_seconds`,
  }),
})
export type EnqueueBatchBody = typeof EnqueueBatchBody.static

/** One job of a batch enqueue: the stored job, and whether this item created it. */
export const EnqueueOutcome = t.Object({
  created: t.Boolean({
    description: 'False when the idempotency key already held the job (stored, or earlier in the batch)',
  }),
  debounced: t.Optional(t.Boolean({ description: 'True when debounce_seconds moved the job holding the key' })),
  job: Job,
})
export type EnqueueOutcome = typeof EnqueueOutcome.static

/** The answer of POST /jobs/batch: one outcome per job, in input order. */
export const EnqueueBatchResult = t.Object({
  jobs: t.Array(EnqueueOutcome),
  refs: t.Optional(t.Record(t.String(), JobId, { description: 'Each `ref` of the batch and the id of its job' })),
})
export type EnqueueBatchResult = typeof EnqueueBatchResult.static

/**
 * Refuses `wait_seconds` on a batch item with a 400 naming it. Elysia drops fields
 * a schema does not list, so without this a producer asking to wait would silently
 * get an answer at once. Runs before validation: the body may be any shape.
 */
export function refuseWaitInBatch(body: unknown): void {
  const jobs = (body as { jobs?: unknown } | null)?.jobs
  if (!Array.isArray(jobs)) return
  const at = jobs.findIndex((j) => j !== null && typeof j === 'object' && 'wait_seconds' in j)
  if (at >= 0) {
    throw new InvalidInput(`jobs.${at}.wait_seconds`, 'is not accepted in a batch (POST /jobs can wait for one job)')
  }
}

/** GET /jobs filters. */
export const JobListQuery = t.Object({
  status: t.Optional(JobStatus),
  kind: t.Optional(t.String({ maxLength: 200 })),
  service: t.Optional(t.String({ maxLength: 200 })),
  queue: t.Optional(t.String({ maxLength: 200 })),
  limit: Limit,
  cursor: t.Optional(JobId),
  include: t.Optional(t.Literal('current_run')),
  params: t.Optional(
    t.String({
      maxLength: 4096,
      description: 'A JSON object the job\'s params must contain (`params @> value`), e.g. `{"customer":42}`',
    }),
  ),
})
export type JobListQuery = typeof JobListQuery.static

/** `?include=current_run` on single-job reads. */
export const IncludeQuery = t.Object({ include: t.Optional(t.Literal('current_run')) })

/** The 409 answer to a duplicate enqueue: the job that already holds the key. */
export const DuplicateJob = t.Object({ error: t.String(), job: Job })

/** The 200 answer to a debounced enqueue: the live job holding the key, moved, and `debounced: true`. */
export const DebouncedJob = t.Composite([
  Job,
  t.Object({ debounced: t.Literal(true, { description: 'debounce_seconds moved this job (it was not created)' }) }),
])

/** DELETE /jobs/:id: the id of the job removed. */
export const JobDeleted = t.Object({ id: JobId })
export type JobDeleted = typeof JobDeleted.static

/** What POST /jobs/bulk can do to each job it matches. */
export const BULK_ACTIONS = ['cancel', 'retry', 'delete'] as const
export type BulkAction = (typeof BULK_ACTIONS)[number]

/** Most jobs one bulk call moves, and most ids it takes. */
export const MAX_BULK = 10_000

/** A JSON object (not an array, not null). */
const JsonObject = (description: string) => t.Record(t.String(), t.Unknown(), { description })

/** Which jobs a bulk call acts on; every field narrows. Unknown fields are refused (refuseLooseBulkBody). */
export const BulkFilter = t.Object(
  {
    status: t.Optional(JobStatus),
    kind: t.Optional(t.String({ maxLength: 200 })),
    queue: t.Optional(t.String({ maxLength: 200 })),
    service: t.Optional(t.String({ maxLength: 200 })),
    params: t.Optional(JsonObject("A JSON object the job's params must contain (`params @> value`)")),
  },
  { description: 'Jobs matching every given field ({} matches every job)' },
)
export type BulkFilter = typeof BulkFilter.static

/** POST /jobs/bulk. Unknown fields are refused (refuseLooseBulkBody). */
export const BulkBody = t.Object({
  action: OneOf(
    BULK_ACTIONS,
    'cancel (pending, or active not yet cancel-requested), retry (failed or cancelled), delete (succeeded, failed or cancelled)',
  ),
  filter: t.Optional(BulkFilter),
  ids: t.Optional(t.Array(JobId, { maxItems: MAX_BULK, description: `Job ids (at most ${MAX_BULK})` })),
  limit: t.Optional(StrictInteger(1, MAX_BULK, `Most jobs this call acts on (default ${MAX_BULK})`)),
  dry_run: t.Optional(StrictBoolean('Change nothing; answer how many jobs match (up to limit) and `more`')),
})
export type BulkBody = typeof BulkBody.static

const BULK_FIELDS: ReadonlySet<string> = new Set(Object.keys(BulkBody.properties))
const BULK_FILTER_FIELDS: ReadonlySet<string> = new Set(Object.keys(BulkFilter.properties))

/**
 * Refuses, with a 400 naming it, a bulk body field or filter field the schema
 * does not list, and filter params that are not a JSON object. Elysia drops
 * unknown fields before validating, so `{"dryrun": true}` would act for real and
 * `{"filter": {"stauts": "failed"}}` on every job; and its record schema lets an
 * array through. Runs before validation: the body may be any shape.
 */
export function refuseLooseBulkBody(body: unknown): void {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return
  const unknown = Object.keys(body).find((key) => !BULK_FIELDS.has(key))
  if (unknown !== undefined) throw new InvalidInput(unknown, 'is not a field of a bulk action')
  const filter = (body as { filter?: unknown }).filter
  if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) return
  const unknownFilter = Object.keys(filter).find((key) => !BULK_FILTER_FIELDS.has(key))
  if (unknownFilter !== undefined) {
    throw new InvalidInput(
      `filter.${unknownFilter}`,
      `is not a filter (filters: ${[...BULK_FILTER_FIELDS].join(', ')})`,
    )
  }
  const params = (filter as { params?: unknown }).params
  if (params !== undefined && (params === null || typeof params !== 'object' || Array.isArray(params))) {
    throw new InvalidInput('filter.params', 'must be a JSON object such as {"customer":42}')
  }
}

/** The answer of POST /jobs/bulk. */
export const BulkResult = t.Object({
  matched: t.Integer({ description: 'Jobs the action applied to when the call read them (at most limit)' }),
  changed: t.Integer({
    description:
      'Jobs it moved (0 on a dry run); a matched job another statement held at that moment is left for the next call',
  }),
  more: t.Boolean({ description: 'Matching jobs remain: repeat the call until this is false' }),
})
export type BulkResult = typeof BulkResult.static
