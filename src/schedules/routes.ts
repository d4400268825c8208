/** HTTP controller for schedules. */
import { Elysia, t } from 'elysia'
import type { Deps } from '../deps'
import { ErrorBody } from '../http/schema'
import { Job } from '../jobs/model'
import { Deleted, Schedule, ScheduleBody, ScheduleListQuery, ScheduleParams } from './model'
import { createSchedule, deleteSchedule, fireSchedule, getSchedule, listSchedules, replaceSchedule } from './service'

const tags = ['schedules']

/** Schedule CRUD and fire-now. */
export const scheduleRoutes = (deps: Deps) =>
  new Elysia()
    .post(
      '/schedules',
      async ({ body, set }) => {
        const schedule = await createSchedule(deps, body)
        set.status = 201
        return schedule
      },
      {
        body: ScheduleBody,
        response: { 201: Schedule, 400: ErrorBody },
        detail: {
          tags,
          summary: 'Create a schedule',
          description:
            'A recipe (kind, queue, service, concurrency_key, params, priority, max_attempts) and when to enqueue it: 5-field cron, a descriptor (@hourly, @daily, @weekly, @monthly, @yearly, @annually, @midnight) or @every <duration>, in an IANA time zone. A bad expression or time zone is 400.',
        },
      },
    )
    .get('/schedules', ({ query }) => listSchedules(deps, query), {
      query: ScheduleListQuery,
      response: { 200: t.Array(Schedule), 400: ErrorBody },
      detail: {
        tags,
        summary: 'List schedules',
        description: 'Newest first; filters kind, enabled; page with cursor.',
      },
    })
    .get('/schedules/:id', ({ params }) => getSchedule(deps, params.id), {
      params: ScheduleParams,
      response: { 200: Schedule, 400: ErrorBody, 404: ErrorBody },
      detail: { tags, summary: 'Get a schedule' },
    })
    .put('/schedules/:id', ({ params, body }) => replaceSchedule(deps, params.id, body), {
      params: ScheduleParams,
      body: ScheduleBody,
      response: { 200: Schedule, 400: ErrorBody, 404: ErrorBody },
      detail: {
        tags,
        summary: 'Replace a schedule',
        description:
          'A full replace (omitted fields take their defaults). A changed cron_expr or timezone, or re-enabling, recomputes next_fire_at from now; otherwise it stays.',
      },
    })
    .delete('/schedules/:id', ({ params }) => deleteSchedule(deps, params.id), {
      params: ScheduleParams,
      response: { 200: Deleted, 400: ErrorBody, 404: ErrorBody },
      detail: { tags, summary: 'Delete a schedule', description: 'Jobs it already enqueued stay.' },
    })
    .post('/schedules/:id/fire', ({ params }) => fireSchedule(deps, params.id), {
      params: ScheduleParams,
      response: { 200: Job, 400: ErrorBody, 404: ErrorBody },
      detail: {
        tags,
        summary: 'Fire a schedule now',
        description: 'Enqueues one job from the recipe now and answers it; next_fire_at is left alone.',
      },
    })
