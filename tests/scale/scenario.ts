/**
 * Many instances (issue 14): four Foremans on one Postgres and one table prefix,
 * each with its own pool, LISTEN and NOTIFY connections and its own sweeps
 * (scheduler included), served over HTTP; 32 HTTP workers spread over them in
 * five claim styles; `jobs` jobs enqueued in batches across the instances, one
 * in 20 failing once; a schedule firing every second; two SSE subscribers per
 * instance with different filters. Checks in checks.ts. `npm test` runs it at
 * 5,000 jobs (tests/scale.test.ts), `npm run test:scale` at 50,000.
 */
import { afterAll, expect, test } from 'bun:test'
import { ForemanClient } from '../../src/client'
import { createSql } from '../../src/db/client'
import { uniqueKind } from '../support/factories'
import { type Fixture, startFixture } from '../support/harness'
import { JobAudit } from './audit'
import { checkClaims, checkConnections, checkSchedule, checkStreams, everyJob, finalJobs } from './checks'
import { ConnectionSampler } from './connections'
import { startCpuMeter } from './cpu'
import { type EventFilter, matches, Subscriber } from './subscriber'
import { CLAIM_STYLES, Ledger, type RunningWorker, startWorker } from './workers'

const INSTANCES = 4
const WORKERS = 32
/** FOREMAN_DB_POOL_MAX's default. */
const POOL_MAX = 10
const BATCH = 500
const MB = 1024 * 1024

