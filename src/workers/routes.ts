/** HTTP controller for the workers view. */
import { Elysia, t } from 'elysia'
import type { Deps } from '../deps'
import { ErrorBody } from '../http/schema'
import { MaxAgeQuery, maxAgeOf, sharedReads } from '../http/shared-read'
import { WorkerSummary } from './model'
import { listWorkers } from './service'

/** GET /workers. */
export const workerRoutes = (deps: Deps) => {
  const workers = sharedReads(() => listWorkers(deps))
  return new Elysia().get('/workers', ({ query }) => workers.read(null, maxAgeOf(query)), {
    query: MaxAgeQuery,
    response: { 200: t.Array(WorkerSummary), 400: ErrorBody },
    detail: {
      tags: ['operations'],
      summary: 'List workers',
      description:
        'Every worker_id with a running run or a run that ended in the last hour, by worker id: its running runs (job, kind, queue, attempt, lease, progress), the time of its latest heartbeat on them, and how many of its runs ended in the last hour (succeeded; failed or abandoned). Workers are known only through their runs: one that claimed nothing for an hour is not listed.',
    },
  })
}
