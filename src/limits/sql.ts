/** Named statements on the limits table (one row per kind; a null column is no limit of that sort). */
import type { Queryable, Sql } from '../db/client'
import type { Tables } from '../db/tables'
import { markLiveJobsAhead, markLiveJobsLocked } from './marking-sql'
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
 * replace). A kind that had none first has its live jobs marked (marking-sql.ts).
 * Changing limits a kind already has needs none of that.
 */
export async function limitsUpsert(sql: Sql, t: Tables, kind: string, b: LimitsBody): Promise<Limits> {
  const [replaced] = await sql<Limits[]>`
    update ${sql(t.limits)} set ${limitsSet(sql, b)}, updated_at = now()
    where kind = ${kind}
    returning ${limitsColumns(sql)}`
  if (replaced) return replaced
  await markLiveJobsAhead(sql, t, kind)
  return sql.begin(async (tx) => {
    await markLiveJobsLocked(tx, t, kind)
    return limitsStore(tx, t, kind, b)
  })
}

/** Every limit column set from a body (a full replace: a field left out is null). */
function limitsSet(sql: Queryable, b: LimitsBody) {
  return sql`
    max_active = ${b.max_active ?? null}, max_active_per_key = ${b.max_active_per_key ?? null},
    rate_limit = ${b.rate?.limit ?? null}, rate_seconds = ${b.rate?.per_seconds ?? null},
    rate_per_key_limit = ${b.rate_per_key?.limit ?? null}, rate_per_key_seconds = ${b.rate_per_key?.per_seconds ?? null}`
}

async function limitsStore(sql: Queryable, t: Tables, kind: string, b: LimitsBody): Promise<Limits> {
  const [row] = await sql<Limits[]>`
    insert into ${sql(t.limits)} as l
      (kind, max_active, max_active_per_key, rate_limit, rate_seconds, rate_per_key_limit, rate_per_key_seconds)
    values (${kind}, ${b.max_active ?? null}, ${b.max_active_per_key ?? null},
            ${b.rate?.limit ?? null}, ${b.rate?.per_seconds ?? null},
            ${b.rate_per_key?.limit ?? null}, ${b.rate_per_key?.per_seconds ?? null})
    -- Another PUT of the same new kind got there first: this one replaces it.
    on conflict (kind) do update set ${limitsSet(sql, b)}, updated_at = now()
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
