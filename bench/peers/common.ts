/**
 * What every side-by-side child shares: the scenarios and their sizes, process
 * CPU and peak-RSS readings from /proc, timing loops, and the one JSON line a
 * child prints. See run.ts for the whole benchmark.
 */
import { readFileSync, writeFileSync } from 'node:fs'

/** The five rows of the table. */
export const SCENARIOS = ['enqueue_single', 'enqueue_bulk', 'process_single', 'process_batched', 'latency'] as const
export type Scenario = (typeof SCENARIOS)[number]

/** Job counts per scenario (the driver passes them to each child in BENCH_SIZES). */
export interface Sizes {
  /** In flight at once: concurrent enqueue calls, claim loops, workers. */
  concurrency: number
  /** Jobs enqueued one per call. */
  enqueueSingle: number
  /** Calls of 1,000 jobs each. */
  bulkCalls: number
  /** Jobs per bulk call (1,000 in the table). */
  bulkSize: number
  /** Jobs processed one per claim. */
  processSingle: number
  /** Jobs processed in claims and acks of `batch`. */
  processBatched: number
  /** Jobs per batched claim and ack (50 in the table). */
  batch: number
  /** Pickup-latency samples (sequential), after `latencyWarmup` untimed ones. */
  latencySamples: number
  latencyWarmup: number
  /** Untimed operations before each timed enqueue phase (JIT, pools, prepared statements). */
  warmup: number
}

export const FULL_SIZES: Sizes = {
  concurrency: 16,
  enqueueSingle: 4000,
  bulkCalls: 48,
  bulkSize: 1000,
  processSingle: 5000,
  processBatched: 30_000,
  batch: 50,
  latencySamples: 200,
  latencyWarmup: 20,
  warmup: 200,
}

export const QUICK_SIZES: Sizes = {
  concurrency: 16,
  enqueueSingle: 300,
  bulkCalls: 2,
  bulkSize: 1000,
  processSingle: 300,
  processBatched: 1000,
  batch: 50,
  latencySamples: 20,
  latencyWarmup: 3,
  warmup: 30,
}

/** What a child was asked to do, from its argv and environment. */
export interface ChildArgs {
  scenario: Scenario
  variant: string
  dbUrl: string
  sizes: Sizes
  /** A short unique tag for schema and table names. */
  tag: string
}

export function childArgs(): ChildArgs {
  const scenario = process.argv[2] as Scenario
  if (!SCENARIOS.includes(scenario)) throw new Error(`unknown scenario ${process.argv[2]}`)
  const dbUrl = process.env.BENCH_DB_URL
  if (!dbUrl) throw new Error('BENCH_DB_URL is not set')
  return {
    scenario,
    variant: process.argv[3] ?? 'default',
    dbUrl,
    sizes: JSON.parse(process.env.BENCH_SIZES ?? JSON.stringify(QUICK_SIZES)) as Sizes,
    tag: process.env.BENCH_TAG ?? Date.now().toString(36),
  }
}

/** What one child reports: one (system, variant, scenario, repetition) cell. */
export interface CellResult {
  system: string
  variant: string
  scenario: Scenario
  status: 'ok' | 'no route' | 'error' | 'skipped'
  jobs?: number
  seconds?: number
  /** Throughput rows: jobs per second. */
  jobs_per_sec?: number
  /** Latency row. */
  p50_ms?: number
  p99_ms?: number
  /** CPU seconds of the measured process over the timed phase, per 10,000 jobs. */
  cpu_s_per_10k?: number
  /** Peak RSS of the measured process during the timed phase (VmHWM after a reset). */
  peak_rss_mb?: number
  /** Which process `cpu_s_per_10k` and `peak_rss_mb` are about. */
  measured?: string
  /** Foreman only: the client/Worker process (the load generator) for comparison. */
  client_cpu_s_per_10k?: number
  client_peak_rss_mb?: number
  note?: string
  error?: string
}

/** The marker before the one JSON line a child prints on stdout. */
export const RESULT_MARK = 'BENCH_RESULT '

export function emit(result: CellResult): void {
  process.stdout.write(`${RESULT_MARK}${JSON.stringify(result)}\n`)
}

/** utime + stime of a process in seconds (CLK_TCK is 100 on Linux). */
export function cpuSeconds(pid: number | 'self'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name may hold spaces: fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** Peak resident set (VmHWM) in MiB. */
export function peakRssMb(pid: number | 'self'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN)
  return kb / 1024
}

/** Resets VmHWM to the current RSS (needs write access to clear_refs: our own children, or root). */
export function resetPeak(pid: number | 'self'): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
  } catch {
    // Then the peak is over the process's whole life, set-up included.
  }
}

