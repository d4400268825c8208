/** Named statements on the limits table (one row per kind; a null column is no limit of that sort). */
import type postgres from 'postgres'
import type { Queryable, Sql } from '../db/client'
import type { Tables } from '../db/tables'
import { flowSlotsEnsured } from './enqueue-sql'
import type { Limits, LimitsBody } from './model'

/** The stored row in the answer's shape: each rate pair becomes `{limit, per_seconds}` or null. */
export const limitsColumns = (sql: Queryable) => sql`
  kind, max_active, max_active_per_key,
  case when rate_limit is null then null
       else json_build_object('limit', rate_limit, 'per_seconds', rate_seconds) end as rate,
  case when rate_per_key_limit is null then null
       else json_build_object('limit', rate_per_key_limit, 'per_seconds', rate_per_key_seconds) end as rate_per_key,
  updated_at`

/**
 * Stores a kind's limits, replacing every column of an existing row (PUT is a full
 * replace).
 *
 * A kind that had no limits also has its live jobs marked flow-controlled and
 * their slot rows made, in the same transaction, under a lock on the jobs table
 * that waits for every write in flight and holds off new ones until commit
 * (SHARE ROW EXCLUSIVE: reads go on). An enqueue either committed before the lock,
 * and the marking sees its job, or runs after the commit, and its own statement
 * sees the limits row. Without the lock an enqueue that began just before the
 * commit would leave an unmarked job that the plain claim no longer takes and the
 * limited claim cannot find. Changing limits a kind already has needs none of it.
 */
export function limitsUpsert(sql: Sql, t: Tables, kind: string, b: LimitsBody): Promise<Limits> {
  return sql.begin(async (tx) => {
    const [had] = await tx`select 1 from ${tx(t.limits)} where kind = ${kind}`
    if (!had) await markLiveJobs(tx, t, kind)
    return limitsStore(tx, t, kind, b)
  })
}

async function markLiveJobs(tx: postgres.TransactionSql, t: Tables, kind: string): Promise<void> {
  await tx`lock table ${tx(t.jobs)} in share row exclusive mode`
  await tx`
    with marked as (
      update ${tx(t.jobs)} j set flow_controlled = true
      where j.kind = ${kind} and j.status in ('pending', 'active') and not j.flow_controlled
      returning j.kind, j.concurrency_key, j.flow_controlled
    ), live as (
      select kind, concurrency_key, true as flow_controlled from ${tx(t.jobs)}
      where kind = ${kind} and status in ('pending', 'active') and flow_controlled
      union all
      select * from marked
    )
    ${flowSlotsEnsured(tx, t, 'live')}`
}

async function limitsStore(sql: Queryable, t: Tables, kind: string, b: LimitsBody): Promise<Limits> {
  const [row] = await sql<Limits[]>`
    insert into ${sql(t.limits)} as l
      (kind, max_active, max_active_per_key, rate_limit, rate_seconds, rate_per_key_limit, rate_per_key_seconds)
    values (${kind}, ${b.max_active ?? null}, ${b.max_active_per_key ?? null},
            ${b.rate?.limit ?? null}, ${b.rate?.per_seconds ?? null},
            ${b.rate_per_key?.limit ?? null}, ${b.rate_per_key?.per_seconds ?? null})
    on conflict (kind) do update set
      max_active = excluded.max_active, max_active_per_key = excluded.max_active_per_key,
      rate_limit = excluded.rate_limit, rate_seconds = excluded.rate_seconds,
      rate_per_key_limit = excluded.rate_per_key_limit, rate_per_key_seconds = excluded.rate_per_key_seconds,
      updated_at = now()
    returning ${limitsColumns(sql)}`
  if (!row) throw new Error(`upsert of the limits of ${kind} answered no row`)
  return row
}

/** Every kind's limits, by kind. */
export function limitsList(sql: Sql, t: Tables): Promise<Limits[]> {
  return sql<Limits[]>`select ${limitsColumns(sql)} from ${sql(t.limits)} order by kind`
}

/** Removes a kind's limits; answers whether it had any. */
export async function limitsDelete(sql: Sql, t: Tables, kind: string): Promise<boolean> {
  // The jobs keep their flag: the plain claim takes every job of a kind without
  // limits, and a later PUT marks only the ones still unmarked.
  const rows = await sql`
    with gone as (delete from ${sql(t.limits)} where kind = ${kind} returning kind),
    slots as (delete from ${sql(t.flowSlots)} s using gone where s.kind = gone.kind)
    select kind from gone`
  return rows.length > 0
}
