/**
 * What the flow-control views cost (issue 12): the statement of GET /limits/:kind
 * (limitsDetailStatement) and the scrape's foreman_flow_key_pending statement
 * (flowKeysDepth), on one limited kind with `pending` jobs over `keys` keys
 * (plus 1% without a key, 200 running over 100 keys, a slot row per key with a
 * rate window), beside `finished` jobs of other kinds and 50,000 pending ones of
 * a kind without limits. Also times the alternative the GET did not take: a count
 * per slot row capped at 10,000 (bounds one huge key; pays a probe per key).
 *
 * Each figure: min / median / p90 of `rounds` runs after 3 warm-ups; each
 * statement's then with its plan's nodes (EXPLAIN ANALYZE); last, the route and a
 * whole scrape over HTTP. The machine is shared: trust the min and median.
 *
 *   bun bench/flow-keys.ts [pending=100000] [keys=10000] [finished=1000000] [rounds=30]
 */
import type { PendingQuery, Row } from 'postgres'
import { createSql, type Sql } from '../src/db/client'
import { dropTables, migrate } from '../src/db/migrate'
import { type Tables, tablesFor } from '../src/db/tables'
import { limitsDetailStatement } from '../src/limits/keys-sql'
import { flowKeysDepth } from '../src/metrics/flow-sql'
import { benchDatabase, percentile, round, startInstance } from './support'

const PENDING = Number(process.argv[2] ?? 100_000)
const KEYS = Number(process.argv[3] ?? 10_000)
const FINISHED = Number(process.argv[4] ?? 1_000_000)
const ROUNDS = Number(process.argv[5] ?? 30)
const KIND = 'flow'

const db = await benchDatabase()
// Loading a million rows and VACUUM take longer than a request's 10 s deadline.
const sql = createSql({ url: db.url, max: 2, applicationName: 'bench-flow-keys', deadlineSec: 600 })
const t = tablesFor(`bench_fk_${Date.now().toString(36)}_`)

/** Loads the backlog straight into the tables, shaped as enqueue and claim leave it. */
async function load(sql: Sql, t: Tables): Promise<void> {
  const jobs = sql(t.jobs)
  await sql`insert into ${sql(t.limits)} (kind, max_active_per_key, rate_per_key_limit, rate_per_key_seconds, rate_limit, rate_seconds)
    values (${KIND}, 2, 5, 1, 100, 1)`
  // Keyed pending jobs spread over the keys as enqueues over time would leave them.
  await sql`insert into ${jobs} (id, kind, concurrency_key, priority, status, flow_controlled, enqueued_at)
    select 'job_p' || lpad(i::text, 12, '0'), ${KIND}, 'tenant-' || (i % ${KEYS}), i % 3, 'pending', true,
           now() - make_interval(secs => i)
    from generate_series(1, ${PENDING}) i`
  await sql`insert into ${jobs} (id, kind, status, flow_controlled)
    select 'job_u' || lpad(i::text, 12, '0'), ${KIND}, 'pending', true from generate_series(1, ${PENDING / 100}) i`
  await sql`insert into ${jobs} (id, kind, concurrency_key, status, flow_controlled, started_at, attempt_count)
    select 'job_a' || lpad(i::text, 12, '0'), ${KIND}, 'tenant-' || (i % 100), 'active', true, now(), 1
    from generate_series(1, 200) i`
  await sql`insert into ${jobs} (id, kind, status, completed_at)
    select 'job_f' || lpad(i::text, 12, '0'), 'done-' || (i % 5), 'succeeded', now() from generate_series(1, ${FINISHED}) i`
  await sql`insert into ${jobs} (id, kind, status) select 'job_o' || lpad(i::text, 12, '0'), 'plain', 'pending'
    from generate_series(1, 50000) i`
  await sql`insert into ${sql(t.flowSlots)} (kind, key, last_served_at, recent_claims)
    select kind, coalesce(concurrency_key, ''), now() - random() * interval '1 hour',
           array[now() - interval '0.2 s', now() - interval '0.5 s', now() - interval '3 s']
    from ${jobs} where flow_controlled group by 1, 2`
  await sql.unsafe(`vacuum analyze ${t.jobs}`)
  await sql.unsafe(`vacuum analyze ${t.flowSlots}`)
}

/** Runs `step` ROUNDS times after 3 warm-ups; answers "min … ms, median … ms, p90 … ms". */
async function timings(step: () => PromiseLike<unknown>): Promise<string> {
  for (let i = 0; i < 3; i++) await step()
  const ms: number[] = []
  for (let i = 0; i < ROUNDS; i++) {
    const started = performance.now()
    await step()
    ms.push(performance.now() - started)
  }
  const [min, median, p90] = [percentile(ms, 0), percentile(ms, 50), percentile(ms, 90)].map((v) => round(v, 1))
  return `min ${min} ms, median ${median} ms, p90 ${p90} ms`
}

/** Times `statement`, then prints its plan's nodes. */
async function measure<T extends Row[]>(label: string, statement: () => PendingQuery<T>): Promise<void> {
  console.log(`\n${label}: ${await timings(statement)}`)
  const plan = await sql<{ 'QUERY PLAN': string }[]>`explain (analyze, buffers, costs off) ${statement()}`
  const shape = /Scan|Aggregate|Join|Sort|Limit|Loop|SubPlan|InitPlan|Execution Time|Buffers: shared/
  for (const row of plan) if (shape.test(row['QUERY PLAN'])) console.log(`  ${row['QUERY PLAN']}`)
}

/** Answers a GET's body, failing on anything but a 200. */
async function get(url: string): Promise<string> {
  const res = await fetch(url)
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`)
  return res.text()
}

try {
  await migrate(sql, t)
  const loadStarted = performance.now()
  await load(sql, t)
  console.log(
    `loaded ${PENDING} pending jobs over ${KEYS} keys (+${PENDING / 100} without a key), ${FINISHED} finished, in ${round((performance.now() - loadStarted) / 1000, 1)} s`,
  )
  await measure('GET /limits/:kind (limitsDetailStatement, keys_limit 20)', () =>
    limitsDetailStatement(sql, t, KIND, 20),
  )
  await measure('scrape: foreman_flow_key_pending (flowKeysDepth)', () => flowKeysDepth(sql, t))
  await measure(
    'not taken: pending per slot row, capped at 10,000',
    () => sql`
      select s.key, (select count(*) from (
        select 1 from ${sql(t.jobs)} j
        where j.kind = s.kind and coalesce(j.concurrency_key, '') = s.key and j.status = 'pending' and j.flow_controlled
        limit 10000) x) as pending
      from ${sql(t.flowSlots)} s where s.kind = ${KIND}`,
  )
  // End to end, over HTTP: the route, and a whole scrape (the flow read beside the snapshot).
  const foreman = await startInstance(db.url, t.prefix, false)
  try {
    console.log(
      `\nGET /foreman/limits/${KIND} over HTTP: ${await timings(() => get(`${foreman.base}/limits/${KIND}`))}`,
    )
    console.log(`GET /foreman/metrics over HTTP: ${await timings(() => get(`${foreman.base}/metrics`))}`)
  } finally {
    await foreman.close(false)
  }
} finally {
  await dropTables(sql, t)
  await sql.end({ timeout: 5 })
  await db.stop()
}