/** A reading of one process over a timed phase. */
export interface Usage {
  cpuS: number
  peakMb: number
}

/** Watches processes over a timed phase: CPU seconds used and peak RSS. */
export function watch(pids: (number | 'self')[]): () => Usage[] {
  for (const pid of pids) resetPeak(pid)
  const before = pids.map((pid) => cpuSeconds(pid))
  return () => pids.map((pid, i) => ({ cpuS: cpuSeconds(pid) - before[i]!, peakMb: peakRssMb(pid) }))
}

/** Runs `workers` loops of `step` until one returns false; answers elapsed seconds. */
export async function timed(workers: number, step: () => Promise<boolean>): Promise<number> {
  const started = performance.now()
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (await step());
    }),
  )
  return (performance.now() - started) / 1000
}

/** Calls `fn(i)` for i in [0, count) with `workers` in flight; answers elapsed seconds. */
export function forEachConcurrent(
  count: number,
  workers: number,
  fn: (i: number) => Promise<unknown>,
): Promise<number> {
  let next = 0
  return timed(workers, async () => {
    const i = next++
    if (i >= count) return false
    await fn(i)
    return true
  })
}

/** The p-th percentile (0–100), nearest rank. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN
}

export const round = (n: number, digits = 2) => Number(n.toFixed(digits))

/** A one-shot signal another part of the program waits on. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => {}
  const promise = new Promise<T>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

/** Resolves once `condition()` holds (checked every millisecond or so); throws after `timeoutMs`. */
export async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 600_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error('timed out waiting')
    await Bun.sleep(1)
  }
}

/**
 * Pickup latency: `samples` sequential jobs, each enqueued while a worker waits;
 * the time from the enqueue call's start to the handler being called with it.
 * `arm(i)` answers a promise the handler resolves (with performance.now()) when job i runs.
 */
export async function pickupLatency(
  sizes: Sizes,
  enqueue: (i: number) => Promise<unknown>,
  arm: (i: number) => Promise<number>,
): Promise<number[]> {
  const latencies: number[] = []
  const total = sizes.latencyWarmup + sizes.latencySamples
  for (let i = 0; i < total; i++) {
    // Let the worker finish the previous job and get back to waiting.
    await Bun.sleep(20)
    const ran = arm(i)
    const started = performance.now()
    await enqueue(i)
    const at = await ran
    if (i >= sizes.latencyWarmup) latencies.push(at - started)
  }
  return latencies
}

/** Builds the result of a timed throughput phase. */
export function throughput(
  base: Omit<CellResult, 'status'>,
  jobs: number,
  seconds: number,
  usage: Usage,
  client?: Usage,
): CellResult {
  const per10k = 10_000 / jobs
  return {
    ...base,
    status: 'ok',
    jobs,
    seconds: round(seconds, 3),
    jobs_per_sec: Math.round(jobs / seconds),
    cpu_s_per_10k: round(usage.cpuS * per10k, 3),
    peak_rss_mb: round(usage.peakMb, 1),
    ...(client
      ? { client_cpu_s_per_10k: round(client.cpuS * per10k, 3), client_peak_rss_mb: round(client.peakMb, 1) }
      : {}),
  }
}

/** Builds the result of the latency phase. */
export function latencyResult(
  base: Omit<CellResult, 'status'>,
  latencies: number[],
  usage: Usage,
  client?: Usage,
): CellResult {
  const per10k = 10_000 / latencies.length
  return {
    ...base,
    status: 'ok',
    jobs: latencies.length,
    p50_ms: round(percentile(latencies, 50)),
    p99_ms: round(percentile(latencies, 99)),
    cpu_s_per_10k: round(usage.cpuS * per10k, 3),
    peak_rss_mb: round(usage.peakMb, 1),
    ...(client
      ? { client_cpu_s_per_10k: round(client.cpuS * per10k, 3), client_peak_rss_mb: round(client.peakMb, 1) }
      : {}),
  }
}

/** Runs a child's main, printing an error result instead of a stack when it throws. */
export async function runChild(
  base: Pick<CellResult, 'system' | 'variant' | 'scenario'>,
  main: () => Promise<CellResult>,
): Promise<void> {
  let result: CellResult
  try {
    result = await main()
  } catch (error) {
    result = { ...base, status: 'error', error: error instanceof Error ? error.message : String(error) }
    console.error(error)
  }
  emit(result)
  // Libraries may leave timers or sockets behind; the result is out, so leave.
  process.exit(result.status === 'error' ? 1 : 0)
}
