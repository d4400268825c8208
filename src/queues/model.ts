/** Schemas (and their types) for queues: what GET /queues answers and pause/resume take and answer. */
import { t } from 'elysia'
import { Name, Nullable, Timestamp } from '../http/schema'

/** A queue's name, as jobs carry it (the `:queue` path segment, URL-encoded). */
export const QueueName = Name('Queue name, as jobs carry it')

/** The `:queue` path parameter. */
export const QueueParams = t.Object({ queue: QueueName })

const Count = (description: string) => t.Integer({ minimum: 0, description })

/** Counts of one kind within a queue. */
export const QueueKind = t.Object({
  kind: t.String(),
  pending: Count('Pending and claimable now'),
  scheduled: Count('Pending but not yet due (scheduled, or a retry waiting out its backoff)'),
  active: Count('Claimed, with a running run'),
  succeeded_last_hour: Count('Succeeded in the last hour'),
  failed_last_hour: Count('Failed for good in the last hour (retries not counted)'),
})
export type QueueKind = typeof QueueKind.static

/** One queue as GET /queues shows it. */
export const QueueSummary = t.Object({
  queue: QueueName,
  paused: t.Boolean({ description: 'True while claims skip this queue' }),
  paused_at: Nullable(Timestamp),
  pending: Count('Pending and claimable now (paused or not)'),
  scheduled: Count('Pending but not yet due'),
  active: Count('Claimed, with a running run'),
  oldest_pending_age_seconds: t.Number({
    minimum: 0,
    description: 'How long the oldest claimable job has waited since it became due; 0 when none',
  }),
  succeeded_last_minute: Count('Jobs succeeded in the last minute'),
  failed_last_minute: Count('Jobs failed for good in the last minute'),
  succeeded_last_hour: Count('Jobs succeeded in the last hour'),
  failed_last_hour: Count('Jobs failed for good in the last hour'),
  kinds: t.Array(QueueKind, { description: 'The same counts per kind, by kind' }),
})
export type QueueSummary = typeof QueueSummary.static

/** What pause and resume answer: the queue's state now. */
export const QueueState = t.Object({
  queue: QueueName,
  paused: t.Boolean(),
  paused_at: Nullable(Timestamp),
})
export type QueueState = typeof QueueState.static
