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

const errorResponse = (description: string) => ({
  description,
  content: {
    'application/json': {
      schema: { type: 'object' as const, required: ['error'], properties: { error: { type: 'string' as const } } },
    },
  },
})

/**
 * How the OpenAPI document describes an SSE route. Given explicitly because it
 * replaces the generated responses: the 200 is a stream, not a schema.
 */
export const sseResponses = (what: string, errors: Record<number, string>) => ({
  200: { description: what, content: { 'text/event-stream': { schema: { type: 'string' as const } } } },
  ...Object.fromEntries(Object.entries(errors).map(([status, text]) => [status, errorResponse(text)])),
})
