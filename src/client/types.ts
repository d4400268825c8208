/**
 * The client's types: the server's own request and answer types (from its TypeBox
 * schemas, `import type` only, so nothing of the server loads at run time) and the
 * few the client adds (options, enqueue's answer, stream events).
 */

import type { EventsQuery } from '../events/model'
import type {
  BulkBody,
  BulkResult,
  DebouncedJob,
  Dependency,
  DuplicateJob,
  EnqueueBatchItem,
  EnqueueBatchResult,
  EnqueueBody,
  Job,
  JobDeleted,
  JobListQuery,
  Run,
} from '../jobs/model'
import type {
  FlowKey,
  Limits,
  LimitsBody,
  LimitsDeleted,
  LimitsDetail,
  LimitsGetQuery,
  Rate,
  RateWindow,
} from '../limits/model'
import type { DatabaseHealth } from '../operations/database'
import type { QueueState, QueueSummary } from '../queues/model'
import type {
  ClaimBody,
  Claimed,
  ClaimManyBody,
  CompleteBody,
  CompleteManyBody,
  CompleteManyResult,
  CompleteOutcome,
  FailBody,
  HeartbeatBody,
  HeartbeatResult,
  RunListQuery,
} from '../runs/model'
import type { Deleted, Schedule, ScheduleBody, ScheduleListQuery } from '../schedules/model'
import type { Stats, StatsWindow } from '../stats/model'
import type { WorkerSummary } from '../workers/model'
import type { TransportOptions } from './http'

/** What to claim along with a batch complete (see completeAndClaim). */
export type HandoffClaim = NonNullable<CompleteManyBody['claim']>

export type {
  BulkBody,
  BulkResult,
  ClaimBody,
  Claimed,
  ClaimManyBody,
  CompleteBody,
  CompleteManyResult,
  CompleteOutcome,
  DatabaseHealth,
  DebouncedJob,
  Deleted,
  Dependency,
  DuplicateJob,
  EnqueueBatchItem,
  EnqueueBatchResult,
  EnqueueBody,
  FailBody,
  FlowKey,
  HeartbeatBody,
  HeartbeatResult,
  Job,
  JobDeleted,
  JobListQuery,
  Limits,
  LimitsBody,
  LimitsDeleted,
  LimitsDetail,
  LimitsGetQuery,
  QueueState,
  QueueSummary,
  Rate,
  RateWindow,
  Run,
  RunListQuery,
  Schedule,
  ScheduleBody,
  ScheduleListQuery,
  Stats,
  StatsWindow,
  WorkerSummary,
}

/** Options of a ForemanClient: where Foreman is, the token, timeouts and retries. */
export type ClientOptions = TransportOptions

/**
 * What enqueue answers: `created` is false when the idempotency key already held
 * `job`; `debounced` is true when `debounce_seconds` moved that job instead (new
 * params, due later), and absent otherwise.
 */
export interface Enqueued {
  created: boolean
  debounced?: boolean
  job: Job
}

/**
 * What enqueueGraph answers: one Enqueued per item in input order, and the id of
 * each item's job by its `ref` (`{}` when no item has one).
 */
export interface EnqueuedGraph {
  jobs: Enqueued[]
  refs: Record<string, string>
}

/** A job removed by retention, as `GET /events` announces it. */
export interface DeletedJob {
  id: string
  kind: string
  queue: string
}

/** One event of a stream: the job's full state, or (on `GET /events`) a deletion. */
export type JobEvent = { type: 'job'; id: string; job: Job } | { type: 'deleted'; id: string; deleted: DeletedJob }

/** Filters and resume position of `events()`. */
export interface EventsOptions extends Partial<EventsQuery> {
  /** Resume after this event id (sent as `Last-Event-ID`). */
  lastEventId?: string
  /** Ends the stream (the iterator then finishes). */
  signal?: AbortSignal
}

/** `GET /readyz`: `ready`, or `not ready` with the reason (a 503 answers this too, not a throw). */
export interface Readiness {
  status: 'ready' | 'not ready'
  error?: string
}

/** Filters of `listJobs`: those of `GET /jobs`, with `params` as an object (the client JSON-encodes it). */
export type ListJobsQuery = Partial<Omit<JobListQuery, 'params'>> & { params?: Record<string, unknown> }
