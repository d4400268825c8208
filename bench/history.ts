/**
 * History that never slows the hot path (issue 14), in three measures:
 *
 * 1. Processing with 0 vs H historic jobs, same run, interleaved rounds: one
 *    instance per prefix, N jobs enqueued in batches, then W workers looping
 *    claim → complete over HTTP while the history sweep moves finished jobs out
 *    every second. Jobs/s and claim latency (p50, p99) per condition; the
 *    historic prefix holds H jobs (and a run each) over 10 days of partitions.
 * 2. Retention of one day (H / 10 jobs): dropExpiredHistory drops it; time, and
 *    the dead tuples it leaves (none: no row is deleted).
 * 3. The hot tables' size while P jobs go through them: batches of 100,000
 *    inserted, claimed (run inserted), completed and moved, by SQL shaped as
 *    the app's statements leave the rows (not over HTTP: 10M jobs over HTTP
 *    would take hours on this machine), with autovacuum as configured.
 *
 *   bun bench/history.ts [historic=10000000] [processed=3000000] [rounds=3]
 */
import type { Sql } from '../src/db/client'
import { unbounded } from '../src/db/deadline'
import type { Tables } from '../src/db/tables'
import { dropExpiredHistory, type HistoryDeps, moveFinishedJobs } from '../src/history/service'
import { historyEnsureDay } from '../src/history/sql'
import { benchDatabase, percentile, post, round, startInstance } from './support'

const HISTORIC = Number(process.argv[2] ?? 10_000_000)
const PROCESSED = Number(process.argv[3] ?? 3_000_000)
const ROUNDS = Number(process.argv[4] ?? 3)
const JOBS = 10_000
const WORKERS = 16
const DAYS = 10
const CHUNK = 250_000
const DAY_MS = 86_400_000

const log = (line: string) => console.error(`[history] ${line}`)
const historyDeps = (sql: Sql, tables: Tables): HistoryDeps => ({ sql, tables, config: { historyAfterSec: 1 } })
const startOfToday = () => Math.floor(Date.now() / DAY_MS) * DAY_MS
const dayString = (at: number) => new Date(at).toISOString().slice(0, 10)

/** Loads `count` finished jobs (90% succeeded, 7% failed, 3% cancelled) and a run each, over the last DAYS days. */
async function loadHistory(sql: Sql, t: Tables, count: number): Promise<void> {
  const perDay = Math.ceil(count / DAYS)
  for (let d = 0; d < DAYS; d++) {
    const day = startOfToday() - (DAYS - d) * DAY_MS
    await historyEnsureDay(sql, t, dayString(day))
    for (let lo = d * perDay; lo < Math.min(count, (d + 1) * perDay); lo += CHUNK) {
      const hi = Math.min(count, (d + 1) * perDay, lo + CHUNK) - 1
      await sql`
        with jobs as (
          insert into ${sql(t.jobsHistory)}
            (id, kind, params, status, attempt_count, result, enqueued_at, started_at, completed_at, updated_at)
          select 'job_00' || lpad(upper(to_hex(n)), 24, '0'),
                 'kind-' || n % 10, jsonb_build_object('n', n),
                 case when n % 100 < 90 then 'succeeded' when n % 100 < 97 then 'failed' else 'cancelled' end,
                 1, case when n % 100 < 90 then '{"ok": true}'::jsonb end,
                 at - interval '2 seconds', at - interval '1 second', at, at
          from generate_series(${lo}::bigint, ${hi}::bigint) n,
               lateral (select ${new Date(day)}::timestamptz + make_interval(secs => (n - ${lo}) * ${86_000 / perDay}::float8) as at) a
          returning id, status, started_at, completed_at
        )
        insert into ${sql(t.runsHistory)}
          (id, job_id, attempt, worker_id, status, result, error, started_at, finished_at, created_at, updated_at, job_completed_at)
        select 'run_' || substr(id, 5), id, 1, 'bench-history',
               case when status = 'succeeded' then 'succeeded' else 'failed' end,
               case when status = 'succeeded' then '{"ok": true}'::jsonb end,
               case when status = 'succeeded' then null else 'boom' end,
               started_at, completed_at, started_at, completed_at, completed_at
        from jobs`
    }
    log(`loaded day ${d + 1} of ${DAYS}`)
  }
  await sql.unsafe(`analyze "${t.jobsHistory}", "${t.runsHistory}"`)
}