/** Defines the scale test for `jobs` jobs; call at the top level of a test file. */
export async function scaleTest(jobs: number, timeoutMs: number): Promise<void> {
  const rssBefore = process.memoryUsage().rss
  const [a, b, tick] = [uniqueKind('scale-a'), uniqueKind('scale-b'), uniqueKind('scale-tick')]
  const names = Array.from({ length: INSTANCES }, (_, i) => `foreman-scale-${i}`)
  const start = (i: number, prefix?: string) =>
    startFixture(
      {},
      { prefix, keepTables: prefix !== undefined, applicationName: names[i], poolMax: POOL_MAX, sweeps: true },
    )
  const first = await start(0)
  // The audit lives under the fixtures' prefix but is not one of their tables: drop it too.
  let audit: JobAudit | undefined
  afterAll(() => audit?.stop())
  const instances: Fixture[] = [first]
  for (let i = 1; i < INSTANCES; i++) instances.push(await start(i, first.tables.prefix))
  const observer = createSql({ url: process.env.DATABASE_URL as string, max: 2, applicationName: 'scale-observer' })
  afterAll(() => observer.end())
  const t = first.tables

  test(
    `${INSTANCES} instances, ${WORKERS} HTTP workers, ${jobs.toLocaleString('en')} jobs, a schedule every second, 2 SSE subscribers per instance`,
    async () => {
      audit = new JobAudit(observer, t)
      await audit.start()
      const sampler = new ConnectionSampler(observer, names)
      let rssPeak = process.memoryUsage().rss
      const rssTimer = setInterval(() => {
        rssPeak = Math.max(rssPeak, process.memoryUsage().rss)
      }, 200)
      const bases = instances.map((f) => f.serve())
      const clients = bases.map((baseUrl) => new ForemanClient({ baseUrl }))
      const client = (i: number) => clients[i % INSTANCES] as ForemanClient

      // Two per instance, each pair different: by kind, queue, status and their mixes.
      const filters: EventFilter[] = [
        { kind: a },
        { status: 'succeeded' },
        { kind: b, queue: 'q1' },
        { queue: 'q1', status: 'succeeded' },
        { queue: 'q0' },
        { kind: tick },
        { kind: a, queue: 'q1' },
        { kind: b, status: 'succeeded' },
      ]
      const subscribers = filters.map(
        (filter, i) => new Subscriber(`instance ${i >> 1} ${JSON.stringify(filter)}`, bases[i >> 1] as string, filter),
      )
      await Promise.all(subscribers.map((s) => s.opened))

      const schedule = await client(1).createSchedule({ kind: tick, cron_expr: '@every 1s', max_attempts: 3 })
      const ledger = new Ledger()
      const workers: RunningWorker[] = Array.from({ length: WORKERS }, (_, w) => {
        const style = CLAIM_STYLES[Math.floor(w / INSTANCES) % CLAIM_STYLES.length] as (typeof CLAIM_STYLES)[number]
        return startWorker(style, client(w), `w${w}-${style}`, [a, b, tick], ledger)
      })

      const started = performance.now()
      const cpu = startCpuMeter()
      let next = 0
      const enqueuer = async (i: number) => {
        for (let from = next; from < jobs; from = next) {
          next = Math.min(jobs, from + BATCH)
          const items = Array.from({ length: next - from }, (_, k) => {
            const n = from + k
            return {
              kind: n % 2 ? b : a,
              queue: `q${(n >> 1) % 2}`,
              max_attempts: 3,
              params: { n, fail_once: n % 20 === 7 },
            }
          })
          await client(i).enqueueMany(items)
        }
      }
      await Promise.all(Array.from({ length: INSTANCES }, (_, i) => enqueuer(i)))
      const enqueueSeconds = (performance.now() - started) / 1000
      const succeeded = async () => {
        const [row] = await observer<{ n: number }[]>`
        select count(*)::int as n from ${everyJob(observer, t)} where kind in (${a}, ${b}) and status = 'succeeded'`
        return row?.n ?? 0
      }
      const deadline = performance.now() + timeoutMs
      for (let done = await succeeded(); done < jobs; done = await succeeded()) {
        if (performance.now() > deadline)
          throw new Error(`${done} of ${jobs} succeeded in time; ${ledger.errors.length} errors`)
        await Bun.sleep(250)
      }
      const seconds = (performance.now() - started) / 1000
      const load = cpu()

      // No more fires once deleted (a tick in flight holds the row); then the last ones run.
      await client(2).deleteSchedule(schedule.id)
      await until('the schedule jobs to finish', async () => {
        const [row] = await observer<{ n: number }[]>`
        select count(*)::int as n from ${observer(t.jobs)} where kind = ${tick} and status <> 'succeeded'`
        return row?.n === 0
      })
      await Promise.all(workers.map((w) => w.stop()))

      const finals = await finalJobs(observer, t, [a, b, tick])
      const caughtUp = () =>
        subscribers.every((s) => finals.every((j) => !matches(s.filter, j) || s.last(j.id) === j.version))
      await until('the streams to catch up', async () => caughtUp()).catch(() => {})
      await Promise.all(subscribers.map((s) => s.close()))
      const peaks = await sampler.stop()
      clearInterval(rssTimer)

      await checkClaims(observer, t, [a, b], jobs, ledger)
      const fires = await checkSchedule(observer, t, tick, schedule.id, instances)
      const streams = checkStreams(subscribers, await audit.states(), finals)
      expect(sampler.errors).toEqual([])
      checkConnections(peaks, INSTANCES, POOL_MAX)

      console.log(
        [
          `scale: ${jobs} jobs on ${INSTANCES} instances × ${WORKERS} workers in ${seconds.toFixed(1)} s: ` +
            `${Math.round(jobs / seconds)} jobs/s end to end (enqueue ${Math.round(jobs / enqueueSeconds)} jobs/s), ` +
            `${ledger.planned} planned failures retried`,
          `CPU over that time (${load.cores} cores): this process ${load.processCores.toFixed(2)} cores, ` +
            `the rest of the machine (Postgres) ${load.otherCores?.toFixed(2) ?? '?'} cores`,
          `connections: peak ${peaks.total} (formula ${INSTANCES} × (${POOL_MAX} + 2) = ${INSTANCES * (POOL_MAX + 2)}), ` +
            `per instance ${JSON.stringify(peaks.perInstance)}, ${peaks.samples} samples`,
          `schedule: ${fires.fired} slots fired once each, ${fires.skipped} skipped (after a fire ≥ 1 s late), ` +
            `fired ${fires.lateMedianMs} ms after the slot (median), at most ${fires.lateMaxMs} ms; by instance ${fires.byInstance.join('/')}`,
          `RSS: ${(rssBefore / MB).toFixed(0)} MB before the instances, peak ${(rssPeak / MB).toFixed(0)} MB ` +
            `(instances, workers and subscribers in one process: ≤ ${((rssPeak - rssBefore) / MB / INSTANCES).toFixed(0)} MB per instance)`,
          ...streams.map(
            (s) =>
              `  ${s.name}: ${s.events} events (${s.repeats} repeats), ${s.finals} final states, ${(s.coverage * 100).toFixed(0)}% of the audited history, ${s.reconnects} reconnects`,
          ),
        ].join('\n'),
      )
    },
    timeoutMs + 120_000,
  )
}

/** Resolves once `done()` holds (checked every 100 ms); throws after 30 s. */
async function until(what: string, done: () => Promise<boolean>, ms = 30_000) {
  const deadline = performance.now() + ms
  while (!(await done())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(100)
  }
}
