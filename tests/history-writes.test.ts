/**
 * Writes on finished jobs that moved to history (issue 14): idempotency keys
 * stay taken across the move, and retry, delete and cancel (one and in bulk)
 * find the job there. Dependencies on jobs in history: history-writes-deps.test.ts.
 */
import { describe, expect, test } from 'bun:test'
import { moveFinishedJobs } from '../src/history/service'
import { enqueueFromSchedule } from '../src/schedules/service'
import { scheduleGet } from '../src/schedules/sql'
import { claimOne, enqueueJob, postOk, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()
const { sql, tables: t } = f
const UNKNOWN = 'job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D'

/** Where a job is now: 'hot', 'history', or 'gone'. */
async function placeOf(id: string): Promise<'hot' | 'history' | 'gone'> {
  if ((await sql`select 1 from ${sql(t.jobs)} where id = ${id}`).length > 0) return 'hot'
  if ((await sql`select 1 from ${sql(t.jobsHistory)} where id = ${id}`).length > 0) return 'history'
  return 'gone'
}

/** Run ids of a job in the hot table and in history. */
async function runsOf(id: string) {
  const hot = await sql<{ id: string }[]>`select id from ${sql(t.runs)} where job_id = ${id} order by attempt`
  const old = await sql<{ id: string }[]>`select id from ${sql(t.runsHistory)} where job_id = ${id} order by attempt`
  return { hot: hot.map((r) => r.id), history: old.map((r) => r.id) }
}

/** Moves every finished job to history and checks that these did move. */
async function toHistory(...ids: string[]) {
  await moveFinishedJobs(f.deps, 0)
  for (const id of ids) expect(await placeOf(id)).toBe('history')
}

/** A job that ran once and failed for good. */
async function failedJob(body: Record<string, unknown> = {}) {
  const job = await enqueueJob(f, body)
  const { run } = await claimOne(f, job.kind, 'w-history')
  return postOk(f, `/runs/${run.id}/fail`, { worker_id: 'w-history', error: 'boom', retryable: false })
}

/** A job that ran once and succeeded. */
async function succeededJob(body: Record<string, unknown> = {}) {
  const job = await enqueueJob(f, body)
  const { run } = await claimOne(f, job.kind, 'w-history')
  return postOk(f, `/runs/${run.id}/complete`, { worker_id: 'w-history', result: { ok: true } })
}

describe('idempotency keys across the move', () => {
  test('a key whose job moved to history still answers 409 with that job; nothing is created', async () => {
    const job = await succeededJob({ kind: uniqueKind('key-moved'), idempotency_key: 'once' })
    await toHistory(job.id)
    const again = await f.call('POST', '/jobs', { kind: job.kind, idempotency_key: 'once', params: { n: 2 } })
    expect(again.status).toBe(409)
    expect(again.body.job).toMatchObject({ id: job.id, status: 'succeeded', result: { ok: true } })
    expect(await sql`select 1 from ${sql(t.jobs)} where kind = ${job.kind}`).toHaveLength(0)
  })

  test('32 concurrent identical enqueues after the move create nothing, and all answer the job in history', async () => {
    const job = await failedJob({ kind: uniqueKind('key-race'), idempotency_key: 'same' })
    await toHistory(job.id)
    const body = { kind: job.kind, idempotency_key: 'same' }
    const answers = await Promise.all(Array.from({ length: 32 }, () => f.call('POST', '/jobs', body)))
    expect(answers.map((a) => a.status)).toEqual(Array(32).fill(409))
    expect(new Set(answers.map((a) => a.body.job.id))).toEqual(new Set([job.id]))
    expect(await sql`select 1 from ${sql(t.jobs)} where kind = ${job.kind}`).toHaveLength(0)
    expect(await sql`select 1 from ${sql(t.jobsHistory)} where kind = ${job.kind}`).toHaveLength(1)
  })

  test('a batch answers a key held in history as existing (created false), beside new and repeated keys', async () => {
    const old = await succeededJob({ kind: uniqueKind('key-batch'), idempotency_key: 'old' })
    await toHistory(old.id)
    const res = await f.call('POST', '/jobs/batch', {
      jobs: [
        { kind: old.kind, idempotency_key: 'old' },
        { kind: old.kind, idempotency_key: 'new' },
        { kind: old.kind, idempotency_key: 'new' },
        { kind: old.kind },
      ],
    })
    expect(res.status).toBe(200)
    const jobs = res.body.jobs as { created: boolean; job: { id: string; status: string } }[]
    expect(jobs.map((j) => j.created)).toEqual([false, true, false, true])
    expect(jobs[0]?.job).toMatchObject({ id: old.id, status: 'succeeded' })
    expect(jobs[2]?.job.id).toBe(jobs[1]?.job.id)
  })

  test('a graph node whose key is held in history resolves to that job; its dependent counts it as succeeded', async () => {
    const old = await succeededJob({ kind: uniqueKind('key-graph'), idempotency_key: 'a' })
    await toHistory(old.id)
    const res = await f.call('POST', '/jobs/batch', {
      jobs: [
        { ref: 'a', kind: old.kind, idempotency_key: 'a' },
        { ref: 'b', kind: old.kind, depends_on: ['a'] },
      ],
    })
    expect(res.status).toBe(200)
    expect(res.body.jobs[0]).toMatchObject({ created: false, job: { id: old.id } })
    expect(res.body.jobs[1]).toMatchObject({ created: true, job: { status: 'pending' } })
    expect(res.body.refs).toEqual({ a: old.id, b: res.body.jobs[1].job.id })
  })

  test("a schedule's fire key whose job moved to history creates no second job", async () => {
    const kind = uniqueKind('key-sched')
    const created = await postOk(f, '/schedules', { kind, cron_expr: '@hourly' })
    const schedule = await scheduleGet(sql, t, created.id)
    const key = `sched:${created.id}:${schedule?.next_fire_at}`
    const first = await enqueueFromSchedule(sql, f.deps, schedule!, key)
    await postOk(f, `/jobs/${first.job.id}/cancel`, undefined)
    await toHistory(first.job.id)
    const again = await enqueueFromSchedule(sql, f.deps, schedule!, key)
    expect(again).toMatchObject({ created: false, job: { id: first.job.id, status: 'cancelled' } })
    expect(await sql`select 1 from ${sql(t.jobs)} where kind = ${kind}`).toHaveLength(0)
  })

  test('deleting the job in history frees its key', async () => {
    const job = await succeededJob({ kind: uniqueKind('key-free'), idempotency_key: 'k' })
    await toHistory(job.id)
    expect((await f.call('DELETE', `/jobs/${job.id}`)).status).toBe(200)
    const again = await f.call('POST', '/jobs', { kind: job.kind, idempotency_key: 'k' })
    expect(again.status).toBe(201)
    expect(again.body.id).not.toBe(job.id)
  })
})

describe('actions on a job in history', () => {
  test('retry brings a failed job back to the hot table with its runs, pending; a second claim is attempt 2', async () => {
    const job = await failedJob({ max_attempts: 1 })
    const runs = await runsOf(job.id)
    await toHistory(job.id)
    const res = await f.call('POST', `/jobs/${job.id}/retry`)
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ id: job.id, status: 'pending', attempt_count: 1, max_attempts: 2 })
    expect(await placeOf(job.id)).toBe('hot')
    expect(await runsOf(job.id)).toEqual({ hot: runs.hot, history: [] })
    const { run } = await claimOne(f, job.kind, 'w-again')
    expect(run.attempt).toBe(2)
  })

  test('retry of a succeeded job in history is a 409 and leaves it in history; an unknown id is a 404', async () => {
    const job = await succeededJob()
    await toHistory(job.id)
    expect((await f.call('POST', `/jobs/${job.id}/retry`)).status).toBe(409)
    expect(await placeOf(job.id)).toBe('history')
    expect((await runsOf(job.id)).history).toHaveLength(1)
    expect((await f.call('POST', `/jobs/${UNKNOWN}/retry`)).status).toBe(404)
  })

  test('retry with cascade re-arms the dependents its end cancelled, from history too', async () => {
    const kind = uniqueKind('cascade')
    const parent = await enqueueJob(f, { kind })
    const child = await enqueueJob(f, { kind: `${kind}-child`, depends_on: [parent.id] })
    const grandchild = await enqueueJob(f, { kind: `${kind}-grand`, depends_on: [child.id] })
    const { run } = await claimOne(f, kind, 'w-cascade')
    await postOk(f, `/runs/${run.id}/fail`, { worker_id: 'w-cascade', error: 'no', retryable: false })
    await toHistory(parent.id, child.id, grandchild.id)
    const res = await f.call('POST', `/jobs/${parent.id}/retry?cascade=true`)
    expect(res.status).toBe(200)
    expect(res.body.status).toBe('pending')
    const rows = await sql<{ id: string; status: string; waiting_on: number }[]>`
      select id, status, waiting_on from ${sql(t.jobs)} where id in ${sql([child.id, grandchild.id])} order by id`
    expect(rows.map((r) => [r.id, r.status, r.waiting_on])).toEqual([
      [child.id, 'waiting', 1],
      [grandchild.id, 'waiting', 1],
    ])
  })

  test('delete removes a job in history with its runs; cancel answers one unchanged', async () => {
    const done = await succeededJob()
    const cancelled = await postOk(f, `/jobs/${(await enqueueJob(f)).id}/cancel`, undefined)
    await toHistory(done.id, cancelled.id)
    const again = await f.call('POST', `/jobs/${done.id}/cancel`)
    expect(again.status).toBe(200)
    expect(again.body).toMatchObject({ id: done.id, status: 'succeeded', updated_at: done.updated_at })
    expect(await placeOf(done.id)).toBe('history')
    expect((await f.call('POST', `/jobs/${cancelled.id}/cancel`)).body.status).toBe('cancelled')

    expect((await f.call('DELETE', `/jobs/${done.id}`)).body).toEqual({ id: done.id })
    expect(await placeOf(done.id)).toBe('gone')
    expect(await runsOf(done.id)).toEqual({ hot: [], history: [] })
    expect((await f.call('DELETE', `/jobs/${done.id}`)).status).toBe(404)
  })
})

