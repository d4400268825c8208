/** Schemas (and their types) for schedules: recurring recipes that enqueue jobs. */
import { t } from 'elysia'
import { JsonValue, Limit, Name, Nullable, PrefixedId, StrictBoolean, StrictInteger, Timestamp } from '../http/schema'
import { ConcurrencyKey, JobId } from '../jobs/model'

/** `sched_` + ULID. */
export const ScheduleId = PrefixedId('sched_', 'Schedule')

/** A stored schedule. */
export const Schedule = t.Object({
  id: ScheduleId,
  kind: t.String(),
  queue: t.String(),
  service: t.String(),
  concurrency_key: Nullable(t.String({ description: 'Concurrency key of every job it enqueues; null when none' })),
  params: JsonValue('Params of every job it enqueues'),
  priority: t.Integer(),
  max_attempts: t.Integer(),
  cron_expr: t.String(),
  timezone: t.String(),
  enabled: t.Boolean(),
  next_fire_at: Nullable(Timestamp),
  last_fire_at: Nullable(Timestamp),
  last_job_id: Nullable(JobId),
  last_error: Nullable(t.String({ description: 'Why the scheduler disabled it, if it did' })),
  created_at: Timestamp,
  updated_at: Timestamp,
})
export type Schedule = typeof Schedule.static

/** POST /schedules and PUT /schedules/:id (a full replace: omitted fields take their defaults). */
export const ScheduleBody = t.Object({
  kind: Name('Kind of the jobs it enqueues'),
  queue: t.Optional(Name('Queue of the jobs it enqueues')),
  service: t.Optional(t.String({ maxLength: 200 })),
  concurrency_key: ConcurrencyKey('Concurrency key of the jobs it enqueues (see POST /jobs)'),
  params: t.Optional(JsonValue('Params of every job it enqueues')),
  priority: t.Optional(StrictInteger(-1_000_000, 1_000_000, 'Priority of the jobs it enqueues')),
  max_attempts: t.Optional(StrictInteger(1, 1000, 'Attempts of the jobs it enqueues')),
  cron_expr: t.String({
    minLength: 1,
    maxLength: 200,
    description:
      '5-field cron ("30 2 * * *"), a descriptor (@hourly, @daily, @weekly, @monthly, @yearly…) or @every <duration> (@every 5m, @every 1h30m)',
  }),
  timezone: t.Optional(t.String({ minLength: 1, maxLength: 64, description: 'IANA time zone (default UTC)' })),
  enabled: t.Optional(StrictBoolean('Fires only when enabled (default true)')),
})
export type ScheduleBody = typeof ScheduleBody.static

/** GET /schedules filters. */
export const ScheduleListQuery = t.Object({
  kind: t.Optional(t.String({ maxLength: 200 })),
  enabled: t.Optional(t.Union([t.Literal('true'), t.Literal('false')], { description: 'true or false' })),
  limit: Limit,
  cursor: t.Optional(ScheduleId),
})
export type ScheduleListQuery = typeof ScheduleListQuery.static

/** Path of the single-schedule routes. */
export const ScheduleParams = t.Object({ id: ScheduleId })

/** DELETE answer. */
export const Deleted = t.Object({ id: ScheduleId })
