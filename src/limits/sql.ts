/** Named statements on the limits table (one row per kind; a null column is no limit of that sort). */
import type { Sql } from '../db/client'
import type { Tables } from '../db/tables'
import type { Limits, LimitsBody } from './model'

/** The stored row in the answer's shape: each rate pair becomes `{limit, per_seconds}` or null. */
const limitsColumns = (sql: Sql) => sql`
  kind, max_active, max_active_per_key,
  case when rate_limit is null then null
       else json_build_object('limit', rate_limit, 'per_seconds', rate_seconds) end as rate,
  case when rate_per_key_limit is null then null
       else json_build_object('limit', rate_per_key_limit, 'per_seconds', rate_per_key_seconds) end as rate_per_key,
  updated_at`

/** Stores a kind's limits, replacing every column of an existing row (PUT is a full replace). */
export async function limitsUpsert(sql: Sql, t: Tables, kind: string, b: LimitsBody): Promise<Limits> {
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

/** A kind's limits, or null when it has none. */
export async function limitsGet(sql: Sql, t: Tables, kind: string): Promise<Limits | null> {
  const [row] = await sql<Limits[]>`select ${limitsColumns(sql)} from ${sql(t.limits)} where kind = ${kind}`
  return row ?? null
}

/** Every kind's limits, by kind. */
export function limitsList(sql: Sql, t: Tables): Promise<Limits[]> {
  return sql<Limits[]>`select ${limitsColumns(sql)} from ${sql(t.limits)} order by kind`
}

/** Removes a kind's limits; answers whether it had any. */
export async function limitsDelete(sql: Sql, t: Tables, kind: string): Promise<boolean> {
  const rows = await sql`delete from ${sql(t.limits)} where kind = ${kind} returning kind`
  return rows.length > 0
}
