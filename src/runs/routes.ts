/** HTTP controller for workers: claim, then heartbeat/complete/fail by job id or run id. */
import { Elysia, t } from 'elysia'
import type { Deps } from '../deps'
import { ErrorBody, Unchecked } from '../http/schema'
import { Job, JobId, Run, RunId } from '../jobs/model'
import { claimJobsWaiting, claimJobWaiting } from './claiming'
import {
  ClaimBody,
  Claimed,
  ClaimManyBody,
  CompleteBody,
  CompleteManyBody,
  CompleteManyResult,
  FailBody,
  HeartbeatBody,
  HeartbeatResult,
  MAX_BATCH,
  RunListQuery,
  type RunTarget,
} from './model'
import { complete, completeMany, fail, getRun, heartbeat, listRuns } from './service'

const tags = ['workers']
const refused = { 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 413: ErrorBody }

const claimRoute = {
  body: ClaimBody,
  response: {
    200: Unchecked(Claimed),
    204: t.Void({ description: 'Nothing claimable' }),
    400: ErrorBody,
    413: ErrorBody,
  },
  detail: {
    tags,
    summary: 'Claim a job',
    description:
      'Takes the eligible pending job with the highest priority (oldest first) among `kinds` (and `queues`), opens a running run with a lease, and answers both. 204 when nothing is claimable; with `wait_seconds` (0–30) it first waits for new or newly due work of those kinds.',
  },
}

/** The three lease actions, mounted once per addressing scheme. */
function leaseActions(prefix: '/jobs' | '/runs', deps: Deps) {
  const byRun = prefix === '/runs'
  const params = t.Object({ id: byRun ? RunId : JobId })
  const target = (id: string): RunTarget => (byRun ? { runId: id } : { jobId: id })
  const addressed = byRun ? 'the run' : "the job's running run"
  return new Elysia()
    .post(`${prefix}/:id/heartbeat`, ({ params, body }) => heartbeat(deps, target(params.id), body), {
      params,
      body: HeartbeatBody,
      response: { 200: Unchecked(HeartbeatResult), ...refused },
      detail: {
        tags,
        summary: byRun ? 'Heartbeat a run' : 'Heartbeat (by job id)',
        description: `Extends the lease of ${addressed} and stores progress; answers the run plus cancel_requested. 409 unless worker_id holds it.`,
      },
    })
    .post(`${prefix}/:id/complete`, ({ params, body }) => complete(deps, target(params.id), body), {
      params,
      body: CompleteBody,
      response: { 200: Unchecked(Job), ...refused },
      detail: {
        tags,
        summary: byRun ? 'Complete a run' : 'Complete (by job id)',
        description: `Marks ${addressed} and its job succeeded; the result is copied onto the job.`,
      },
    })
    .post(`${prefix}/:id/fail`, ({ params, body }) => fail(deps, target(params.id), body), {
      params,
      body: FailBody,
      response: { 200: Unchecked(Job), ...refused },
      detail: {
        tags,
        summary: byRun ? 'Fail a run' : 'Fail (by job id)',
        description: `Marks ${addressed} failed. The job becomes cancelled if cancel was requested; pending after the backoff if retryable with attempts left; failed otherwise.`,
      },
    })
}

/** Claim (both paths), lease actions (both families) and run reads. */
export const runRoutes = (deps: Deps) => {
  // 200 with { job, run }, or 204 with no body when nothing is claimable.
  const claim = async ({
    body,
    set,
    request,
  }: {
    body: ClaimBody
    set: { status?: number | string }
    request: Request
  }) => {
    const claimed = await claimJobWaiting(deps, body, request.signal)
    if (claimed) return claimed
    set.status = 204
  }
  return new Elysia()
    .post('/claim', claim, claimRoute)
    .post('/jobs/claim', claim, claimRoute)
    .post('/claims', ({ body, request }) => claimJobsWaiting(deps, body, body.max_jobs, request.signal), {
      body: ClaimManyBody,
      response: { 200: Unchecked(t.Array(Claimed)), 400: ErrorBody, 413: ErrorBody },
      detail: {
        tags,
        summary: 'Claim a batch of jobs',
        description: `Like claim, but takes up to \`max_jobs\` (1–${MAX_BATCH}) eligible jobs in one statement, best first, and answers them as an array of {job, run} (empty when nothing is claimable). With \`wait_seconds\` it waits until at least one job is claimable, then answers what it took, or [] at the deadline.`,
      },
    })
    .post('/runs/complete', ({ body, request }) => completeMany(deps, body, request.signal), {
      body: CompleteManyBody,
      response: { 200: Unchecked(CompleteManyResult), 400: ErrorBody, 413: ErrorBody },
      detail: {
        tags,
        summary: 'Complete a batch of runs',
        description: `Completes up to ${MAX_BATCH} runs held by \`worker_id\` (and their jobs) in one statement. Answers one outcome per item in input order: 200 with the job, 404 for an unknown run, 409 for a run that is not running or is held by another worker. A run id may appear once. With \`claim\`, the same statement also claims up to \`claim.max_jobs\` jobs for \`worker_id\` (as POST /claims would, without waiting) and answers them as \`claimed\`: a worker hands back finished work and takes the next in one round trip and one commit.`,
      },
    })
    .use(leaseActions('/jobs', deps))
    .use(leaseActions('/runs', deps))
    .get('/runs', ({ query }) => listRuns(deps, query), {
      query: RunListQuery,
      response: { 200: t.Array(Run), 400: ErrorBody },
      detail: {
        tags: ['runs'],
        summary: 'List runs',
        description: 'Across all jobs, newest first; page with `cursor`.',
      },
    })
    .get('/runs/:id', ({ params }) => getRun(deps, params.id), {
      params: t.Object({ id: RunId }),
      response: { 200: Run, 400: ErrorBody, 404: ErrorBody },
      detail: { tags: ['runs'], summary: 'Get a run' },
    })
}
