/**
 * The concurrency key (issue 12) travels with a job from every way in: single and
 * batch enqueue, schedules (create, replace, the timed fire and fire-now), and
 * every job answer carries it (null when none). Limits that count by it are
 * enforced by the claim, which is tested on its own.
 */
import { describe, expect, test } from 'bun:test'
import { fireDueSchedules } from '../src/sweeps/scheduler'
import { claimOne, enqueueJob, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()

const TOO_LONG = 'k'.repeat(201)

describe('POST /jobs with concurrency_key', () => {
  test('stores the key; GET, the list and the claim answer it', async () => {
    const kind = uniqueKind('ck-single')
    const job = await enqueueJob(f, { kind, concurrency_key: 'customer-42' })
    expect(job.concurrency_key).toBe('customer-42')
    expect((await f.call('GET', `/jobs/${job.id}`)).body.concurrency_key).toBe('customer-42')
    expect((await f.call('GET', `/jobs?kind=${kind}`)).body[0].concurrency_key).toBe('customer-42')
    expect((await claimOne(f, kind)).job.concurrency_key).toBe('customer-42')
  })

  test('every job answer carries concurrency_key, null when none was given (or null was)', async () => {
    expect(await enqueueJob(f)).toHaveProperty('concurrency_key', null)
    expect(await enqueueJob(f, { concurrency_key: null })).toHaveProperty('concurrency_key', null)
  })

  test('a key of 200 characters is stored whole', async () => {
    const key = 'k'.repeat(200)
    expect((await enqueueJob(f, { concurrency_key: key })).concurrency_key).toBe(key)
  })

  test('an idempotent duplicate answers the stored job with its own key', async () => {
    const kind = uniqueKind('ck-dup')
    const first = await enqueueJob(f, { kind, idempotency_key: 'once', concurrency_key: 'a' })
    const again = await f.call('POST', '/jobs', { kind, idempotency_key: 'once', concurrency_key: 'b' })
    expect(again.status).toBe(409)
    expect(again.body.job).toMatchObject({ id: first.id, concurrency_key: 'a' })
  })

  for (const [label, key] of [
    ['empty', ''],
    ['over 200 characters', TOO_LONG],
    ['not a string', 42],
  ] as const) {
    test(`a key ${label} is a 400 naming concurrency_key, and nothing is stored`, async () => {
      const kind = uniqueKind('ck-bad')
      const res = await f.call('POST', '/jobs', { kind, concurrency_key: key })
      expect(res.status).toBe(400)
      expect(res.body.field).toBe('concurrency_key')
      expect(res.body.error).toBe('concurrency_key: must be a string of 1–200 characters or null')
      expect((await f.call('GET', `/jobs?kind=${kind}`)).body).toEqual([])
    })
  }
})

describe('POST /jobs/batch with concurrency_key', () => {
  test('each item keeps its own key, or null', async () => {
    const kind = uniqueKind('ck-batch')
    const res = await f.call('POST', '/jobs/batch', {
      jobs: [{ kind, concurrency_key: 'a' }, { kind }, { kind, concurrency_key: 'b', idempotency_key: 'x' }],
    })
    expect(res.status).toBe(200)
    expect(res.body.jobs.map((o: any) => o.job.concurrency_key)).toEqual(['a', null, 'b'])
    const stored = await f.sql`select concurrency_key from ${f.sql(f.tables.jobs)} where kind = ${kind} order by id`
    expect(stored.map((r) => r.concurrency_key)).toEqual(['a', null, 'b'])
  })

  test('a bad key refuses the whole batch with a 400 naming jobs.N.concurrency_key', async () => {
    const kind = uniqueKind('ck-batch-bad')
    for (const bad of ['', TOO_LONG]) {
      const jobs = [{ kind }, { kind }, { kind }, { kind, concurrency_key: bad }]
      const res = await f.call('POST', '/jobs/batch', { jobs })
      expect(res.status).toBe(400)
      expect(res.body.field).toBe('jobs.3.concurrency_key')
    }
    expect((await f.call('GET', `/jobs?kind=${kind}`)).body).toEqual([])
  })
})

describe('schedules with concurrency_key', () => {
  const createSchedule = async (body: Record<string, unknown>) => {
    const res = await f.call('POST', '/schedules', { cron_expr: '@hourly', ...body })
    expect(res.status).toBe(201)
    return res.body
  }

  test('create stores it, PUT replaces it (omitted is null: a full replace)', async () => {
    const kind = uniqueKind('ck-sched')
    const s = await createSchedule({ kind, concurrency_key: 'tenant-1' })
    expect(s.concurrency_key).toBe('tenant-1')
    expect((await f.call('GET', `/schedules/${s.id}`)).body.concurrency_key).toBe('tenant-1')
    const put = async (body: Record<string, unknown>) =>
      (await f.call('PUT', `/schedules/${s.id}`, { kind, cron_expr: '@hourly', ...body })).body
    expect((await put({ concurrency_key: 'tenant-2' })).concurrency_key).toBe('tenant-2')
    expect((await put({})).concurrency_key).toBeNull()
    expect((await createSchedule({ kind })).concurrency_key).toBeNull()
  })

  test('a bad key is a 400 naming concurrency_key on create and replace', async () => {
    const kind = uniqueKind('ck-sched-bad')
    const created = await f.call('POST', '/schedules', { kind, cron_expr: '@hourly', concurrency_key: '' })
    expect([created.status, created.body.field]).toEqual([400, 'concurrency_key'])
    const s = await createSchedule({ kind })
    const put = await f.call('PUT', `/schedules/${s.id}`, { kind, cron_expr: '@hourly', concurrency_key: TOO_LONG })
    expect([put.status, put.body.field]).toEqual([400, 'concurrency_key'])
  })

  test('fire-now enqueues a job carrying the schedule key', async () => {
    const s = await createSchedule({ kind: uniqueKind('ck-fire'), concurrency_key: 'tenant-fire' })
    const fired = await f.call('POST', `/schedules/${s.id}/fire`)
    expect(fired.status).toBe(200)
    expect(fired.body.concurrency_key).toBe('tenant-fire')
  })

  test('the timed fire enqueues a job carrying the schedule key', async () => {
    const kind = uniqueKind('ck-tick')
    const s = await createSchedule({ kind, concurrency_key: 'tenant-tick' })
    await f.sql`update ${f.sql(f.tables.schedules)} set next_fire_at = now() - interval '1 minute' where id = ${s.id}`
    await fireDueSchedules(f.deps)
    const jobs = (await f.call('GET', `/jobs?kind=${kind}`)).body
    expect(jobs.map((j: any) => j.concurrency_key)).toEqual(['tenant-tick'])
  })
})