describe("a worker's late call on a run in history", () => {
  test('heartbeat, complete and fail, by run or by job, are refused as not running (409), not unknown', async () => {
    const job = await enqueueJob(f)
    const { run } = await claimOne(f, job.kind, 'w-late')
    await postOk(f, `/runs/${run.id}/complete`, { worker_id: 'w-late' })
    await toHistory(job.id)
    const body = { worker_id: 'w-late', error: 'late' }
    for (const path of [`/runs/${run.id}`, `/jobs/${job.id}`]) {
      for (const call of ['heartbeat', 'complete', 'fail']) {
        const res = await f.call('POST', `${path}/${call}`, body)
        expect([path, call, res.status]).toEqual([path, call, 409])
      }
    }
    expect((await f.call('POST', '/runs/run_01JD8X3Q4N6V7W8Y9Z0A1B2C3D/complete', body)).status).toBe(404)
    expect((await f.call('POST', `/jobs/${UNKNOWN}/complete`, body)).status).toBe(404)
  })
})

describe('bulk actions reach history', () => {
  test('bulk retry by filter takes jobs in history and hot ones alike, limit by limit, oldest first', async () => {
    const kind = uniqueKind('bulk-retry')
    const moved = [await failedJob({ kind }), await failedJob({ kind }), await failedJob({ kind })]
    await toHistory(...moved.map((j) => j.id))
    const hot = [await failedJob({ kind }), await failedJob({ kind })]
    const dry = await postOk(f, '/jobs/bulk', { action: 'retry', filter: { kind }, dry_run: true })
    expect(dry).toEqual({ matched: 5, changed: 0, more: false })
    const first = await postOk(f, '/jobs/bulk', { action: 'retry', filter: { kind }, limit: 2 })
    expect(first).toEqual({ matched: 2, changed: 2, more: true })
    const rest = await postOk(f, '/jobs/bulk', { action: 'retry', filter: { kind }, limit: 10 })
    expect(rest).toEqual({ matched: 3, changed: 3, more: false })
    for (const job of [...moved, ...hot]) expect(await placeOf(job.id)).toBe('hot')
    const statuses = await sql`select distinct status from ${sql(t.jobs)} where kind = ${kind}`
    expect(statuses.map((r) => r.status)).toEqual(['pending'])
  })

  test('bulk delete by filter removes jobs in history and hot ones, with their runs and keys', async () => {
    const kind = uniqueKind('bulk-delete')
    const moved = [await succeededJob({ kind, idempotency_key: 'a' }), await failedJob({ kind })]
    await toHistory(...moved.map((j) => j.id))
    const hot = [await succeededJob({ kind }), await failedJob({ kind })]
    const first = await postOk(f, '/jobs/bulk', { action: 'delete', filter: { kind }, limit: 3 })
    expect(first).toEqual({ matched: 3, changed: 3, more: true })
    const rest = await postOk(f, '/jobs/bulk', { action: 'delete', filter: { kind } })
    expect(rest).toEqual({ matched: 1, changed: 1, more: false })
    for (const job of [...moved, ...hot]) {
      expect(await placeOf(job.id)).toBe('gone')
      expect(await runsOf(job.id)).toEqual({ hot: [], history: [] })
    }
    expect(await sql`select 1 from ${sql(t.jobKeys)} where kind = ${kind}`).toHaveLength(0)
  })
})
