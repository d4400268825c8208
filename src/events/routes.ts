/** HTTP controller for the event streams (SSE). */
import { Elysia } from 'elysia'
import type { Deps } from '../deps'
import { EventsQuery, JobEventsParams, sseResponses } from './model'
import { headJob, parseCursor, streamAll, streamJob } from './service'
import { sseHeadResponse } from './sse'

const tags = ['events']

/** The replay position GET /events was asked for: Last-Event-ID, else `since`. */
function sinceOf(lastEventId: string | undefined, since: string | undefined) {
  if (lastEventId) return parseCursor(lastEventId, 'Last-Event-ID')
  return since ? parseCursor(since, 'since') : undefined
}

/**
 * GET /events/:id and GET /events. A HEAD reaches the GET handler (Elysia routes
 * it there, even past a `.head` route for a path with parameters), which answers
 * it at once with the checks, status and headers a GET gets before streaming, no
 * body, and nothing opened. Left to Elysia, a HEAD ran the GET and read the whole
 * body to measure it: a stream never ends, so a HEAD never answered and held a
 * subscription and a stream slot.
 */
export const eventRoutes = (deps: Deps) =>
  new Elysia()
    .get(
      '/events/:id',
      ({ params, request, server }) => {
        if (request.method === 'HEAD') return headJob(deps, params.id)
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
            'Sends `event: job` with the job (and `current_run`) at once, then one per change, progress included; the stream ends after the terminal event. 404 before streaming for an unknown id. A client that leaves more than 1 MiB of events unread has its connection reset; reconnecting sends the current state again.',
          responses: sseResponses('An event stream of `event: job` frames', {
            400: 'Malformed job id',
            404: 'Unknown job (answered before streaming)',
            503: 'FOREMAN_MAX_STREAMS streams are open in this process; retry after `Retry-After` seconds',
          }),
        },
      },
    )
    .get(
      '/events',
      ({ query, headers, request, server }) => {
        const since = sinceOf(headers['last-event-id'], query.since)
        if (request.method === 'HEAD') return sseHeadResponse()
        server?.timeout(request, 0)
        const { kind, queue, status } = query
        return streamAll(deps, { kind, queue, status }, since, request.signal)
      },
      {
        query: EventsQuery,
        detail: {
          tags,
          summary: 'Stream every job change (SSE)',
          description:
            'Sends `event: job` for every job that changes and matches `kind`, `queue` and `status`, and `event: deleted` when retention removes one. Every event has an `id:`; reconnect with `Last-Event-ID` (or `?since=`) to receive what changed meanwhile, as far as the database still holds it (at least once). A client that leaves more than 1 MiB of events unread has its connection reset and resumes with `Last-Event-ID`; a resumed replay goes at the pace the client reads.',
          responses: sseResponses('An event stream of `event: job` and `event: deleted` frames', {
            400: 'Bad filter, since or Last-Event-ID',
            503: 'FOREMAN_MAX_STREAMS streams are open in this process; retry after `Retry-After` seconds',
          }),
        },
      },
    )
