/** HTTP controller for queues: the overview, pause and resume. */
import { Elysia, t } from 'elysia'
import type { Deps } from '../deps'
import { ErrorBody } from '../http/schema'
import { MaxAgeQuery, maxAgeOf, sharedReads } from '../http/shared-read'
import { QueueParams, QueueState, QueueSummary } from './model'
import { listQueues, pauseQueue, resumeQueue } from './service'

const tags = ['queues']

/** GET /queues, POST /queues/:queue/pause and /resume. */
export const queueRoutes = (deps: Deps) => {
  const queues = sharedReads(() => listQueues(deps))
  return new Elysia()
    .get('/queues', ({ query }) => queues.read(null, maxAgeOf(query)), {
      query: MaxAgeQuery,
      response: { 200: t.Array(QueueSummary), 400: ErrorBody },
      detail: {
        tags,
        summary: 'List queues',
        description:
          'Every queue with pending or active jobs, a job ended in the last hour, or a pause, sorted by name: claimable (`pending`), not yet due (`scheduled`) and active jobs, the age of the oldest claimable job, jobs succeeded and failed for good in the last minute and hour, and the same counts per kind. A paused queue with no jobs is listed too.',
      },
    })
    .post('/queues/:queue/pause', ({ params }) => pauseQueue(deps, params.queue).finally(queues.forget), {
      params: QueueParams,
      response: { 200: QueueState, 400: ErrorBody },
      detail: {
        tags,
        summary: 'Pause a queue',
        description:
          'From now on every claim, on every instance and long polls included, skips this queue’s jobs; running jobs carry on, enqueues are accepted. Idempotent: pausing a paused queue keeps its `paused_at`. The queue need not have jobs yet.',
      },
    })
    .post('/queues/:queue/resume', ({ params }) => resumeQueue(deps, params.queue).finally(queues.forget), {
      params: QueueParams,
      response: { 200: QueueState, 400: ErrorBody },
      detail: {
        tags,
        summary: 'Resume a queue',
        description:
          'Claims take this queue’s jobs again, and long-poll claimers waiting for its kinds (on every instance) are woken. Idempotent: resuming a queue that is not paused changes nothing.',
      },
    })
}
