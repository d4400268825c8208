/** Named statements on the schedules table. */
import type { Queryable, Sql } from '../db/client'
import type { Tables } from '../db/tables'
import type { Schedule } from './model'

/** A schedule's recipe and timing as stored; defaults already applied. */
export interface ScheduleFields {
  kind: string
  queue: string
  service: string
  concurrencyKey: string | null
  params: unknown
  priority: number
  maxAttempts: number
  cronExpr: string
  timezone: string
  enabled: boolean
}

/** Inserts a schedule. */
export async function scheduleInsert(
  sql: Sql,
  t: Tables,
  id: string,
  f: ScheduleFields,
  nextFireAt: Date,
): Promise<Schedule> {
  const [row] = await sql<Schedule[]>`
    insert into ${sql(t.schedules)}
      (id, kind, queue, service, concurrency_key, params, priority, max_attempts, cron_expr, timezone, enabled,
       next_fire_at)
    values (${id}, ${f.kind}, ${f.queue}, ${f.service}, ${f.concurrencyKey}, ${sql.json(f.params as never)},
            ${f.priority}, ${f.maxAttempts}, ${f.cronExpr}, ${f.timezone}, ${f.enabled}, ${nextFireAt})
    returning *`
  if (!row) throw new Error('insert returned no row')
  return row
}

/** One schedule (locked for the transaction when `forUpdate`). */
export async function scheduleGet(sql: Queryable, t: Tables, id: string, forUpdate = false): Promise<Schedule | null> {
  const [row] = await sql<Schedule[]>`
    select * from ${sql(t.schedules)} where id = ${id} ${forUpdate ? sql`for update` : sql``}`
  return row ?? null
}

/** A page of schedules, newest first, keyset-paged by id. */
export async function scheduleList(
  sql: Sql,
  t: Tables,
  q: { kind?: string; enabled?: boolean; cursor?: string; limit: number },
): Promise<Schedule[]> {
  return sql<Schedule[]>`
    select * from ${sql(t.schedules)}
    where true
      ${q.kind !== undefined ? sql`and kind = ${q.kind}` : sql``}
      ${q.enabled !== undefined ? sql`and enabled = ${q.enabled}` : sql``}
      ${q.cursor ? sql`and id < ${q.cursor}` : sql``}
    order by id desc
    limit ${q.limit}`
}

/**
 * Replaces a schedule's fields in one statement. next_fire_at becomes
 * `recomputed` when the expression or time zone changed or it is being enabled,
 * and otherwise stays.
 */
export async function scheduleReplace(
  sql: Sql,
  t: Tables,
  id: string,
  f: ScheduleFields,
  recomputed: Date,
): Promise<Schedule | null> {
  const [row] = await sql<Schedule[]>`
    update ${sql(t.schedules)} set
      next_fire_at = case
        when cron_expr <> ${f.cronExpr} or timezone <> ${f.timezone} or (not enabled and ${f.enabled})
        then ${recomputed}::timestamptz else next_fire_at end,
      last_error = case when ${f.enabled} then null else last_error end,
      kind = ${f.kind}, queue = ${f.queue}, service = ${f.service}, concurrency_key = ${f.concurrencyKey},
      params = ${sql.json(f.params as never)},
      priority = ${f.priority}, max_attempts = ${f.maxAttempts}, cron_expr = ${f.cronExpr},
      timezone = ${f.timezone}, enabled = ${f.enabled}, updated_at = now()
    where id = ${id}
    returning *`
  return row ?? null
}

/** Deletes a schedule; answers whether it existed. */
export async function scheduleDelete(sql: Sql, t: Tables, id: string): Promise<boolean> {
  const rows = await sql`delete from ${sql(t.schedules)} where id = ${id} returning id`
  return rows.length > 0
}

/** Locks up to `limit` enabled schedules that are due; others ticking at once skip them. */
export async function scheduleTakeDue(sql: Queryable, t: Tables, limit: number): Promise<Schedule[]> {
  return sql<Schedule[]>`
    select * from ${sql(t.schedules)}
    where enabled and next_fire_at <= now()
    order by next_fire_at
    limit ${limit}
    for update skip locked`
}

/** Records a fire: the job it enqueued, when, and (for timed fires) the next fire time. */
export async function scheduleRecordFire(
  sql: Queryable,
  t: Tables,
  id: string,
  jobId: string,
  nextFireAt?: Date,
): Promise<Schedule | null> {
  const [row] = await sql<Schedule[]>`
    update ${sql(t.schedules)} set
      last_fire_at = now(), last_job_id = ${jobId},
      next_fire_at = ${nextFireAt ? sql`${nextFireAt}::timestamptz` : sql`next_fire_at`},
      updated_at = now()
    where id = ${id}
    returning *`
  return row ?? null
}

/** Turns a schedule off with the reason (its stored expression no longer parses). */
export async function scheduleDisable(sql: Queryable, t: Tables, id: string, reason: string): Promise<void> {
  await sql`
    update ${sql(t.schedules)} set enabled = false, last_error = ${reason}, updated_at = now()
    where id = ${id}`
}
