/** HTTP controller for what waits on a job (its dependencies come with the job itself). */
import { Elysia, t } from 'elysia'
import type { Deps } from '../deps'
import { ErrorBody } from '../http/schema'
import { Job, JobId } from '../jobs/model'
import { listDependents } from './service'

/** GET /jobs/:id/dependents. */
export const dependencyRoutes = (deps: Deps) =>
  new Elysia().get('/jobs/:id/dependents', ({ params }) => listDependents(deps, params.id), {
    params: t.Object({ id: JobId }),
    response: { 200: t.Array(Job), 400: ErrorBody, 404: ErrorBody },
    detail: {
      tags: ['jobs'],
      summary: 'List the jobs that depend on a job',
      description:
        'Every job enqueued with this one in its `depends_on`, in the order they were enqueued, whatever their status now (`waiting` until this job and their other dependencies succeed). 404 for an unknown job.',
    },
  })
