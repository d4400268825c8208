/** The rules of schedules: create, read, replace, delete, fire now, and the timed fire. */
import { afterCommit, type Effects } from '../after-commit'
import type { Queryable } from '../db/client'
import type { Deps } from '../deps'
import { NotFound } from '../errors'
import { pageSize } from '../http/schema'
import { newJobId, newScheduleId } from '../ids'
import type { Job } from '../jobs/model'
import type { Enqueued } from '../jobs/service'
import { jobInsert } from '../jobs/sql'
import { recordEnqueued } from '../metrics/record'
import type { Schedule, ScheduleBody, ScheduleListQuery } from './model'
import { parseRecurrence } from './recurrence'
import {
  type ScheduleFields,
  scheduleDelete,
  scheduleGet,
  scheduleInsert,
  scheduleList,
  scheduleRecordFire,
  scheduleReplace,
} from './sql'

/** Applies defaults and checks the expression and time zone (400 naming the field). */
function fieldsOf(body: ScheduleBody): { fields: ScheduleFields; nextFireAt: Date } {
  const fields: ScheduleFields = {
    kind: body.kind,
    queue: body.queue ?? 'default',
    service: body.service ?? '',
    concurrencyKey: body.concurrency_key ?? null,
    params: body.params ?? {},
    priority: body.priority ?? 0,
    maxAttempts: body.max_attempts ?? 1,
    cronExpr: body.cron_expr.trim(),
    timezone: body.timezone ?? 'UTC',
    enabled: body.enabled ?? true,
  }
  const nextFireAt = parseRecurrence(fields.cronExpr, fields.timezone).next(new Date())
  return { fields, nextFireAt }
}

/** Creates a schedule; its first fire is the expression's next time after now. */
export function createSchedule({ sql, tables }: Deps, body: ScheduleBody): Promise<Schedule> {
  const { fields, nextFireAt } = fieldsOf(body)
  return scheduleInsert(sql, tables, newScheduleId(), fields, nextFireAt)
}

/** One schedule; 404 when unknown. */
export async function getSchedule({ sql, tables }: Deps, id: string): Promise<Schedule> {
  const schedule = await scheduleGet(sql, tables, id)
  if (!schedule) throw new NotFound(`schedule ${id} not found`)
  return schedule
}

/** A page of schedules, newest first. */
export function listSchedules({ sql, tables }: Deps, q: ScheduleListQuery): Promise<Schedule[]> {
  const enabled = q.enabled === undefined ? undefined : q.enabled === 'true'
  return scheduleList(sql, tables, { kind: q.kind, enabled, cursor: q.cursor, limit: pageSize(q.limit) })
}

/**
 * Replaces a schedule (PUT). A changed expression or time zone, or re-enabling,
 * recomputes next_fire_at from now; otherwise it stays.
 */
export async function replaceSchedule({ sql, tables }: Deps, id: string, body: ScheduleBody): Promise<Schedule> {
  const { fields, nextFireAt } = fieldsOf(body)
  const schedule = await scheduleReplace(sql, tables, id, fields, nextFireAt)
  if (!schedule) throw new NotFound(`schedule ${id} not found`)
  return schedule
}

/** Deletes a schedule (its jobs stay); 404 when unknown. */
export async function deleteSchedule({ sql, tables }: Deps, id: string): Promise<{ id: string }> {
  if (!(await scheduleDelete(sql, tables, id))) throw new NotFound(`schedule ${id} not found`)
  return { id }
}

/**
 * Enqueues one job from a schedule's recipe. `idempotencyKey` makes a timed fire
 * safe to repeat; answers the job (the existing one, created = false, when the key
 * already fired). Runs inside the caller's transaction, so the caller counts it
 * once that commits.
 */
export async function enqueueFromSchedule(
  tx: Queryable,
  deps: Deps,
  schedule: Schedule,
  idempotencyKey: string | null,
): Promise<Enqueued> {
  const insert = {
    id: newJobId(),
    kind: schedule.kind,
    queue: schedule.queue,
    service: schedule.service,
    idempotencyKey,
    concurrencyKey: schedule.concurrency_key,
    params: schedule.params,
    priority: schedule.priority,
    maxAttempts: schedule.max_attempts,
    scheduledAt: null,
    flowControlled: (await deps.events.limitedKinds.among([schedule.kind])).length > 0,
  }
  const outcome = await jobInsert(tx, deps.tables, insert)
  if (!outcome) throw new Error(`schedule ${schedule.id}: enqueue with key ${idempotencyKey} raced; retry next tick`)
  return outcome
}

/** Fires a schedule now (POST /schedules/:id/fire): one job, next_fire_at untouched. Answers the job. */
export function fireSchedule(deps: Deps, id: string): Promise<Job> {
  return afterCommit(deps, (effects) =>
    deps.sql.begin(async (tx) => {
      const schedule = await scheduleGet(tx, deps.tables, id, true)
      if (!schedule) throw new NotFound(`schedule ${id} not found`)
      const enqueued = await enqueueFromSchedule(tx, deps, schedule, null)
      await scheduleRecordFire(tx, deps.tables, id, enqueued.job.id)
      fireEffects(effects, enqueued)
      return enqueued.job
    }),
  )
}

/** A schedule fire's effects (applied after commit): the new job announced, the fire and the enqueue counted. */
export function fireEffects(effects: Effects, enqueued: Enqueued): void {
  if (enqueued.created) effects.announce([enqueued.job])
  effects.count((m) => {
    m.schedulesFired.inc()
    recordEnqueued(m, enqueued.job, enqueued.created)
  })
}
