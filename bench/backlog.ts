/**
 * Flat under backlog (issue 9): each hot statement, called through its statement
 * function, timed and explained on near-empty tables and on the same tables under
 * a backlog, in one database:
 *   empty   the working set only: 600 pending (kinds a, b, c), 200 active with
 *           running runs (20 of them with expired leases), 5 finished jobs of kind `rare`;
 *   loaded  the same working set plus 1,000,000 finished jobs with their runs,
 *           300,000 pending across a, b, c, 100,000 of kind c waiting out a retry
 *           backoff (their failed runs too, at the head of c's queue) and 10,000
 *           scheduled for tomorrow; then VACUUM ANALYZE.
 * Statements that change state act on fresh targets each time (claimed beforehand,
 * not timed) and the backlog is put back after each (the jobs deleted, as many
 * enqueued), so both sets keep their size. Tables and their time line:
 * tests/support/backlog-groups.ts; the statements: tests/support/hot-statements.ts.
 *
 * Per statement: median and p95 over up to N executions after 5 warm-ups (slow ones
 * stop after 20 s and at least 10), loaded/empty, and the plan of one more
 * execution on each set, the one Postgres settles on after 8 calls (generic or
 * custom): rows read (table and index rows, scans only) and rows touched (every node). ✓ when loaded is within 2× of empty and rows read did not
 * grow by more than the slack of tests/hot-plans.test.ts, which asserts the shapes.
 *
 *   bun bench/backlog.ts [iterations=50]     (npm run bench:backlog)
 *   SCALE=0.05 shrinks the backlog for a quick try; KEEP=1 keeps the tables.
 *
 * Then pickup latency on each set (bench/backlog-pickup.ts): enqueue → a waiting claimer.
 *
 * Writes bench/results/backlog-<date>.{json,md} and backlog-latest.{json,md}.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createSql } from '../src/db/client'
import { dropTables, migrate } from '../src/db/migrate'
import { tablesFor } from '../src/db/tables'
import { type Backlog, BENCH_BACKLOG, BENCH_WORKING_SET, loadBacklog, loadWorkingSet } from '../tests/support/backlog'
import { checkLoaderFidelity } from '../tests/support/backlog-fidelity'
import { countByStatus, vacuumAnalyze } from '../tests/support/backlog-stats'
import { type CallSummary, createExplainer, formatPlan } from '../tests/support/explain'
import {
  explainHot,
  HOT_STATEMENTS,
  type HotContext,
  type HotStatement,
  rowsFlat,
  rowsSlack,
  timeHot,
} from '../tests/support/hot-statements'
import { pickupLatency } from './backlog-pickup'
import { benchDatabase, percentile, round } from './support'

const ITERATIONS = Number(process.argv[2] ?? 50)
const WARMUP = 5
const BUDGET_MS = 20_000
const SCALE = Number(process.env.SCALE ?? 1)
const backlog: Backlog = {
  finished: Math.round(BENCH_BACKLOG.finished * SCALE),
  pending: Math.round(BENCH_BACKLOG.pending * SCALE),
  backoff: Math.round(BENCH_BACKLOG.backoff * SCALE),
  tomorrow: Math.round(BENCH_BACKLOG.tomorrow * SCALE),
}

/** One side (empty or loaded) of a statement's row. */
interface Side {
  median_ms: number
  p95_ms: number
  executions: number
  /** Execution Time of the explained execution: the server's work, without the round trip or the commit. */
  server_ms: number
  rows_read: number
  rows_touched: number
  buffers: number
  largest_sort_input: number
  /** Which plan was explained: the one Postgres settled on after 8 calls. */
  plan: 'custom' | 'generic' | 'mixed'
  seq_scans: string[]
  indexes: string[]
}

/** One statement's row of the report. */
interface Row {
  statement: string
  batch: number
  empty: Side
  loaded: Side
  ratio: number
  flat: boolean
  ok: boolean
  why: string[]
  loaded_plan: string
}

const since = (t0: number) => (performance.now() - t0) / 1000
const git = (...args: string[]) =>
  Bun.spawnSync(['git', ...args])
    .stdout.toString()
    .trim()

// What ran: taken before the run, since others may commit while it goes.
const commit = `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--', 'src', 'migrations') ? ' + uncommitted changes to src or migrations' : ''}`
const db = await benchDatabase()
const sql = createSql({ url: db.url, max: 4, applicationName: 'foreman-bench-backlog' })
const stamp = Date.now().toString(36)
const emptyT = tablesFor(`bl_${stamp}_e_`)
const loadedT = tablesFor(`bl_${stamp}_l_`)
const explainer = createExplainer(db.url)

