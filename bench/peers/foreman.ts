/**
 * Foreman over HTTP: the server runs in its own process (run.ts starts
 * `bun src/index.ts` on a fresh table prefix and passes FOREMAN_URL and
 * FOREMAN_PID); this process drives it with the TS client and Worker, as an app
 * would. CPU and peak RSS are the server's; the client's are reported beside them.
 *
 *   bun bench/peers/foreman.ts <scenario>   (run.ts sets the environment)
 */
import { type EnqueueBody, ForemanClient, ForemanError, Worker } from '../../src/client'
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

const args = childArgs()
const { sizes } = args
const base = { system: 'foreman', variant: args.variant, scenario: args.scenario }
const measured = 'server process (bun src/index.ts)'

/** POST /jobs/batch answered 404: this server has no bulk enqueue. */
class NoRoute extends Error {}

await runChild(base, async () => {
  const url = process.env.FOREMAN_URL
  const serverPid = Number(process.env.FOREMAN_PID)
  if (!url || !serverPid) throw new Error('FOREMAN_URL and FOREMAN_PID are set by run.ts')
  const client = new ForemanClient({ baseUrl: url })
  const onError = (error: unknown) => console.error('worker error:', error)

  const job = (i: number): EnqueueBody => ({ kind: 'bench', params: { n: i } })
  const enqueueOne = (i: number) => client.enqueue(job(i))
  /** `client.enqueueMany` (POST /jobs/batch); a 404 means the server has no such route. */
  const enqueueMany = async (from: number, count: number) => {
    try {
      return await client.enqueueMany(Array.from({ length: count }, (_, k) => job(from + k)))
    } catch (error) {
      if (error instanceof ForemanError && error.status === 404) throw new NoRoute()
      throw error
    }
  }
  /** Untimed set-up: bulk when the server has it, else single enqueues 32 at a time. */
  const fill = async (jobs: number) => {
    const calls = Math.ceil(jobs / sizes.bulkSize)
    try {
      await enqueueMany(0, Math.min(sizes.bulkSize, jobs))
      await forEachConcurrent(calls - 1, 4, (c) =>
        enqueueMany((c + 1) * sizes.bulkSize, Math.min(sizes.bulkSize, jobs - (c + 1) * sizes.bulkSize)),
      )
    } catch (error) {
      if (!(error instanceof NoRoute)) throw error
      await forEachConcurrent(jobs, 32, enqueueOne)
    }
  }

  /** Runs `count` Workers of `concurrency` until `jobs` jobs have been handled and completed. */
  const runWorkers = async (count: number, concurrency: number, jobs: number) => {
    let handled = 0
    const workers = Array.from({ length: count }, (_, k) =>
      new Worker(client, { concurrency, workerId: `bench-${k}`, onError }).handle('bench', () => {
        handled++
        return null
      }),
    )
    const done = watch([serverPid, 'self'])
    const started = performance.now()
    for (const worker of workers) worker.start()
    await until(() => handled >= jobs)
    // stop() returns once every job in flight is completed; idle long-polls are aborted.
    await Promise.all(workers.map((w) => w.stop()))
    const sec = (performance.now() - started) / 1000
    const [server, self] = done()
    if (handled !== jobs) throw new Error(`handled ${handled} of ${jobs}`)
    return { sec, server: server!, self: self! }
  }

  switch (args.scenario) {
    case 'enqueue_single': {
      await forEachConcurrent(sizes.warmup, sizes.concurrency, enqueueOne)
      const done = watch([serverPid, 'self'])
      const sec = await forEachConcurrent(sizes.enqueueSingle, sizes.concurrency, enqueueOne)
      const [server, self] = done()
      return throughput({ ...base, measured, note: 'client.enqueue' }, sizes.enqueueSingle, sec, server!, self)
    }
    case 'enqueue_bulk': {
      try {
        await enqueueMany(0, sizes.bulkSize)
      } catch (error) {
        if (error instanceof NoRoute)
          return { ...base, status: 'no route', note: 'POST /foreman/jobs/batch answered 404' }
        throw error
      }
      const done = watch([serverPid, 'self'])
      const sec = await forEachConcurrent(sizes.bulkCalls, sizes.concurrency, (c) =>
        enqueueMany(c * sizes.bulkSize, sizes.bulkSize),
      )
      const [server, self] = done()
      return throughput(
        { ...base, measured, note: 'client.enqueueMany (POST /foreman/jobs/batch)' },
        sizes.bulkCalls * sizes.bulkSize,
        sec,
        server!,
        self,
      )
    }
    case 'process_single': {
      // What users run: Workers of concurrency 1, one job per claim; on a busy queue each
      // completion carries the claim of the next job (the hand-off).
      const jobs = sizes.processSingle
      await fill(jobs)
      const { sec, server, self } = await runWorkers(sizes.concurrency, 1, jobs)
      const note = `${sizes.concurrency} Workers of concurrency 1 (claim once, then each completion claims the next: POST /runs/complete with claim)`
      return throughput({ ...base, measured, note }, jobs, sec, server, self)
    }
    case 'process_batched': {
      if (args.variant === 'worker') {
        // 16 Workers of concurrency 50: each claims for its free slots (POST /claims) and batches completions.
        const jobs = sizes.processBatched
        await fill(jobs)
        const { sec, server, self } = await runWorkers(sizes.concurrency, sizes.batch, jobs)
        const note = `${sizes.concurrency} Workers of concurrency ${sizes.batch} (claimMany for free slots; batched completions claim for the slots they free)`
        return throughput({ ...base, measured, note }, jobs, sec, server, self)
      }
      // 16 loops, each holding up to 50 jobs: the first POST /claims takes a batch,
      // then every POST /runs/complete acks the batch held and claims the next one
      // in the same statement (the hand-off), until nothing is left.
      const jobs = sizes.processBatched
      await fill(jobs)
      let processed = 0
      const done = watch([serverPid, 'self'])
      const started = performance.now()
      await Promise.all(
        Array.from({ length: sizes.concurrency }, async (_, k) => {
          const workerId = `bench-${k}`
          let held = await client.claimMany({ kinds: ['bench'], worker_id: workerId, max_jobs: sizes.batch })
          while (held.length > 0) {
            const { results, claimed } = await client.completeAndClaim(
              workerId,
              held.map((c) => ({ run_id: c.run.id, result: null })),
              { kinds: ['bench'], max_jobs: sizes.batch },
            )
            const bad = results.find((o) => o.status !== 200)
            if (bad) throw new Error(`completeAndClaim: ${JSON.stringify(bad)}`)
            processed += held.length
            held = claimed
          }
        }),
      )
      const sec = (performance.now() - started) / 1000
      const [server, self] = done()
      if (processed !== jobs) throw new Error(`processed ${processed} of ${jobs}`)
      return throughput(
        {
          ...base,
          measured,
          note: `${sizes.concurrency} loops of claimMany(${sizes.batch}), then completeAndClaim(${sizes.batch}) acking one batch and taking the next`,
        },
        jobs,
        sec,
        server!,
        self,
      )
    }
    case 'latency': {
      let waiting: { i: number; resolve: (at: number) => void } | undefined
      const worker = new Worker(client, { concurrency: 1, onError }).handle('bench', (j) => {
        const at = performance.now()
        if (waiting && (j.params as { n: number }).n === waiting.i) waiting.resolve(at)
        return null
      })
      worker.start()
      try {
        const done = watch([serverPid, 'self'])
        const latencies = await pickupLatency(sizes, enqueueOne, (i) => {
          const d = deferred<number>()
          waiting = { i, resolve: d.resolve }
          return d.promise
        })
        const [server, self] = done()
        return latencyResult(
          { ...base, measured, note: 'a Worker (concurrency 1) long-polling POST /claim' },
          latencies,
          server!,
          self,
        )
      } finally {
        await worker.stop()
      }
    }
  }
  throw new Error(`unhandled scenario ${args.scenario}`)
})
