/**
 * pg-boss (bench/package.json pins the version), in this process: the library
 * and the load generator share it, as they would in an app that uses pg-boss.
 * Variants: `polling` (a plain queue) and `notify` (a queue with `notify: true`
 * and the instance's `useListenNotify`, so a send wakes waiting workers).
 *
 *   bun bench/peers/pgboss.ts <scenario> <polling|notify>   (run.ts sets the environment)
 */
import {
  childArgs,
  deferred,
  forEachConcurrent,
  latencyResult,
  pickupLatency,
  runChild,
  throughput,
  timed,
  until,
  watch,
} from './common'
import { loadPeer, type PgBossModule } from './peer-types'

const args = childArgs()
const { sizes } = args
const base = { system: 'pgboss', variant: args.variant, scenario: args.scenario }
const measured = 'worker process (pg-boss + load generator)'

await runChild(base, async () => {
  const { PgBoss } = await loadPeer<PgBossModule>('pg-boss')
  const notify = args.variant === 'notify'
  const schema = `pgb_${args.tag}`
  const boss = new PgBoss({ connectionString: args.dbUrl, schema, useListenNotify: notify })
  boss.on('error', (error) => console.error('pg-boss error:', error))
  await boss.start()
  const queue = 'bench'
  await boss.createQueue(queue, { notify })

  const sendOne = (i: number) => boss.send(queue, { n: i })
  const insertMany = (from: number, count: number) =>
    boss.insert(
      queue,
      Array.from({ length: count }, (_, k) => ({ data: { n: from + k } })),
    )
  const fill = async (jobs: number) => {
    const calls = Math.ceil(jobs / sizes.bulkSize)
    await forEachConcurrent(calls, 4, (c) =>
      insertMany(c * sizes.bulkSize, Math.min(sizes.bulkSize, jobs - c * sizes.bulkSize)),
    )
  }

  try {
    switch (args.scenario) {
      case 'enqueue_single': {
        await forEachConcurrent(sizes.warmup, sizes.concurrency, sendOne)
        const done = watch(['self'])
        const sec = await forEachConcurrent(sizes.enqueueSingle, sizes.concurrency, sendOne)
        return throughput({ ...base, measured }, sizes.enqueueSingle, sec, done()[0]!)
      }
      case 'enqueue_bulk': {
        await insertMany(0, sizes.bulkSize)
        const done = watch(['self'])
        const sec = await forEachConcurrent(sizes.bulkCalls, sizes.concurrency, (c) =>
          insertMany(c * sizes.bulkSize, sizes.bulkSize),
        )
        return throughput({ ...base, measured }, sizes.bulkCalls * sizes.bulkSize, sec, done()[0]!)
      }
      case 'process_single': {
        // work() with batchSize 1 waits out pollingIntervalSeconds (≥ 0.5 s) after every job:
        // burstWhenBatchFull is ignored at batchSize 1. So one per claim is fetch → complete.
        await fill(sizes.processSingle)
        let processed = 0
        const done = watch(['self'])
        const sec = await timed(sizes.concurrency, async () => {
          const [job] = await boss.fetch(queue)
          if (!job) return false
          await boss.complete(queue, job.id)
          processed++
          return true
        })
        if (processed !== sizes.processSingle) throw new Error(`processed ${processed} of ${sizes.processSingle}`)
        return throughput(
          { ...base, measured, note: 'fetch() → complete() loops (work() at batchSize 1 polls between jobs)' },
          processed,
          sec,
          done()[0]!,
        )
      }
      case 'process_batched': {
        const jobs = sizes.processBatched
        await fill(jobs)
        let handled = 0
        const done = watch(['self'])
        const started = performance.now()
        await boss.work(
          queue,
          { batchSize: sizes.batch, localConcurrency: sizes.concurrency, burstWhenBatchFull: true },
          async (batch: unknown[]) => {
            handled += batch.length
          },
        )
        await until(() => handled >= jobs)
        // offWork waits for every worker's batch in flight, completion included.
        await boss.offWork(queue, { wait: true })
        const sec = (performance.now() - started) / 1000
        if (handled !== jobs) throw new Error(`handled ${handled} of ${jobs}`)
        return throughput(
          {
            ...base,
            measured,
            note: `work() batchSize ${sizes.batch}, localConcurrency ${sizes.concurrency}, burstWhenBatchFull`,
          },
          jobs,
          sec,
          done()[0]!,
        )
      }
      case 'latency': {
        let waiting: { i: number; resolve: (at: number) => void } | undefined
        await boss.work(queue, { batchSize: 1 }, async (batch: { data: { n: number } }[]) => {
          const at = performance.now()
          for (const job of batch) if (waiting && job.data.n === waiting.i) waiting.resolve(at)
        })
        const done = watch(['self'])
        const latencies = await pickupLatency(sizes, sendOne, (i) => {
          const d = deferred<number>()
          waiting = { i, resolve: d.resolve }
          return d.promise
        })
        return latencyResult(
          { ...base, measured, note: notify ? 'work() on a notify queue' : 'work(), polling' },
          latencies,
          done()[0]!,
        )
      }
    }
    throw new Error(`unhandled scenario ${args.scenario}`)
  } finally {
    await boss.stop({ graceful: false, timeout: 2000 }).catch(() => {})
    const { default: postgres } = await import('postgres')
    const sql = postgres(args.dbUrl, { max: 1, onnotice: () => {} })
    await sql.unsafe(`drop schema if exists ${schema} cascade`)
    await sql.end({ timeout: 5 })
  }
})
