/**
 * The scrape-time read behind foreman_flow_key_pending (issue 12): the pending
 * depth of the largest concurrency keys. Its own statement beside the snapshot
 * (sql.ts), under the same statement timeout: its cost grows with the flow-
 * controlled backlog, and a read that runs out of time then costs this gauge
 * alone, not every table gauge.
 */
import type { Queryable, Sql } from '../db/client'
import type { Tables } from '../db/tables'
import { SCRAPE_STATEMENT_TIMEOUT } from './sql'

/** The pending jobs of one key of a kind with limits (key '' is the jobs without one). */
export interface FlowKeyDepth {
  kind: string
  key: string
  pending: number
}

/** How many keys foreman_flow_key_pending shows: a series per key of every tenant would swamp Prometheus. */
export const FLOW_KEYS_SHOWN = 20

/**
 * Pending jobs (due or not) per key of the kinds that have limits, the largest
 * FLOW_KEYS_SHOWN (ties by kind, then key). Kinds whose limits were removed keep
 * their jobs' flag, hence the limits table decides the kinds.
 *
 * Exact, so it reads every such job once: one bitmap scan of jobs_flow_claim_idx,
 * a visit to each job's heap row (the key is an index expression, which Postgres
 * never answers from the index alone), a hash aggregate and a top-20 sort.
 * Measured with 100,000 pending jobs over 10,000 keys (bench/flow-keys.ts): 40–45
 * ms on a quiet machine; with 1,000,000 over 100,000 keys, 0.6–0.9 s. No cheaper
 * exact plan exists on these indexes: a loose scan (a probe per key, capped) paid
 * ~15 µs per key and was 3–4 times slower, and an index-only variant (the key as
 * an INCLUDE column) was no faster than the bitmap scan. `kind = any(array(…))`,
 * not `kind in (select …)`: the semi-join became a sequential scan of every job
 * (~400 ms beside a million finished ones).
 */
export function flowKeysDepth(sql: Queryable, t: Tables) {
  return sql<FlowKeyDepth[]>`
    select j.kind, coalesce(j.concurrency_key, '') as key, count(*)::float8 as pending
    from ${sql(t.jobs)} j
    where j.status = 'pending' and j.flow_controlled
      and j.kind = any(array(select l.kind from ${sql(t.limits)} l))
    group by 1, 2
    order by 3 desc, 1, 2
    limit ${FLOW_KEYS_SHOWN}`
}

/** flowKeysDepth under the scrape's statement timeout. */
export async function metricsFlowKeysRead(sql: Sql, t: Tables): Promise<FlowKeyDepth[]> {
  const [, rows] = await sql.begin((tx) => [
    tx`select set_config('statement_timeout', ${SCRAPE_STATEMENT_TIMEOUT}, true)`,
    flowKeysDepth(tx, t),
  ])
  return rows
}