function side(times: number[], plan: CallSummary, prefix: string): Side {
  const strip = (name: string) => name.replace(prefix, '')
  return {
    median_ms: round(percentile(times, 50), 3),
    p95_ms: round(percentile(times, 95), 3),
    executions: times.length,
    server_ms: round(plan.executionMs, 3),
    rows_read: plan.rowsRead,
    rows_touched: plan.rowsTouched,
    buffers: plan.buffers,
    largest_sort_input: Math.max(0, ...plan.sorts.map((s) => s.inputRows)),
    plan: plan.genericPlans === 0 ? 'custom' : plan.genericPlans === plan.statements.length ? 'generic' : 'mixed',
    seq_scans: plan.seqScans.map(strip),
    indexes: plan.indexes.map(strip),
  }
}

async function measure(s: HotStatement, ctx: HotContext): Promise<{ times: number[]; plan: CallSummary }> {
  await timeHot(ctx, s, WARMUP, Number.POSITIVE_INFINITY)
  const times = await timeHot(ctx, s, ITERATIONS, BUDGET_MS)
  // The plan Postgres settles on after a few calls (generic or not), as the timed pool did.
  const plan = await explainHot(explainer, ctx, s, { settle: 8 })
  return { times, plan }
}

const pad = (v: unknown, n: number) => String(v).padStart(n)
const header = `${'statement'.padEnd(38)} ${pad('empty ms', 9)} ${pad('loaded ms', 10)} ${pad('ratio', 7)} ${pad(
  'rows read e/l',
  17,
)} ${pad('touched e/l', 17)}  flag`
const line = (r: Row) =>
  `${r.statement.padEnd(38)} ${pad(r.empty.median_ms.toFixed(3), 9)} ${pad(r.loaded.median_ms.toFixed(3), 10)} ${pad(
    `${r.ratio.toFixed(2)}×`,
    7,
  )} ${pad(`${r.empty.rows_read}/${r.loaded.rows_read}`, 17)} ${pad(`${r.empty.rows_touched}/${r.loaded.rows_touched}`, 17)}  ${
    r.ok ? '✓' : `✗ ${r.why.join('; ')}`
  }`