/** One round on one instance: N jobs enqueued, then W workers claim → complete; jobs/s and claim latencies. */
async function processRound(base: string, kind: string) {
  for (let i = 0; i < JOBS; i += 500) {
    const jobs = Array.from({ length: Math.min(500, JOBS - i) }, (_, k) => ({ kind, params: { n: i + k } }))
    const res = await post(`${base}/jobs/batch`, { jobs })
    if (res.status !== 201 && res.status !== 200) throw new Error(`batch enqueue answered ${res.status}`)
    await res.text()
  }
  const claimMs: number[] = []
  let done = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: WORKERS }, async () => {
      for (;;) {
        const asked = performance.now()
        const claim = await post(`${base}/claim`, { kinds: [kind], worker_id: 'bench', lease_seconds: 60 })
        if (claim.status === 204) return
        const { run } = (await claim.json()) as { run: { id: string } }
        claimMs.push(performance.now() - asked)
        const complete = await post(`${base}/runs/${run.id}/complete`, { worker_id: 'bench', result: { ok: true } })
        if (complete.status !== 200) throw new Error(`complete answered ${complete.status}`)
        await complete.text()
        done++
      }
    }),
  )
  const sec = (performance.now() - started) / 1000
  if (done !== JOBS) throw new Error(`completed ${done} of ${JOBS}`)
  return { jobsPerSec: JOBS / sec, claimP50: percentile(claimMs, 50), claimP99: percentile(claimMs, 99) }
}

/** Moves finished jobs every second until stopped, as every instance's sweep does. */
function moveEverySecond(deps: HistoryDeps) {
  let stopped = false
  const loop = (async () => {
    while (!stopped) {
      await moveFinishedJobs(deps)
      await Bun.sleep(1000)
    }
  })()
  return async () => {
    stopped = true
    await loop
  }
}

/** Bytes of a table with its indexes and TOAST; for a partitioned one, of all its partitions. */
async function tableBytes(sql: Sql, table: string): Promise<number> {
  const [row] = await sql<{ bytes: number }[]>`
    select case when c.relkind = 'p'
             then (select coalesce(sum(pg_total_relation_size(relid)), 0) from pg_partition_tree(c.oid))
             else pg_total_relation_size(c.oid) end::float8 as bytes
    from pg_class c where c.oid = to_regclass(${table})`
  return row?.bytes ?? 0
}

const mb = (bytes: number) => round(bytes / 1024 / 1024, 1)

/** P jobs through the hot tables in batches, moved to history as they finish; the hot tables' size along the way. */
async function churn(sql: Sql, t: Tables, processed: number) {
  const deps = historyDeps(sql, t)
  const samples: { processed: number; jobsMb: number; runsMb: number }[] = []
  const batch = 100_000
  const started = performance.now()
  for (let lo = 0; lo < processed; lo += batch) {
    const hi = Math.min(processed, lo + batch) - 1
    const tb = performance.now()
    await sql`
      insert into ${sql(t.jobs)} (id, kind, params)
      select 'job_01' || lpad(upper(to_hex(n)), 24, '0'), 'churn-' || n % 10, jsonb_build_object('n', n)
      from generate_series(${lo}::bigint, ${hi}::bigint) n`
    await sql`
      with claimed as (
        update ${sql(t.jobs)} set status = 'active', attempt_count = 1, started_at = now(), updated_at = now()
        where status = 'pending' and kind like 'churn-%'
        returning id
      )
      insert into ${sql(t.runs)} (id, job_id, attempt, worker_id, lease_expires_at)
      select 'run_' || substr(id, 5), id, 1, 'churn', now() + interval '1 minute' from claimed`
    await sql`
      with runs as (
        update ${sql(t.runs)} set status = 'succeeded', lease_expires_at = null, result = '{"ok": true}',
          finished_at = now(), updated_at = now()
        where worker_id = 'churn' and lease_expires_at is not null
        returning job_id
      )
      update ${sql(t.jobs)} j set status = 'succeeded', result = '{"ok": true}', completed_at = now(), updated_at = now()
      from runs where j.id = runs.job_id`
    const t0 = performance.now()
    await moveFinishedJobs(deps, 0)
    if (process.env.BENCH_TRACE) log(`move ${Math.round(performance.now() - t0)} ms, batch ${Math.round(t0 - tb)} ms`)
    if ((hi + 1) % 1_000_000 === 0 || hi + 1 === processed) {
      samples.push({
        processed: hi + 1,
        jobsMb: mb(await tableBytes(sql, t.jobs)),
        runsMb: mb(await tableBytes(sql, t.runs)),
      })
      log(`churned ${hi + 1}: ${JSON.stringify(samples.at(-1))}`)
    }
  }
  return {
    processed,
    seconds: round((performance.now() - started) / 1000, 1),
    samples,
    historyMb: { jobs: mb(await tableBytes(sql, t.jobsHistory)), runs: mb(await tableBytes(sql, t.runsHistory)) },
  }
}

