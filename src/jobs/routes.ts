/** HTTP controller for jobs: validate at the edge, call the service, shape the answer. */
import { Elysia, t } from 'elysia'
import type { Deps } from '../deps'
import { waitForTerminal } from '../events/service'
import { ErrorBody, Unchecked } from '../http/schema'
import { bulkAction, deleteJob, retryJob } from './actions'
import {
  BulkBody,
  BulkResult,
  DebouncedJob,
  DuplicateJob,
  EnqueueBatchBody,
  EnqueueBatchResult,
  EnqueueBody,
  IncludeQuery,
  Job,
  JobDeleted,
  JobId,
  JobListQuery,
  MAX_BULK,
  MAX_ENQUEUE_BATCH,
  Run,
  refuseLooseBulkBody,
  refuseWaitInBatch,
} from './model'
import { cancelJob, duplicateError, enqueueJob, enqueueJobs, getJob, listJobRuns, listJobs } from './service'

const JobParams = t.Object({ id: JobId })
const tags = ['jobs']

/** Routes under /jobs (the worker-side /jobs/:id/* actions live with runs). */
export const jobRoutes = (deps: Deps) =>
  new Elysia()
    .post(
      '/jobs',
      async ({ body, set, request }) => {
        const enqueued = await enqueueJob(deps, body)
        // With wait_seconds the answer (200, 201 or 409 alike) waits for the outcome.
        const job = await waitForTerminal(deps, enqueued.job, (body.wait_seconds ?? 0) * 1000, request.signal)
        if (enqueued.debounced) return { ...job, debounced: true as const }
        if (!enqueued.created) throw duplicateError(job)
        set.status = 201
        return job
      },
      {
        body: EnqueueBody,
        response: {
          200: Unchecked(DebouncedJob),
          201: Unchecked(Job),
          400: ErrorBody,
          409: DuplicateJob,
          413: ErrorBody,
        },
        detail: {
          tags,
          summary: 'Enqueue a job',
          description:
            'Creates a pending job (201). With an idempotency_key that already exists for this kind, creates nothing and answers 409 with the existing job. With `unique_while_active`, the key only has to be unique among this kind\'s `waiting`, `pending` and `active` jobs: once the job holding it has ended, the key creates a new job (such keys and ordinary ones never meet, even with the same text). `debounce_seconds` (which implies `unique_while_active`) answers 200 with the holder and `"debounced": true` when the holder is `pending` and not yet due: its params become these and it comes due `debounce_seconds` from now; with no live holder it creates a job due then (201); a holder that is `active`, `waiting`, or `pending` and already due is left as it is and answered 409, as a duplicate (a worker may hold it already). Both need an `idempotency_key`. With `wait_seconds` (0–30) the answer is held until the job is terminal or the wait ends, and carries the job as it then stands.',
        },
      },
    )
    .post('/jobs/batch', ({ body }) => enqueueJobs(deps, body.jobs), {
      transform: ({ body }) => refuseWaitInBatch(body),
      body: EnqueueBatchBody,
      response: { 200: Unchecked(EnqueueBatchResult), 400: ErrorBody, 413: ErrorBody },
      detail: {
        tags,
        summary: 'Enqueue a batch of jobs',
        description: `Enqueues 1–${MAX_ENQUEUE_BATCH} jobs, each the body of POST /jobs, in one statement, and answers 200 with \`{"jobs": [{"created", "job"}]}\` in input order (200, not 201: items may find existing jobs). An idempotency key already stored answers its job with \`created: false\`; a key repeated within the batch (same kind) answers the first item's job with \`created: false\`; concurrent batches with overlapping keys never create a key twice. Items with \`unique_while_active\` or \`debounce_seconds\` follow the rules of POST /jobs, one statement each after the others' (a debounced item answers \`{"created": false, "debounced": true, "job"}\`; a live holder left as it is, \`created: false\`). One invalid item refuses the whole batch with a 400 naming it (\`jobs.3.kind\`) and stores nothing. \`wait_seconds\` is refused in a batch. The body limit (FOREMAN_MAX_BODY_BYTES, 413) applies to the whole batch.`,
      },
    })
    .get('/jobs', ({ query }) => listJobs(deps, query), {
      query: JobListQuery,
      response: { 200: t.Array(Job), 400: ErrorBody },
      detail: {
        tags,
        summary: 'List jobs',
        description:
          'Newest first. Page on by passing the last item\'s id as `cursor`. `params` (a JSON object) keeps the jobs whose params contain it (`params @> value`), e.g. `params={"customer":42}`; it is served by a GIN index when FOREMAN_PARAMS_INDEX created one, and by filtering the other conditions\' rows otherwise.',
      },
    })
    .get('/jobs/:id', ({ params, query }) => getJob(deps, params.id, query.include === 'current_run'), {
      params: JobParams,
      query: IncludeQuery,
      response: { 200: Job, 400: ErrorBody, 404: ErrorBody },
      detail: { tags, summary: 'Get a job', description: '`include=current_run` adds the in-flight run (or null).' },
    })
    .get('/jobs/:id/runs', ({ params }) => listJobRuns(deps, params.id), {
      params: JobParams,
      response: { 200: t.Array(Run), 400: ErrorBody, 404: ErrorBody },
      detail: { tags, summary: "List a job's runs", description: 'Every attempt, oldest first.' },
    })
    .post('/jobs/:id/cancel', ({ params }) => cancelJob(deps, params.id), {
      params: JobParams,
      response: { 200: Job, 400: ErrorBody, 404: ErrorBody },
      detail: {
        tags,
        summary: 'Cancel a job',
        description:
          'Pending: cancelled at once. Active: cancel_requested is set and the worker sees it on its next heartbeat. Terminal: unchanged.',
      },
    })
    .post('/jobs/:id/retry', ({ params, query }) => retryJob(deps, params.id, query.cascade === 'true'), {
      params: JobParams,
      query: t.Object({
        cascade: t.Optional(
          t.Union([t.Literal('true'), t.Literal('false')], {
            description: "Also send back to waiting the jobs this job's end cancelled through their dependencies",
          }),
        ),
      }),
      response: { 200: Job, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
      detail: {
        tags,
        summary: 'Retry a failed or cancelled job',
        description:
          'The job goes back to `pending`, due now (`scheduled_at` = now), with `cancel_requested` false and `completed_at`/`result`/`error`/`expires_at` cleared; when its attempts are used up, `max_attempts` becomes `attempt_count + 1`. Its runs stay as history. A job with dependencies goes back to `waiting` and is counted against them as they now stand (pending at once if all succeeded; cancelled again if one failed). With `cascade=true`, the jobs its failure or cancel cancelled through their dependencies (transitively) go back to `waiting` too. 409 unless the job is `failed` or `cancelled`.',
      },
    })
    .delete('/jobs/:id', ({ params }) => deleteJob(deps, params.id), {
      params: JobParams,
      response: { 200: JobDeleted, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
      detail: {
        tags,
        summary: 'Delete a finished job',
        description:
          'Removes a `succeeded`, `failed` or `cancelled` job and its runs, and answers `{"id"}`; `GET /events` streams send `event: deleted` for it. 409 while the job is `pending` or `active` (cancel it first).',
      },
    })
    .post('/jobs/bulk', ({ body }) => bulkAction(deps, body), {
      transform: ({ body }) => refuseLooseBulkBody(body),
      body: BulkBody,
      response: { 200: BulkResult, 400: ErrorBody },
      detail: {
        tags,
        summary: 'Cancel, retry or delete many jobs',
        description: `Acts on the jobs given by \`ids\` (at most ${MAX_BULK}) or by \`filter\` (\`status, kind, queue, service, params\`; \`{}\` is every job); exactly one of the two. Only jobs the action applies to are matched: cancel, \`pending\` or \`active\` jobs not yet cancel-requested (pending → \`cancelled\`, active → \`cancel_requested\`); retry, \`failed\` or \`cancelled\` jobs (as \`POST /jobs/:id/retry\`); delete, \`succeeded\`, \`failed\` or \`cancelled\` jobs (with their runs). One call moves at most \`limit\` jobs (1–${MAX_BULK}, default ${MAX_BULK}), oldest first, in one statement, and answers \`{"matched", "changed", "more"}\`: repeat it until \`more\` is false to reach every matching job. A job another statement holds at that moment (a worker completing it, a claim taking it) is matched but not changed and left for the next call. \`dry_run\` changes nothing and answers how many jobs match (up to \`limit\`) and \`more\`. Unknown fields are refused.`,
      },
    })
