/**
 * Moving finished jobs into history, and dropping history by the day
 * (migrations/009). Neither touches a live job: the move takes finished rows
 * only, skipping any a transition holds, and retention drops whole partitions.
 */
import type { Sql } from '../db/client'
import type { Tables } from '../db/tables'

/** The UTC days (YYYY-MM-DD) from `first` to `last`, both included. */
export function daysBetween(first: string, last: string): string[] {
  const days: string[] = []
  for (let at = Date.parse(`${first}T00:00:00Z`); at <= Date.parse(`${last}T00:00:00Z`); at += 86_400_000) {
    days.push(new Date(at).toISOString().slice(0, 10))
  }
  return days
}

/** Creates the day's history partitions unless they are there (instances take turns). */
// Days travel as text: the client's timestamp serializer would misread "YYYY-MM-DD".
export async function historyEnsureDay(sql: Sql, t: Tables, day: string): Promise<void> {
  await sql`select ${sql(`${t.prefix}history_ensure_day`)}(${day}::text::date)`
}

/** A batch to move: jobs finished over `afterSec` ago, within the UTC days `first`..`last`. */
export interface HistoryBatch {
  afterSec: number
  first: string
  last: string
}

/** The next batch to move (finished over `afterSec` ago, oldest first), or null when there is none. */
export async function historyNextBatch(
  sql: Sql,
  t: Tables,
  afterSec: number,
  limit: number,
): Promise<HistoryBatch | null> {
  const [row] = await sql<{ first: string | null; last: string | null }[]>`
    select to_char(min(b.completed_at) at time zone 'UTC', 'YYYY-MM-DD') as first,
           to_char(max(b.completed_at) at time zone 'UTC', 'YYYY-MM-DD') as last
    from (
      select completed_at from ${sql(t.jobs)}
      where completed_at < now() - make_interval(secs => ${afterSec})
      order by completed_at
      limit ${limit}
    ) b`
  if (!row?.first || !row.last) return null
  return { afterSec, first: row.first, last: row.last }
}

/**
 * Moves up to `limit` jobs of `batch`, within its UTC days (whose partitions
 * exist, whatever finished since), with their runs, in one statement: a crash
 * leaves each job either hot or in history, never both or neither. Rows a
 * transition holds are skipped (the next sweep takes them). A finished job has
 * no running run (every ending statement ends its run too), so its runs all go.
 * The picked ids reach the deletes as arrays: joined to the picked rows, the
 * planner hashed them against a sequential scan of the whole table.
 * Answers how many jobs moved.
 */
export async function historyMoveBatch(sql: Sql, t: Tables, batch: HistoryBatch, limit: number): Promise<number> {
  const [row] = await sql<{ moved: number }[]>`
    with picked as (
      select array_agg(id) as ids from (
        select j.id from ${sql(t.jobs)} j
        where j.completed_at < now() - make_interval(secs => ${batch.afterSec})
          and j.completed_at >= (${batch.first}::text::date)::timestamp at time zone 'UTC'
          and j.completed_at < (${batch.last}::text::date + 1)::timestamp at time zone 'UTC'
        order by j.completed_at
        limit ${limit}
        for update of j skip locked) p
    ), moved as (
      delete from ${sql(t.jobs)} where id = any((select ids from picked)::text[])
      returning *
    ), moved_runs as (
      delete from ${sql(t.runs)} where job_id = any((select ids from picked)::text[])
      returning *
    ), runs_kept as (
      insert into ${sql(t.runsHistory)}
      select r.*, m.completed_at from moved_runs r join moved m on m.id = r.job_id
    ), jobs_kept as (
      insert into ${sql(t.jobsHistory)} select * from moved
      returning 1
    )
    select count(*)::int as moved from jobs_kept`
  return row?.moved ?? 0
}

/** A history partition of the jobs table, with the UTC day it holds. */
export interface HistoryDay {
  day: string
  jobs: string
  runs: string
}

/** The days of history there are partitions for, oldest first. */
export async function historyDays(sql: Sql, t: Tables): Promise<HistoryDay[]> {
  const rows = await sql<{ name: string }[]>`
    select c.relname as name
    from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = to_regclass(${t.jobsHistory})
    order by c.relname`
  const pattern = /_p(\d{4})(\d{2})(\d{2})$/
  return rows.flatMap(({ name }) => {
    const m = pattern.exec(name)
    if (!m) return []
    const suffix = `${m[1]}${m[2]}${m[3]}`
    return [{ day: `${m[1]}-${m[2]}-${m[3]}`, jobs: name, runs: `${t.runsHistory}_p${suffix}` }]
  })
}

/** How long a drop waits for history's readers before it gives up until the next sweep. */
const DROP_LOCK_TIMEOUT = '5s'

/**
 * Drops one day of history: frees the keys its jobs held, then drops both
 * partitions in one transaction. The drop needs the history tables to itself
 * for a moment; it waits at most DROP_LOCK_TIMEOUT for readers, so it never
 * queues reads behind it for long. Between the two steps a freed key can be
 * taken by a new job while the old one is still there, which is what retention
 * means a moment later anyway. Answers the jobs it held.
 */
export async function historyDropDay(sql: Sql, t: Tables, day: HistoryDay): Promise<number> {
  const [row] = await sql<{ jobs: number }[]>`
    with freed as (
      delete from ${sql(t.jobKeys)} k
      using ${sql(day.jobs)} h
      where h.idempotency_key is not null and h.unique_while_active is null
        and k.kind = h.kind and k.idempotency_key = h.idempotency_key and k.job_id = h.id
    )
    select (select count(*) from ${sql(day.jobs)})::int as jobs`
  await sql.begin(async (tx) => {
    await tx`select set_config('lock_timeout', ${DROP_LOCK_TIMEOUT}, true)`
    await tx`drop table ${tx(day.runs)}, ${tx(day.jobs)}`
  })
  return row?.jobs ?? 0
}