try {
  const t0 = performance.now()
  await migrate(sql, emptyT)
  await migrate(sql, loadedT)
  const fidelity = await checkLoaderFidelity(sql, `bl_${stamp}_`)
  if (fidelity.length > 0) {
    console.log(`!! the loader no longer writes what the statements write:\n  ${fidelity.join('\n  ')}`)
  }
  await loadWorkingSet(sql, emptyT, BENCH_WORKING_SET)
  await loadWorkingSet(sql, loadedT, BENCH_WORKING_SET)
  let lastPrint = 0
  await loadBacklog(sql, loadedT, backlog, (group, done, count) => {
    if (performance.now() - lastPrint > 5000 || done === count) {
      lastPrint = performance.now()
      console.log(`  loading ${group}: ${done}/${count} (${since(t0).toFixed(0)} s)`)
    }
  })
  const insertSec = since(t0)
  await vacuumAnalyze(sql, emptyT)
  await vacuumAnalyze(sql, loadedT)
  const loadSec = since(t0)
  const counts = { empty: await countByStatus(sql, emptyT), loaded: await countByStatus(sql, loadedT) }
  const [pg] = await sql<{ version: string }[]>`select version()`
  const [size] = await sql<{ jobs: string; runs: string }[]>`
    select pg_size_pretty(pg_total_relation_size(${loadedT.jobs})) as jobs,
           pg_size_pretty(pg_total_relation_size(${loadedT.runs})) as runs`
  console.log(`loaded in ${loadSec.toFixed(1)} s (inserts ${insertSec.toFixed(1)} s, vacuum analyze after)`)
  console.log(`loaded tables: jobs ${size?.jobs}, runs ${size?.runs}; rows by status:`, counts.loaded)
  console.log(`\n${header}`)

  const rows: Row[] = []
  for (const s of HOT_STATEMENTS) {
    const e = await measure(s, { sql, tables: emptyT, workerId: 'bench-worker' })
    const l = await measure(s, { sql, tables: loadedT, workerId: 'bench-worker' })
    const empty = side(e.times, e.plan, emptyT.prefix)
    const loaded = side(l.times, l.plan, loadedT.prefix)
    const ratio = loaded.median_ms / empty.median_ms
    const flat = rowsFlat(empty.rows_read, loaded.rows_read, s.batch)
    const why = [
      ...(ratio > 2 ? [`${ratio.toFixed(1)}× slower`] : []),
      ...(flat ? [] : [`rows read grew by ${loaded.rows_read - empty.rows_read} (slack ${rowsSlack(s.batch)})`]),
    ]
    const row: Row = {
      statement: s.name,
      batch: s.batch,
      empty,
      loaded,
      ratio: round(ratio, 2),
      flat,
      ok: why.length === 0,
      why,
      loaded_plan: l.plan.statements.map((st) => formatPlan(st.plan)).join('\n\n'),
    }
    rows.push(row)
    console.log(line(row))
  }

  // Pickup latency: a waiting claimer and an enqueue, on each set of tables.
  const pickup = {
    empty: await pickupLatency(db.url, emptyT.prefix),
    loaded: await pickupLatency(db.url, loadedT.prefix),
  }
  console.log(
    `\npickup latency p50 / p99 (ms): empty ${pickup.empty.p50_ms} / ${pickup.empty.p99_ms}, loaded ${pickup.loaded.p50_ms} / ${pickup.loaded.p99_ms}`,
  )

  const date = new Date()
    .toISOString()
    .replace(/:\d\d\.\d+Z$/, 'Z')
    .replace(':', '')
  const report = {
    date: new Date().toISOString(),
    commit,
    machine: `${navigator.hardwareConcurrency} cores, shared; figures vary run to run`,
    postgres: pg?.version,
    database: process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded, default durability (fsync on)',
    iterations: ITERATIONS,
    warmup: WARMUP,
    working_set: BENCH_WORKING_SET,
    backlog,
    load_seconds: round(loadSec, 1),
    insert_seconds: round(insertSec, 1),
    loaded_size: size,
    counts,
    loader_fidelity: fidelity.length === 0 ? 'ok' : fidelity,
    rows,
    pickup,
  }
  const md = [
    `# Backlog benchmark, ${report.date}`,
    '',
    `Commit ${report.commit}; ${report.machine}; ${report.postgres}; ${report.database}.`,
    `Loaded: ${Object.entries(counts.loaded)
      .map(([k, v]) => `${v.toLocaleString('en')} ${k}`)
      .join(', ')} (jobs ${size?.jobs}, runs ${size?.runs}); load ${report.load_seconds} s.`,
    `Empty: ${Object.entries(counts.empty)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ')}.`,
    fidelity.length === 0
      ? 'Loader fidelity: the loaded rows match rows made by the statements.'
      : `**Loader fidelity: ${fidelity.length} differences** (${fidelity.join('; ')}).`,
    '',
    `Median of up to ${ITERATIONS} executions after ${WARMUP} warm-ups (ms). Rows read: table and index rows of one`,
    "execution's plan (scan nodes); rows touched: every node, (rows + removed) × loops. ✓: loaded within 2× of",
    'empty and rows read not grown beyond 50 + 5 × batch. Plans: the ones Postgres settled on after 8 calls on one',
    'connection (generic or custom). Server ms: Execution Time of the explained execution',
    "(no round trip, no commit: with fsync on, a write's commit waits for its WAL flush).",
    '',
    '| statement | empty ms (p95) | loaded ms (p95) | loaded/empty | server ms empty / loaded | rows read empty / loaded | rows touched empty / loaded | largest sort (loaded) | plan (loaded) | |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.statement} | ${r.empty.median_ms} (${r.empty.p95_ms}) | ${r.loaded.median_ms} (${r.loaded.p95_ms}) | ${r.ratio}× | ${r.empty.server_ms} / ${r.loaded.server_ms} | ${r.empty.rows_read} / ${r.loaded.rows_read} | ${r.empty.rows_touched} / ${r.loaded.rows_touched} | ${r.loaded.largest_sort_input || '–'} | ${r.loaded.plan} | ${r.ok ? '✓' : `✗ ${r.why.join('; ')}`} |`,
    ),
    '',
    `Pickup latency (enqueue → a waiting claimer's answer, ${pickup.empty.samples} samples, server in this process): p50 / p99 ${pickup.empty.p50_ms} / ${pickup.empty.p99_ms} ms on the empty tables, ${pickup.loaded.p50_ms} / ${pickup.loaded.p99_ms} ms on the loaded ones.`,
    '',
    ...rows
      .filter((r) => !r.ok)
      .flatMap((r) => [`## ${r.statement}: loaded plan`, '', '```', r.loaded_plan, '```', '']),
  ].join('\n')
  const dir = join(import.meta.dir, 'results')
  await mkdir(dir, { recursive: true })
  const files = [`backlog-${date}`, 'backlog-latest'].flatMap((name) => [
    join(dir, `${name}.json`),
    join(dir, `${name}.md`),
  ])
  for (const file of files) {
    await writeFile(file, file.endsWith('.json') ? `${JSON.stringify(report, null, 2)}\n` : `${md}\n`)
  }
  // The results live in the repository: shape them the way `biome check` wants them.
  const biome = Bun.spawnSync([
    join(import.meta.dir, '..', 'node_modules', '.bin', 'biome'),
    'format',
    '--write',
    ...files,
  ])
  if (biome.exitCode !== 0) console.error(`biome format of the results failed: ${biome.stderr.toString().slice(-500)}`)
  console.log(`\nwrote bench/results/backlog-${date}.{json,md} and backlog-latest.{json,md}`)
} finally {
  await explainer.close()
  if (!process.env.KEEP) {
    await dropTables(sql, emptyT)
    await dropTables(sql, loadedT)
  }
  await sql.end({ timeout: 5 })
  await db.stop()
}