const db = await benchDatabase()
const stamp = Date.now().toString(36)
const empty = await startInstance(db.url, `bh0_${stamp}_`)
const loaded = await startInstance(db.url, `bh1_${stamp}_`)
try {
  let started = performance.now()
  // Past the pool's per-call deadline (10 s): loading a day takes longer.
  await loadHistory(unbounded(loaded.sql), loaded.tables, HISTORIC)
  const loadSec = (performance.now() - started) / 1000
  log(`loaded ${HISTORIC} historic jobs in ${loadSec.toFixed(0)} s`)

  const results: Record<'empty' | 'loaded', Awaited<ReturnType<typeof processRound>>[]> = { empty: [], loaded: [] }
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, instance] of [
      ['empty', empty],
      ['loaded', loaded],
    ] as const) {
      const stop = moveEverySecond(historyDeps(instance.sql, instance.tables))
      results[name].push(await processRound(instance.base, `bench-${r}`))
      await stop()
      log(`round ${r + 1} ${name}: ${JSON.stringify(results[name].at(-1))}`)
    }
  }
  const median = (xs: number[]) => percentile(xs, 50)
  const summary = (name: 'empty' | 'loaded') => ({
    jobs_per_sec: Math.round(median(results[name].map((x) => x.jobsPerSec))),
    claim_p50_ms: round(median(results[name].map((x) => x.claimP50))),
    claim_p99_ms: round(median(results[name].map((x) => x.claimP99))),
  })

  // Retention: the oldest loaded day expires, and nothing newer.
  const oldestDayEnd = startOfToday() - (DAYS - 1) * DAY_MS
  const retentionDays = (Date.now() - oldestDayEnd) / DAY_MS
  started = performance.now()
  const { dropped } = await dropExpiredHistory(historyDeps(loaded.sql, loaded.tables), retentionDays)
  const retentionSec = (performance.now() - started) / 1000
  const [dead] = await loaded.sql<{ n: number }[]>`
    select coalesce(sum(n_dead_tup), 0)::int as n from pg_stat_user_tables
    where relname like ${`${loaded.tables.prefix}%history%`}`

  const hot = await churn(unbounded(empty.sql), empty.tables, PROCESSED)

  console.log(
    JSON.stringify(
      {
        historic_jobs: HISTORIC,
        history_load_sec: Math.round(loadSec),
        rounds: ROUNDS,
        jobs_per_round: JOBS,
        workers: WORKERS,
        processing: { history_0: summary('empty'), [`history_${HISTORIC}`]: summary('loaded') },
        throughput_ratio_loaded_vs_empty: round(summary('loaded').jobs_per_sec / summary('empty').jobs_per_sec, 3),
        claim_p50_ratio_loaded_vs_empty: round(summary('loaded').claim_p50_ms / summary('empty').claim_p50_ms, 3),
        retention: { dropped_jobs: dropped, seconds: round(retentionSec, 3), dead_tuples_in_history_after: dead?.n },
        hot_tables: hot,
      },
      null,
      2,
    ),
  )
} finally {
  await empty.close(true)
  await loaded.close(true)
  await db.stop()
}
