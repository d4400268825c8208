/**
 * Where a limited kind stands against its limits: running and pending jobs per
 * key, and each rate window, for GET /limits/:kind (docs/design/flow-control.md,
 * "Visibility").
 */
import type { Fragment, Queryable, Sql } from '../db/client'
import type { Tables } from '../db/tables'
import type { FlowKey, LimitsDetail, RateWindow } from './model'
import { limitsColumns } from './sql'
import { claimsInWindow, windowOpensAt } from './window-sql'

/**
 * A rate window as the limited claim judges it (window-sql.ts): the claims in
 * the window, and, when they fill it, when a claim next fits. Null when `limit`
 * is (the kind has no such rate).
 */
function rateWindow(sql: Queryable, claims: Fragment, limit: Fragment, seconds: Fragment) {
  const claimed = claimsInWindow(sql, claims, seconds, sql`now()`)
  return sql`
    case when ${limit} is not null then json_build_object(
      'claims', ${claimed},
      'per_seconds', ${seconds},
      'opens_at', case when ${claimed} >= ${limit} then ${windowOpensAt(sql, claims, limit, seconds)} end)
    end`
}

/** A FlowKey or rate window as json_build_object left it: timestamps in Postgres' JSON text. */
type RawWindow = Omit<RateWindow, 'opens_at'> & { opens_at: string | null }
type RawKey = Omit<FlowKey, 'rate_window' | 'last_served_at'> & {
  rate_window: RawWindow | null
  last_served_at: string | null
}
type RawDetail = Omit<LimitsDetail, 'rate_window' | 'keys'> & { rate_window: RawWindow | null; keys: RawKey[] }

const iso = (stamp: string | null) => (stamp === null ? null : new Date(stamp).toISOString())
const windowOf = (w: RawWindow | null): RateWindow | null => w && { ...w, opens_at: iso(w.opens_at) }

/**
 * The statement of limitsDetailGet: a kind's limits with its counts (no row when
 * it has no limits), the `keysLimit` busiest keys listed (running, then pending
 * jobs, most first, then key). Apart so bench/flow-keys.ts times and explains the
 * very statement the route sends.
 *
 * The counts are exact, from one pass over each of the kind's parts of
 * jobs_flow_active_idx and jobs_flow_claim_idx, grouped by key (bitmap heap scan,
 * hash aggregate). Each pending job is read from the heap: the index holds the
 * key only as the expression `coalesce(concurrency_key, '')`, and Postgres will
 * not answer an expression from the index alone (no index-only scan). Measured
 * with 100,000 pending jobs over 10,000 keys (bench/flow-keys.ts): 40–55 ms; with
 * 1,000,000 over 100,000 keys, 0.55–0.8 s. A count per slot row capped at 10,000
 * would bound one huge key, but every key then costs its own probe (~15 µs): it
 * was 3–4 times slower at 100,000 jobs and 4–5 times at a million, so the cost
 * stays linear in the kind's pending jobs, uncapped.
 *
 * The busy keys come from the counts, so a key shows even if its slot row were
 * missing; the slot rows give the listed keys' last turn and rate window.
 */
export function limitsDetailStatement(sql: Queryable, t: Tables, kind: string, keysLimit: number) {
  return sql<RawDetail[]>`
    with active as (
      select coalesce(j.concurrency_key, '') as key, count(*)::int as n
      from ${sql(t.jobs)} j
      where j.kind = ${kind} and j.status = 'active' and j.flow_controlled
      group by 1
    ), pending as (
      select coalesce(j.concurrency_key, '') as key, count(*)::int as n
      from ${sql(t.jobs)} j
      where j.kind = ${kind} and j.status = 'pending' and j.flow_controlled
      group by 1
    ), busy as (
      -- One more than asked for: whether there are more.
      select key, coalesce(a.n, 0) as active, coalesce(p.n, 0) as pending
      from active a full join pending p using (key)
      order by 2 desc, 3 desc, 1
      limit ${keysLimit + 1}
    ), listed as (
      select b.*, row_number() over (order by b.active desc, b.pending desc, b.key) as ord
      from busy b
    )
    select ${limitsColumns(sql)},
      (select coalesce(sum(n), 0)::int from active) as active,
      (select coalesce(sum(n), 0)::int from pending) as pending,
      ${rateWindow(sql, sql`l.recent_claims`, sql`l.rate_limit`, sql`l.rate_seconds`)} as rate_window,
      (select coalesce(json_agg(json_build_object(
          'key', nullif(k.key, ''),
          'active', k.active,
          'pending', k.pending,
          'rate_window', ${rateWindow(sql, sql`s.recent_claims`, sql`l.rate_per_key_limit`, sql`l.rate_per_key_seconds`)},
          'last_served_at', s.last_served_at) order by k.ord), '[]')
        from listed k
        left join ${sql(t.flowSlots)} s on s.kind = l.kind and s.key = k.key
        where k.ord <= ${keysLimit}) as keys,
      (select count(*) > ${keysLimit} from busy) as keys_more
    from ${sql(t.limits)} l
    where l.kind = ${kind}`
}

/** A kind's limits with its counts, or null when it has none (see limitsDetailStatement). */
export async function limitsDetailGet(
  sql: Sql,
  t: Tables,
  kind: string,
  keysLimit: number,
): Promise<LimitsDetail | null> {
  const [row] = await limitsDetailStatement(sql, t, kind, keysLimit)
  if (!row) return null
  return {
    ...row,
    rate_window: windowOf(row.rate_window),
    keys: row.keys.map((k) => ({ ...k, rate_window: windowOf(k.rate_window), last_served_at: iso(k.last_served_at) })),
  }
}
