/**
 * graphile-worker (bench/package.json pins the version), in this process: the
 * library and the load generator share it. Variants: `default` (each of the
 * `concurrency` workers fetches and completes its own job) and `batched`
 * (preset.worker.localQueue.size = 50 and completeJobBatchDelay = 0: jobs are
 * fetched 50 at a time into a local queue and completions are sent together).
 * Its logger is cut to warnings and errors (by default it logs every completed job).
 *
 *   bun bench/peers/graphile.ts <scenario> <default|batched>   (run.ts sets the environment)
 */
import {
  childArgs,
  deferred,
  forEachConcurrent,
  latencyResult,
  pickupLatency,
  runChild,
  throughput,
  until,
  watch,
} from './common'
import { type GraphileModule, type GraphileOptions, loadPeer } from './peer-types'

const args = childArgs()
const { sizes } = args
const base = { system: 'graphile', variant: args.variant, scenario: args.scenario }
const measured = 'worker process (graphile-worker + load generator)'

await runChild(base, async () => {
  const { Logger, makeWorkerUtils, run } = await loadPeer<GraphileModule>('graphile-worker')
  const logger = new Logger(() => (level, message) => {
    if (level === 'error' || level === 'warning') console.error(`graphile-worker ${level}: ${message}`)
  })
  const schema = `gw_${args.tag}`
  const shared = { connectionString: args.dbUrl, schema, logger }
  const utils = await makeWorkerUtils(shared)
  await utils.migrate()
  const batched = args.variant === 'batched'
  const runnerOptions = (task: (payload: unknown) => void): GraphileOptions => ({
    ...shared,
    concurrency: sizes.concurrency,
    noHandleSignals: true,
    taskList: { bench: task },
    ...(batched
      ? { preset: { worker: { localQueue: { size: sizes.batch }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } } }
      : {}),
  })

  const addOne = (i: number) => utils.addJob('bench', { n: i })
  const addMany = (from: number, count: number) =>
    utils.addJobs(Array.from({ length: count }, (_, k) => ({ identifier: 'bench', payload: { n: from + k } })))
  const fill = async (jobs: number) => {
    const calls = Math.ceil(jobs / sizes.bulkSize)
    await forEachConcurrent(calls, 4, (c) =>
      addMany(c * sizes.bulkSize, Math.min(sizes.bulkSize, jobs - c * sizes.bulkSize)),
    )
  }

  try {
    switch (args.scenario) {
      case 'enqueue_single': {
        await forEachConcurrent(sizes.warmup, sizes.concurrency, addOne)
        const done = watch(['self'])
        const sec = await forEachConcurrent(sizes.enqueueSingle, sizes.concurrency, addOne)
        return throughput({ ...base, measured }, sizes.enqueueSingle, sec, done()[0]!)
      }
      case 'enqueue_bulk': {
        await addMany(0, sizes.bulkSize)
        const done = watch(['self'])
        const sec = await forEachConcurrent(sizes.bulkCalls, sizes.concurrency, (c) =>
          addMany(c * sizes.bulkSize, sizes.bulkSize),
        )
        return throughput({ ...base, measured }, sizes.bulkCalls * sizes.bulkSize, sec, done()[0]!)
      }
      case 'process_single':
      case 'process_batched': {
        const jobs = args.scenario === 'process_batched' ? sizes.processBatched : sizes.processSingle
        await fill(jobs)
        let handled = 0
        const done = watch(['self'])
        const started = performance.now()
        const runner = await run(
          runnerOptions(() => {
            handled++
          }),
        )
        await until(() => handled >= jobs)
        // stop() lets the jobs in flight finish and flushes batched completions.
        await runner.stop()
        const sec = (performance.now() - started) / 1000
        if (handled !== jobs) throw new Error(`handled ${handled} of ${jobs}`)
        const note = batched
          ? `run() concurrency ${sizes.concurrency}, localQueue.size ${sizes.batch}, completeJobBatchDelay 0`
          : `run() concurrency ${sizes.concurrency}`
        return throughput({ ...base, measured, note }, jobs, sec, done()[0]!)
      }
      case 'latency': {
        let waiting: { i: number; resolve: (at: number) => void } | undefined
        const runner = await run(
          runnerOptions((payload) => {
            const at = performance.now()
            if (waiting && (payload as { n: number }).n === waiting.i) waiting.resolve(at)
          }),
        )
        try {
          const done = watch(['self'])
          const latencies = await pickupLatency(sizes, addOne, (i) => {
            const d = deferred<number>()
            waiting = { i, resolve: d.resolve }
            return d.promise
          })
          return latencyResult({ ...base, measured }, latencies, done()[0]!)
        } finally {
          await runner.stop()
        }
      }
    }
    throw new Error(`unhandled scenario ${args.scenario}`)
  } finally {
    await utils.release()
    const { default: postgres } = await import('postgres')
    const sql = postgres(args.dbUrl, { max: 1, onnotice: () => {} })
    await sql.unsafe(`drop schema if exists ${schema} cascade`)
    await sql.end({ timeout: 5 })
  }
})
