/** Schemas for the event streams. */
import { t } from 'elysia'
import { JobId, JobStatus } from '../jobs/model'

/** GET /events/:id. */
export const JobEventsParams = t.Object({ id: JobId })

/** GET /events filters and replay position. */
export const EventsQuery = t.Object({
  kind: t.Optional(t.String({ maxLength: 200, description: 'Only jobs of this kind' })),
  queue: t.Optional(t.String({ maxLength: 200, description: 'Only jobs in this queue' })),
  status: t.Optional(JobStatus),
  since: t.Optional(
    t.String({
      maxLength: 300,
      description: 'Replay changes after this event id or RFC 3339 timestamp (like the Last-Event-ID header)',
    }),
  ),
})
export type EventsQuery = typeof EventsQuery.static

/** How the OpenAPI document describes an SSE answer. */
export const sseDescription = (what: string) => ({
  200: {
    description: what,
    content: { 'text/event-stream': { schema: { type: 'string' as const } } },
  },
})
