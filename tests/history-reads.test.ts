/**
 * Reads cannot tell history from the hot tables (issue 14): every read route
 * answers the same before and after finished jobs move (src/history/), for jobs
 * in every status, across several day partitions, whatever the filter or page.
 */
import { expect, test } from 'bun:test'
import { jobsByIds, jobsChangedSince, type ReplayCursor, type StreamFilter } from '../src/events/sql'
import { moveFinishedJobs } from '../src/history/service'
import { claimOne, postOk, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()
const { sql, tables: t } = f
const started = new Date(Date.now() - 5 * 86_400_000).toISOString()

const A = uniqueKind('hist-a')
const B = uniqueKind('hist-b')
const C = uniqueKind('hist-c')
const D = uniqueKind('hist-d')

/** Shifts a finished job and its runs back in time, as if it had run `days` ago (another day partition). */
async function age(jobId: string, days: number) {
  const by = `${days} days`
  await sql`
    update ${sql(t.jobs)} set enqueued_at = enqueued_at - ${by}::interval, started_at = started_at - ${by}::interval,
      completed_at = completed_at - ${by}::interval, updated_at = updated_at - ${by}::interval
    where id = ${jobId}`
  await sql`
    update ${sql(t.runs)} set started_at = started_at - ${by}::interval, finished_at = finished_at - ${by}::interval,
      created_at = created_at - ${by}::interval, updated_at = updated_at - ${by}::interval
    where job_id = ${jobId}`
}

// Every status, with runs that succeeded, failed, were retried and still run.
const parent = await postOk(f, '/jobs', { kind: A, queue: 'qa', params: { role: 'parent' } })
const child1 = await postOk(f, '/jobs', { kind: C, queue: 'qc', depends_on: [parent.id] })
const child2 = await postOk(f, '/jobs', { kind: C, queue: 'qc', depends_on: [parent.id] })
const parentRun = (await claimOne(f, A, 'w-1')).run
await postOk(f, `/runs/${parentRun.id}/complete`, { worker_id: 'w-1', result: { ok: 1 } })

const failed = await postOk(f, '/jobs', { kind: A, queue: 'qa', max_attempts: 2 })
const firstTry = (await claimOne(f, A, 'w-1')).run
await postOk(f, `/runs/${firstTry.id}/fail`, { worker_id: 'w-1', error: 'once', retryable: true, backoff_seconds: 0 })
const secondTry = (await claimOne(f, A, 'w-2')).run
await postOk(f, `/runs/${secondTry.id}/fail`, { worker_id: 'w-2', error: 'twice' })

const cancelled = await postOk(f, '/jobs', { kind: A, queue: 'qa' })
await postOk(f, `/jobs/${cancelled.id}/cancel`, undefined)
const active = await postOk(f, '/jobs', { kind: A, queue: 'qa' })
const activeRun = (await claimOne(f, A, 'w-2')).run
await postOk(f, `/runs/${activeRun.id}/heartbeat`, { worker_id: 'w-2', progress_current: 3, progress_total: 10 })
const pending = await postOk(f, '/jobs', { kind: A, queue: 'qa' })
const waiting = await postOk(f, '/jobs', { kind: A, queue: 'qa', depends_on: [pending.id] })
// The first child runs now; its dependency (the parent) is about to move.
const claimedBefore = await claimOne(f, C, 'w-3')

const b1 = await postOk(f, '/jobs', { kind: B, queue: 'qb', service: 'svc', params: { x: 1 } })
const b1Run = (await claimOne(f, B, 'w-3')).run
await postOk(f, `/runs/${b1Run.id}/complete`, { worker_id: 'w-3', result: 'done' })
const b2 = await postOk(f, '/jobs', { kind: B, queue: 'qb', params: { x: 2 } })
await postOk(f, `/jobs/${b2.id}/cancel`, undefined)
const b3 = await postOk(f, '/jobs', { kind: B, queue: 'qb', service: 'svc', params: { x: 1 } })

// Days gone by: these land in other day partitions.
const old1 = await postOk(f, '/jobs', { kind: A, queue: 'qa' })
await postOk(f, `/jobs/${old1.id}/cancel`, undefined)
await age(old1.id, 2)
const old2 = await postOk(f, '/jobs', { kind: D, queue: 'qold' })
const old2Run = (await claimOne(f, D, 'w-old')).run
await postOk(f, `/runs/${old2Run.id}/complete`, { worker_id: 'w-old', result: [1, 2] })
await age(old2.id, 3)

const jobs = [parent, child1, child2, failed, cancelled, active, pending, waiting, b1, b2, b3, old1, old2]
const runs = [parentRun, firstTry, secondTry, activeRun, claimedBefore.run, b1Run, old2Run]

/** Status and body of a GET. */
const get = async (path: string) => {
  const res = await f.call('GET', path)
  return { status: res.status, body: res.body }
}

/** Every page of a list, `limit` at a time, following the last id as the cursor. */
async function allPages(path: string, query: Record<string, string>, limit: number) {
  const pages = []
  let cursor: string | undefined
  for (let i = 0; i < 50; i++) {
    const qs = new URLSearchParams({ ...query, limit: String(limit), ...(cursor ? { cursor } : {}) })
    const page = await get(`${path}?${qs}`)
    pages.push(page)
    const rows = page.body as { id: string }[]
    if (page.status !== 200 || rows.length < limit) return pages
    cursor = rows.at(-1)?.id
  }
  throw new Error(`${path} did not end`)
}

const JOB_FILTERS: Record<string, string>[] = [
  {},
  { include: 'current_run' },
  ...['waiting', 'pending', 'active', 'succeeded', 'failed', 'cancelled'].map((status) => ({ status })),
  { kind: A },
  { kind: B, status: 'succeeded' },
  { queue: 'qb' },
  { queue: 'qold' },
  { service: 'svc' },
  { params: JSON.stringify({ x: 1 }) },
]
const RUN_FILTERS: Record<string, string>[] = [
  {},
  ...['running', 'succeeded', 'failed', 'abandoned'].map((status) => ({ status })),
  { worker_id: 'w-2' },
  { job_id: failed.id },
  { kind: A },
  { kind: B, status: 'succeeded' },
]

/** Every replay page from `after`, `limit` at a time. */
async function replay(after: ReplayCursor, filter: StreamFilter, limit: number) {
  const seen = []
  let cursor = after
  for (let i = 0; i < 50; i++) {
    const page = await jobsChangedSince(sql, t, cursor, filter, limit)
    seen.push(...page)
    const last = page.at(-1)
    if (!last || page.length < limit) return seen
    cursor = { version: last.version, id: last.job.id }
  }
  throw new Error('replay did not end')
}

/** Gauges of the scrape by status. */
async function scrapedCounts() {
  const res = await f.app.handle(new Request('http://localhost/foreman/metrics'))
  const text = await res.text()
  return text.split('\n').filter((l) => /^foreman_(jobs|runs)_count\{/.test(l))
}

/** Everything a user can read, with the fields that move with the clock taken out. */
async function everyRead() {
  const reads: Record<string, unknown> = {}
  for (const q of JOB_FILTERS) {
    reads[`GET /jobs ${JSON.stringify(q)}`] = await get(`/jobs?${new URLSearchParams(q)}`)
    for (const limit of [1, 3]) reads[`GET /jobs ${JSON.stringify(q)} by ${limit}`] = await allPages('/jobs', q, limit)
  }
  for (const q of RUN_FILTERS) {
    reads[`GET /runs ${JSON.stringify(q)}`] = await get(`/runs?${new URLSearchParams(q)}`)
    reads[`GET /runs ${JSON.stringify(q)} by 2`] = await allPages('/runs', q, 2)
  }
  for (const job of jobs) {
    for (const path of ['', '?include=current_run', '/runs', '/dependents']) {
      reads[`GET /jobs/${job.id}${path}`] = await get(`/jobs/${job.id}${path}`)
    }
  }
  for (const run of runs) reads[`GET /runs/${run.id}`] = await get(`/runs/${run.id}`)
  for (const window of ['15m', '1h', '24h']) {
    const { status, body } = await get(`/stats?window=${window}`)
    reads[`GET /stats ${window}`] = { status, rows: body.rows }
  }
  const queues = await get('/queues')
  reads['GET /queues'] = queues.body.map(({ oldest_pending_age_seconds: _, ...q }: Record<string, unknown>) => q)
  reads['GET /workers'] = await get('/workers')
  reads['/metrics counts'] = await scrapedCounts()
  const ids = jobs.map((j) => j.id)
  reads['live re-read'] = (await jobsByIds(sql, t, ids)).sort((a, b) => a.job.id.localeCompare(b.job.id))
  const from = { version: started, id: '' }
  for (const filter of [{}, { kind: A }, { status: 'succeeded' }, { status: 'active' }, { queue: 'qb' }]) {
    for (const limit of [1, 4, 500])
      reads[`replay ${JSON.stringify(filter)} by ${limit}`] = await replay(from, filter, limit)
  }
  return reads
}

test('every read answers the same after finished jobs move to history', async () => {
  const before = await everyRead()
  // The reads see what they should: a sanity check of the fixture, not of history.
  expect((before['GET /jobs {}'] as { body: unknown[] }).body).toHaveLength(jobs.length)
  expect((before['GET /runs {}'] as { body: unknown[] }).body).toHaveLength(runs.length)

  const { moved } = await moveFinishedJobs(f.deps, 0)
  expect(moved).toBe(7)
  const [days] = await sql<{ n: number }[]>`
    select count(distinct completed_at::date)::int as n from ${sql(t.jobsHistory)}`
  expect(days?.n).toBeGreaterThanOrEqual(3)
  const [hot] = await sql<{ n: number }[]>`select count(*)::int as n from ${sql(t.jobs)}`
  expect(hot?.n).toBe(jobs.length - moved)

  const after = await everyRead()
  for (const key of Object.keys(before)) expect([key, after[key]]).toEqual([key, before[key]])
})

test('a job claimed after its dependency moved answers the same dependencies', async () => {
  const claimedAfter = await claimOne(f, C, 'w-3')
  expect(claimedAfter.job.id).toBe(child2.id)
  expect(claimedAfter.job.dependencies).toEqual(claimedBefore.job.dependencies)
  expect(claimedAfter.job.dependencies).toEqual([{ id: parent.id, kind: A, status: 'succeeded', result: { ok: 1 } }])
})

test('a job and run that do not exist are still 404', async () => {
  for (const path of ['/jobs/job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D', '/jobs/job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D/runs']) {
    expect((await get(path)).status).toBe(404)
  }
  expect((await get('/runs/run_01JD8X3Q4N6V7W8Y9Z0A1B2C3D')).status).toBe(404)
  expect((await get('/jobs/job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D/dependents')).status).toBe(404)
})
