/** HTTP controller for the event streams (SSE). */
import { Elysia } from 'elysia'
import type { Deps } from '../deps'
import { EventsQuery, JobEventsParams, sseResponses } from './model'
import { parseCursor, streamAll, streamJob } from './service'

const tags = ['events']

/** GET /events/:id and GET /events. */
export const eventRoutes = (deps: Deps) =>
  new Elysia()
    .get(
      '/events/:id',
      ({ params, request, server }) => {
        // A quiet stream must outlive Bun's idle timeout; keep-alives cover proxies.
        server?.timeout(request, 0)
        return streamJob(deps, params.id, request.signal)
      },
      {
        params: JobEventsParams,
        detail: {
          tags,
          summary: "Stream one job's changes (SSE)",
          description:
            'Sends `event: job` with the job (and `current_run`) at once, then one per change, progress included; the stream ends after the terminal event. 404 before streaming for an unknown id.',
          responses: sseResponses('An event stream of `event: job` frames', {
            400: 'Malformed job id',
            404: 'Unknown job (answered before streaming)',
          }),
        },
      },
    )
    .get(
      '/events',
      ({ query, headers, request, server }) => {
        server?.timeout(request, 0)
        const lastEventId = headers['last-event-id']
        const since = lastEventId
          ? parseCursor(lastEventId, 'Last-Event-ID')
          : query.since
            ? parseCursor(query.since, 'since')
            : undefined
        const { kind, queue, status } = query
        return streamAll(deps, { kind, queue, status }, since, request.signal)
      },
      {
        query: EventsQuery,
        detail: {
          tags,
          summary: 'Stream every job change (SSE)',
          description:
            'Sends `event: job` for every job that changes and matches `kind`, `queue` and `status`, and `event: deleted` when retention removes one. Every event has an `id:`; reconnect with `Last-Event-ID` (or `?since=`) to receive what changed meanwhile, as far as the database still holds it (at least once).',
          responses: sseResponses('An event stream of `event: job` and `event: deleted` frames', {
            400: 'Bad filter, since or Last-Event-ID',
          }),
        },
      },
    )
