/**
 * What a GIN index on jobs.params (jsonb_path_ops, the index `GET /jobs?params=`
 * can use) costs enqueue. Two Foreman instances in this process on one database,
 * one prefix with the index and one without; rounds alternate which goes first,
 * and each figure is the median over the rounds (the machine is shared and noisy).
 *
 * Workloads, each with realistic small params (a customer id, an order, tags):
 *   single     POST /jobs, 16 concurrent clients
 *   batch      POST /jobs/batch of 100, 4 concurrent clients
 *   statement  jobInsertMany straight on the pool (batches of 100, 4 at once):
 *              the database's share alone, without HTTP and JSON on the same cores
 *
 *   bun bench/params-index.ts [rounds=7] [single-jobs=2000] [batch-jobs=20000]
 */
import { newJobId } from '../src/ids'
import { jobInsertMany } from '../src/jobs/insert-sql'
import { type BenchInstance, benchDatabase, percentile, post, round, startInstance, timed } from './support'

const ROUNDS = Number(process.argv[2] ?? 7)
const SINGLE_JOBS = Number(process.argv[3] ?? 2000)
const BATCH_JOBS = Number(process.argv[4] ?? 20_000)
const BATCH = 100

const db = await benchDatabase()
const stamp = Date.now().toString(36)
const without = await startInstance(db.url, `bench_pi_off_${stamp}_`, false)
const withIndex = await startInstance(db.url, `bench_pi_on_${stamp}_`, false)
await withIndex.sql.unsafe(
  `create index ${withIndex.tables.prefix}jobs_params_idx on ${withIndex.tables.jobs} using gin (params jsonb_path_ops)`,
)

let serial = 0
/** Params shaped like a producer's: a customer, an order with items, tags. */
function params() {
  const n = serial++
  return {
    customer: n % 5000,
    order: { id: `ord-${n}`, total: (n % 997) + 0.5, items: [{ sku: `SKU-${n % 300}`, qty: (n % 5) + 1 }] },
    email: `user${n % 5000}@example.com`,
    tags: ['web', n % 2 ? 'priority' : 'standard'],
  }
}

type Workload = (instance: BenchInstance) => Promise<number>

/** Jobs per second, one POST /jobs at a time per client. */
const single: Workload = async ({ base }) => {
  let left = SINGLE_JOBS
  const sec = await timed(16, async () => {
    if (left-- <= 0) return false
    const res = await post(`${base}/jobs`, { kind: 'params-bench', params: params() })
    if (res.status !== 201) throw new Error(`enqueue answered ${res.status}`)
    await res.text()
    return true
  })
  return SINGLE_JOBS / sec
}

/** Jobs per second, POST /jobs/batch of BATCH. */
const batch: Workload = async ({ base }) => {
  let left = BATCH_JOBS / BATCH
  const sec = await timed(4, async () => {
    if (left-- <= 0) return false
    const jobs = Array.from({ length: BATCH }, () => ({ kind: 'params-bench', params: params() }))
    const res = await post(`${base}/jobs/batch`, { jobs })
    if (res.status !== 200) throw new Error(`batch enqueue answered ${res.status}`)
    await res.text()
    return true
  })
  return BATCH_JOBS / sec
}

/** Jobs per second, the batch insert statement alone. */
const statement: Workload = async ({ sql, tables }) => {
  let left = BATCH_JOBS / BATCH
  const sec = await timed(4, async () => {
    if (left-- <= 0) return false
    const items = Array.from({ length: BATCH }, (_, ord) => ({
      ord,
      id: newJobId(),
      kind: 'params-bench',
      queue: 'default',
      service: '',
      idempotencyKey: null,
      concurrencyKey: null,
      params: params(),
      priority: 0,
      maxAttempts: 1,
      scheduledAt: null,
      flowControlled: false,
    }))
    await jobInsertMany(sql, tables, items)
    return true
  })
  return BATCH_JOBS / sec
}

const workloads = { single, batch, statement }
const report: Record<string, unknown> = {
  machine: `${navigator.hardwareConcurrency} cores, shared; figures vary run to run`,
  rounds: ROUNDS,
}
try {
  for (const [name, run] of Object.entries(workloads)) {
    // Warm both up (JIT, prepared statements), then alternate which goes first.
    await run(without)
    await run(withIndex)
    const off: number[] = []
    const on: number[] = []
    for (let r = 0; r < ROUNDS; r++) {
      if (r % 2 === 0) {
        off.push(await run(without))
        on.push(await run(withIndex))
      } else {
        on.push(await run(withIndex))
        off.push(await run(without))
      }
    }
    const median = (xs: number[]) => percentile(xs, 50)
    // Each round's pair ran back to back, so its ratio is the least noisy reading.
    const pairRatios = on.map((v, i) => v / (off[i] ?? Number.NaN))
    report[name] = {
      jobs_per_sec_median: { without_index: Math.round(median(off)), with_index: Math.round(median(on)) },
      with_vs_without_median_ratio: round(median(on) / median(off), 3),
      median_of_paired_ratios: round(median(pairRatios), 3),
      cost_percent: round((1 - median(pairRatios)) * 100, 1),
      rounds: { without_index: off.map(Math.round), with_index: on.map(Math.round) },
    }
    console.error(name, JSON.stringify(report[name]))
  }
  const [size] = await withIndex.sql<{ index: string; table: string }[]>`
    select pg_size_pretty(pg_relation_size(${`${withIndex.tables.prefix}jobs_params_idx`})) as index,
           pg_size_pretty(pg_relation_size(${withIndex.tables.jobs})) as table`
  report.sizes_with_index = size
} finally {
  await Promise.all([without.close(true), withIndex.close(true)])
  await db.stop()
}
const out = JSON.stringify(report, null, 2)
console.log(out)
// Named like the other results (2026-12-03T0900Z): no colon, which some file systems refuse.
const iso = new Date().toISOString()
await Bun.write(`${import.meta.dir}/results/params-index-${iso.slice(0, 13)}${iso.slice(14, 16)}Z.json`, `${out}\n`)
