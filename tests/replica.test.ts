/**
 * Reads from a streaming replica (FOREMAN_READ_DATABASE_URL), against a real
 * standby of a primary of this file's own (tests/support/replica.ts). Pausing
 * the standby's replay makes the lag deterministic: whatever is written after
 * the pause is on the primary only, so a route that shows it read the primary,
 * and a route that does not read the replica.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import postgres from 'postgres'
import { loadConfig } from '../src/config'
import { freePort } from '../src/db/embedded'
import { dropTables } from '../src/db/migrate'
import { tablesFor } from '../src/db/tables'
import { newJobId, newRunId } from '../src/ids'
import { createLogger } from '../src/log'
import { startForeman } from '../src/server'
import { claimOne, postOk, uniqueKind } from './support/factories'
import { type Fixture, startFixture, uniquePrefix } from './support/harness'
import { type ReplicaPair, startReplicaPair } from './support/replica'

const pair: ReplicaPair = await startReplicaPair()
const f: Fixture = await startFixture({ readDatabaseUrl: pair.replicaUrl }, { url: pair.primaryUrl })
// After the fixture's own (afterAll hooks run in order), which drops its tables on the primary.
afterAll(() => pair.close())
await pair.caughtUp()

/** A metric's value in a scrape, by its full series name (`name{label="…"}`). */
async function metricValue(series: string): Promise<number | undefined> {
  const text = await (await f.app.handle(new Request('http://localhost/foreman/metrics'))).text()
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

const ids = <T extends { id: string }>(rows: T[]) => rows.map((row) => row.id)

/** What the read routes show of `kind`, `queue` and `worker`. */
async function reads(kind: string, queue: string, worker: string) {
  const get = async (path: string) => {
    const res = await f.call('GET', path)
    expect(res.status).toBe(200)
    return res.body
  }
  return {
    jobs: ids(await get(`/jobs?kind=${kind}`)),
    runs: ids(await get(`/runs?kind=${kind}`)),
    queue: (await get('/queues')).find((q: { queue: string }) => q.queue === queue) ?? null,
    worker: (await get('/workers')).find((w: { worker_id: string }) => w.worker_id === worker) ?? null,
    stats: (await get('/stats')).rows.filter((r: { kind: string }) => r.kind === kind).length,
  }
}

describe('with the replica behind the primary', () => {
  test('lists, runs, queues, workers, stats and metrics counts come from the replica', async () => {
    const [kind, queue, worker] = [uniqueKind('replica'), uniqueKind('replica-q'), uniqueKind('replica-w')]
    const activeBefore = await metricValue('foreman_jobs_count{status="active"}')
    await pair.pauseReplay()
    try {
      // Every transition goes to the primary, whatever the replica has.
      const job = await postOk(f, '/jobs', { kind, queue })
      const { run } = await claimOne(f, kind, worker)
      expect(run.job_id).toBe(job.id)
      await postOk(f, '/jobs', { kind, queue })

      expect(await reads(kind, queue, worker)).toEqual({ jobs: [], runs: [], queue: null, worker: null, stats: 0 })
      expect(await metricValue('foreman_jobs_count{status="active"}')).toBe(activeBefore)
      // Postgres' statistics are the primary's: the scrape still has them.
      expect(await metricValue('foreman_metrics_table_read_success')).toBe(1)
      expect(await metricValue(`foreman_table_live_tuples{table="${f.tables.jobs}"}`)).toBeNumber()
    } finally {
      await pair.resumeReplay()
    }
    await pair.caughtUp()
    const seen = await reads(kind, queue, worker)
    expect(seen.jobs).toHaveLength(2)
    expect(seen.runs).toHaveLength(1)
    expect(seen.queue).toMatchObject({ queue })
    expect(seen.worker).toMatchObject({ worker_id: worker })
    expect(seen.stats).toBeGreaterThan(0)
    expect(await metricValue('foreman_jobs_count{status="active"}')).toBe((activeBefore ?? 0) + 1)
  })

  test('a job just written is read back by id at once: a miss on the replica asks the primary', async () => {
    const kind = uniqueKind('own-write')
    await pair.pauseReplay()
    try {
      const job = await postOk(f, '/jobs', { kind })
      const { run } = await claimOne(f, kind, 'w-own')
      const read = await f.call('GET', `/jobs/${job.id}?include=current_run`)
      expect(read.status).toBe(200)
      expect(read.body).toMatchObject({ id: job.id, status: 'active' })
      const runs = await f.call('GET', `/jobs/${job.id}/runs`)
      expect(ids(runs.body)).toEqual([run.id])
      expect((await f.call('GET', `/runs/${run.id}`)).body).toMatchObject({ id: run.id, status: 'running' })
      expect((await f.call('GET', `/jobs/${job.id}/dependents`)).status).toBe(200)
      // Unknown on both is still a 404.
      expect((await f.call('GET', `/jobs/${newJobId()}`)).status).toBe(404)
      expect((await f.call('GET', `/runs/${newRunId()}`)).status).toBe(404)
      expect((await f.call('GET', `/jobs/${newJobId()}/runs`)).status).toBe(404)
    } finally {
      await pair.resumeReplay()
    }
  })

  test('a job the replica has is answered as the replica has it (reads by id are as fresh as the replica)', async () => {
    const kind = uniqueKind('stale')
    const job = await postOk(f, '/jobs', { kind })
    await pair.caughtUp()
    await pair.pauseReplay()
    try {
      const { run } = await claimOne(f, kind, 'w-stale')
      await postOk(f, `/runs/${run.id}/complete`, { worker_id: 'w-stale' })
      expect((await f.call('GET', `/jobs/${job.id}`)).body.status).toBe('pending')
    } finally {
      await pair.resumeReplay()
    }
    await pair.caughtUp()
    expect((await f.call('GET', `/jobs/${job.id}`)).body.status).toBe('succeeded')
  })
})

test('with the replica down, its reads answer 503 and transitions go on', async () => {
  const down = `postgres://postgres:x@127.0.0.1:${await freePort()}/postgres`
  const g = await startFixture(
    { readDatabaseUrl: down },
    { url: pair.primaryUrl, prefix: f.tables.prefix, keepTables: true },
  )
  const job = await postOk(g, '/jobs', { kind: uniqueKind('replica-down') })
  const list = await g.call('GET', '/jobs')
  expect(list.status).toBe(503)
  expect(list.body.error).toBeString()
  expect((await g.call('POST', `/jobs/${job.id}/cancel`)).status).toBe(200)
})

test('a started Foreman opens its read pool on FOREMAN_READ_DATABASE_URL', async () => {
  const prefix = uniquePrefix()
  const env = {
    DATABASE_URL: pair.primaryUrl,
    FOREMAN_READ_DATABASE_URL: pair.replicaUrl,
    PORT: '0',
    FOREMAN_TABLE_PREFIX: prefix,
  }
  const running = await startForeman(loadConfig(env), createLogger('PROD', 'silent'))
  const replica = postgres(pair.replicaUrl, { max: 1, onnotice: () => {} })
  try {
    await pair.caughtUp()
    const base = `http://127.0.0.1:${running.port}/foreman`
    expect((await fetch(`${base}/jobs`)).status).toBe(200)
    const readers = await replica<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity where application_name = 'foreman-read'`
    expect(readers[0]?.n).toBeGreaterThan(0)
  } finally {
    await running.shutdown()
    await replica.end()
    const primary = postgres(pair.primaryUrl, { max: 1, onnotice: () => {} })
    await dropTables(primary, tablesFor(prefix))
    await primary.end()
  }
})
