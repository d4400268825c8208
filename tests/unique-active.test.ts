/**
 * `unique_while_active` and `debounce_seconds` (issue 13): a key unique only among
 * its kind's live jobs, reusable once the holder has ended; a debounce that moves
 * a pending holder instead of duplicating it; both under concurrent enqueues.
 */
import { describe, expect, test } from 'bun:test'
import { ForemanClient } from '../src/client'
import type { Sql } from '../src/db/client'
import { newJobId } from '../src/ids'
import { jobDebounce, jobInsertWhileActive } from '../src/jobs/unique-sql'
import { createExplainer } from './support/explain'
import { blockedOn, claimOne, holdLock, jobInsertOf, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()

type Outcome = { created: boolean; debounced?: boolean; job: any }

/** POST /jobs with a key unique while active; answers status and body. */
const enqueueWhileActive = (kind: string, key: string, extra: Record<string, unknown> = {}) =>
  f.call('POST', '/jobs', { kind, idempotency_key: key, unique_while_active: true, ...extra })

/** POST /jobs with a debounce; answers status and body. */
const debounce = (kind: string, key: string, seconds: number, params: unknown = {}) =>
  f.call('POST', '/jobs', { kind, idempotency_key: key, debounce_seconds: seconds, params })

/** The stored jobs of `kind`, oldest first. */
async function storedJobs(kind: string) {
  return f.sql<{ id: string; status: string; params: any }[]>`
    select id, status, params from ${f.sql(f.tables.jobs)} where kind = ${kind} order by id`
}

/** Ends `jobId` (the only job of its kind) as `how`. */
async function finish(kind: string, jobId: string, how: 'succeeded' | 'failed' | 'cancelled') {
  if (how === 'cancelled') {
    expect((await f.call('POST', `/jobs/${jobId}/cancel`)).status).toBe(200)
    return
  }
  const { job, run } = await claimOne(f, kind)
  expect(job.id).toBe(jobId)
  const action = how === 'succeeded' ? 'complete' : 'fail'
  expect((await f.call('POST', `/runs/${run.id}/${action}`, { worker_id: 'worker-1' })).status).toBe(200)
}

describe('unique_while_active', () => {
  test('32 concurrent identical enqueues create one job: one 201, 31 × 409 with its id', async () => {
    const kind = uniqueKind('race')
    const answers = await Promise.all(Array.from({ length: 32 }, () => enqueueWhileActive(kind, 'k')))
    const created = answers.filter((a) => a.status === 201)
    expect(created).toHaveLength(1)
    const id = created[0]!.body.id
    const duplicates = answers.filter((a) => a.status === 409)
    expect(duplicates).toHaveLength(31)
    for (const d of duplicates) expect(d.body.job.id).toBe(id)
    expect((await storedJobs(kind)).map((j) => j.id)).toEqual([id])
  })

  test('an enqueue that loses to an insert committed after it began answers the winner', async () => {
    const kind = uniqueKind('lost-race')
    const winner = newJobId()
    const commitWinner = await holdLock(
      f,
      (tx) => tx`
        insert into ${tx(f.tables.jobs)} (id, kind, idempotency_key, unique_while_active)
        values (${winner}, ${kind}, 'k', true)`,
    )
    const answer = enqueueWhileActive(kind, 'k')
    await blockedOn(f, `'duplicate' as outcome`)
    await commitWinner()
    const res = await answer
    expect(res.status).toBe(409)
    expect(res.body.job.id).toBe(winner)
  })

  for (const how of ['succeeded', 'failed', 'cancelled'] as const) {
    test(`the key creates a new job once the holder has ${how}`, async () => {
      const kind = uniqueKind(`reuse-${how}`)
      const first = await enqueueWhileActive(kind, 'k')
      expect(first.status).toBe(201)
      await finish(kind, first.body.id, how)
      const again = await enqueueWhileActive(kind, 'k', { params: { n: 2 } })
      expect(again.status).toBe(201)
      expect(again.body.id).not.toBe(first.body.id)
      expect(again.body).toMatchObject({ status: 'pending', idempotency_key: 'k', params: { n: 2 } })
      expect(await storedJobs(kind)).toHaveLength(2)
    })
  }

  test('the key is not reusable while the holder is pending or active', async () => {
    const kind = uniqueKind('held')
    const first = await enqueueWhileActive(kind, 'k')
    expect(first.status).toBe(201)
    const whilePending = await enqueueWhileActive(kind, 'k')
    expect(whilePending.status).toBe(409)
    expect(whilePending.body.job).toMatchObject({ id: first.body.id, status: 'pending' })
    await claimOne(f, kind)
    const whileActive = await enqueueWhileActive(kind, 'k')
    expect(whileActive.status).toBe(409)
    expect(whileActive.body.job).toMatchObject({ id: first.body.id, status: 'active' })
    expect(await storedJobs(kind)).toHaveLength(1)
  })

  test('retrying an ended job whose key a newer live job holds answers 409 until that job ends', async () => {
    const kind = uniqueKind('retry-held')
    const first = await enqueueWhileActive(kind, 'k')
    await finish(kind, first.body.id, 'cancelled')
    const second = await enqueueWhileActive(kind, 'k')
    expect(second.status).toBe(201)
    const retry = await f.call('POST', `/jobs/${first.body.id}/retry`)
    expect(retry.status).toBe(409)
    expect(retry.body.error).toContain('unique_while_active')
    const bulk = await f.call('POST', '/jobs/bulk', { action: 'retry', ids: [first.body.id] })
    expect(bulk.status).toBe(409)
    expect((await storedJobs(kind)).map((j) => j.status)).toEqual(['cancelled', 'pending'])
    await finish(kind, second.body.id, 'cancelled')
    const retried = await f.call('POST', `/jobs/${first.body.id}/retry`)
    expect(retried.status).toBe(200)
    expect(retried.body).toMatchObject({ id: first.body.id, status: 'pending' })
  })

  test('a forever key and a while-active key with the same text are independent', async () => {
    const kind = uniqueKind('independent')
    const forever = await f.call('POST', '/jobs', { kind, idempotency_key: 'same' })
    expect(forever.status).toBe(201)
    const whileActive = await enqueueWhileActive(kind, 'same')
    expect(whileActive.status).toBe(201)
    expect(whileActive.body.id).not.toBe(forever.body.id)
    // Each still guards its own kind of key.
    const foreverAgain = await f.call('POST', '/jobs', { kind, idempotency_key: 'same' })
    expect(foreverAgain.status).toBe(409)
    expect(foreverAgain.body.job.id).toBe(forever.body.id)
    const whileActiveAgain = await enqueueWhileActive(kind, 'same')
    expect(whileActiveAgain.status).toBe(409)
    expect(whileActiveAgain.body.job.id).toBe(whileActive.body.id)
  })

  test('the same key in another kind is another key', async () => {
    const [a, b] = [uniqueKind('kind-a'), uniqueKind('kind-b')]
    expect((await enqueueWhileActive(a, 'k')).status).toBe(201)
    expect((await enqueueWhileActive(b, 'k')).status).toBe(201)
  })

  test('keeps the time limits it was given', async () => {
    const kind = uniqueKind('limits')
    const res = await enqueueWhileActive(kind, 'k', { expires_in_seconds: 60, timeout_seconds: 30 })
    expect(res.status).toBe(201)
    expect(res.body.timeout_seconds).toBe(30)
    expect((Date.parse(res.body.expires_at) - Date.now()) / 1000).toBeCloseTo(60, -1)
  })

  test('a kind with limits gets the flag and the slot row the limited claim needs', async () => {
    const kind = uniqueKind('limited')
    expect((await f.call('PUT', `/limits/${kind}`, { max_active_per_key: 1 })).status).toBe(200)
    const res = await enqueueWhileActive(kind, 'k', { concurrency_key: 'c' })
    expect(res.status).toBe(201)
    const [row] = await f.sql<{ flow_controlled: boolean; slots: number }[]>`
      select j.flow_controlled,
             (select count(*)::int from ${f.sql(f.tables.flowSlots)} s where s.kind = j.kind and s.key = 'c') as slots
      from ${f.sql(f.tables.jobs)} j where j.id = ${res.body.id}`
    expect(row).toEqual({ flow_controlled: true, slots: 1 })
    const { job } = await claimOne(f, kind)
    expect(job.id).toBe(res.body.id)
  })

  test('without an idempotency_key: 400 naming unique_while_active, nothing stored', async () => {
    const kind = uniqueKind('unkeyed')
    const res = await f.call('POST', '/jobs', { kind, unique_while_active: true })
    expect(res.status).toBe(400)
    expect(res.body.error).toStartWith('unique_while_active: ')
    expect(await storedJobs(kind)).toHaveLength(0)
  })

  test('unique_while_active false is an ordinary forever key', async () => {
    const kind = uniqueKind('false')
    const first = await f.call('POST', '/jobs', { kind, idempotency_key: 'k', unique_while_active: false })
    expect(first.status).toBe(201)
    await finish(kind, first.body.id, 'cancelled')
    const again = await f.call('POST', '/jobs', { kind, idempotency_key: 'k', unique_while_active: false })
    expect(again.status).toBe(409)
  })
})

describe('debounce_seconds', () => {
  test('the first enqueue creates a job due debounce_seconds from now', async () => {
    const kind = uniqueKind('first')
    const before = Date.now()
    const res = await debounce(kind, 'k', 60, { n: 1 })
    expect(res.status).toBe(201)
    expect(res.body.debounced).toBeUndefined()
    const dueIn = (Date.parse(res.body.scheduled_at) - before) / 1000
    expect(dueIn).toBeGreaterThanOrEqual(59)
    expect(dueIn).toBeLessThan(120)
  })

  test('a debounce answers 200, debounced, with the same id, the new params and a later due time', async () => {
    const kind = uniqueKind('moved')
    const first = await debounce(kind, 'k', 60, { n: 1 })
    expect(first.status).toBe(201)
    const second = await debounce(kind, 'k', 120, { n: 2 })
    expect(second.status).toBe(200)
    expect(second.body).toMatchObject({ id: first.body.id, debounced: true, status: 'pending', params: { n: 2 } })
    expect(Date.parse(second.body.scheduled_at)).toBeGreaterThan(Date.parse(first.body.scheduled_at))
    expect(Date.parse(second.body.updated_at)).toBeGreaterThan(Date.parse(first.body.updated_at))
    const got = await f.call('GET', `/jobs/${first.body.id}`)
    expect(got.body).toMatchObject({ params: { n: 2 }, scheduled_at: second.body.scheduled_at })
    expect(await storedJobs(kind)).toHaveLength(1)
  })

  test('20 concurrent debounces of one key end in one job with one of their params, moved', async () => {
    const kind = uniqueKind('debounce-race')
    const seed = await debounce(kind, 'k', 30, { n: -1 })
    expect(seed.status).toBe(201)
    const answers = await Promise.all(Array.from({ length: 20 }, (_, n) => debounce(kind, 'k', 600, { n })))
    for (const a of answers) {
      expect(a.status).toBe(200)
      expect(a.body).toMatchObject({ id: seed.body.id, debounced: true })
    }
    expect(await storedJobs(kind)).toHaveLength(1)
    const job = (await f.call('GET', `/jobs/${seed.body.id}`)).body
    expect(answers.map((a) => a.body.params.n)).toContain(job.params.n)
    expect(Date.parse(job.scheduled_at)).toBeGreaterThan(Date.parse(seed.body.scheduled_at))
    // Serialised on the row: each moved it in turn, so none was answered a due time
    // later than what is stored, and the stored params came with the stored due time.
    const stored = Date.parse(job.scheduled_at)
    for (const a of answers) expect(Date.parse(a.body.scheduled_at)).toBeLessThanOrEqual(stored)
    const last = answers.filter((a) => a.body.scheduled_at === job.scheduled_at).map((a) => a.body.params.n)
    expect(last).toContain(job.params.n)
  })

  test('20 concurrent first debounces create one job: one 201, the rest debounce it', async () => {
    const kind = uniqueKind('debounce-first-race')
    const answers = await Promise.all(Array.from({ length: 20 }, (_, n) => debounce(kind, 'k', 600, { n })))
    const created = answers.filter((a) => a.status === 201)
    expect(created).toHaveLength(1)
    const debounced = answers.filter((a) => a.status === 200)
    expect(debounced).toHaveLength(19)
    for (const a of debounced) expect(a.body).toMatchObject({ id: created[0]!.body.id, debounced: true })
    const jobs = await storedJobs(kind)
    expect(jobs).toHaveLength(1)
    expect(answers.map((a) => a.body.params.n)).toContain(jobs[0]!.params.n)
  })

  test('while the holder is active, a debounce answers 409 and changes nothing', async () => {
    const kind = uniqueKind('active')
    const first = await debounce(kind, 'k', 0, { n: 1 })
    expect(first.status).toBe(201)
    await claimOne(f, kind)
    const res = await debounce(kind, 'k', 60, { n: 2 })
    expect(res.status).toBe(409)
    expect(res.body.job).toMatchObject({ id: first.body.id, status: 'active', params: { n: 1 } })
    expect(await storedJobs(kind)).toHaveLength(1)
  })

  test('a debounce that waits on a claim of the holder answers 409 and leaves the claimed job alone', async () => {
    const kind = uniqueKind('claimed-meanwhile')
    const first = await debounce(kind, 'k', 60, { n: 1 })
    expect(first.status).toBe(201)
    // A claim in flight: the job is active in a transaction that has not committed yet.
    const commitClaim = await holdLock(
      f,
      (tx) => tx`update ${tx(f.tables.jobs)} set status = 'active', scheduled_at = null where id = ${first.body.id}`,
    )
    const answer = debounce(kind, 'k', 60, { n: 2 })
    await blockedOn(f, 'debounced as (')
    await commitClaim()
    const res = await answer
    expect(res.status).toBe(409)
    expect(res.body.job).toMatchObject({ id: first.body.id, status: 'active', params: { n: 1 } })
    expect((await storedJobs(kind)).map((j) => j.params)).toEqual([{ n: 1 }])
  })

  test('a pending holder already due is answered 409, not moved', async () => {
    const kind = uniqueKind('due')
    const first = await enqueueWhileActive(kind, 'k', { params: { n: 1 } })
    expect(first.status).toBe(201)
    const res = await debounce(kind, 'k', 60, { n: 2 })
    expect(res.status).toBe(409)
    expect(res.body.job).toMatchObject({ id: first.body.id, params: { n: 1 }, scheduled_at: null })
  })

  test('after the holder has finished, a debounce creates a new job', async () => {
    const kind = uniqueKind('after')
    const first = await debounce(kind, 'k', 0, { n: 1 })
    expect(first.status).toBe(201)
    await finish(kind, first.body.id, 'succeeded')
    const next = await debounce(kind, 'k', 60, { n: 2 })
    expect(next.status).toBe(201)
    expect(next.body.id).not.toBe(first.body.id)
    expect(next.body).toMatchObject({ status: 'pending', params: { n: 2 } })
  })

  test('does not meet a forever key of the same text', async () => {
    const kind = uniqueKind('debounce-forever')
    const forever = await f.call('POST', '/jobs', { kind, idempotency_key: 'k', scheduled_at: '2099-01-01T00:00:00Z' })
    expect(forever.status).toBe(201)
    const res = await debounce(kind, 'k', 60)
    expect(res.status).toBe(201)
    expect(res.body.id).not.toBe(forever.body.id)
  })

  test('without an idempotency_key: 400 naming debounce_seconds, nothing stored', async () => {
    const kind = uniqueKind('unkeyed-debounce')
    const res = await f.call('POST', '/jobs', { kind, debounce_seconds: 5 })
    expect(res.status).toBe(400)
    expect(res.body.error).toStartWith('debounce_seconds: ')
    expect(await storedJobs(kind)).toHaveLength(0)
  })

  for (const [label, extra] of [
    ['depends_on', { depends_on: ['job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D'] }],
    ['scheduled_at', { scheduled_at: '2030-01-01T00:00:00Z' }],
    ['unique_while_active false', { unique_while_active: false }],
  ] as const) {
    test(`with ${label}: 400 naming debounce_seconds`, async () => {
      const kind = uniqueKind('combined')
      const res = await f.call('POST', '/jobs', { kind, idempotency_key: 'k', debounce_seconds: 5, ...extra })
      expect(res.status).toBe(400)
      expect(res.body.error).toStartWith('debounce_seconds: ')
      expect(await storedJobs(kind)).toHaveLength(0)
    })
  }
})

test('the client answers a debounce as debounced, not created', async () => {
  const foreman = new ForemanClient({ baseUrl: f.serve() })
  const kind = uniqueKind('client')
  const first = await foreman.enqueue({ kind, idempotency_key: 'k', debounce_seconds: 60, params: { n: 1 } })
  expect(first.created).toBe(true)
  const again = await foreman.enqueue({ kind, idempotency_key: 'k', debounce_seconds: 60, params: { n: 2 } })
  expect(again).toMatchObject({ created: false, debounced: true, job: { id: first.job.id, params: { n: 2 } } })
  expect(again.job).not.toHaveProperty('debounced')
  const [item] = await foreman.enqueueMany([{ kind, idempotency_key: 'k', debounce_seconds: 60, params: { n: 3 } }])
  expect(item).toMatchObject({ created: false, debounced: true, job: { id: first.job.id, params: { n: 3 } } })
})

describe('POST /jobs/batch with these options', () => {
  /** Posts a batch and expects 200; answers the outcomes. */
  async function batch(jobs: Record<string, unknown>[]): Promise<Outcome[]> {
    const res = await f.call('POST', '/jobs/batch', { jobs })
    expect(res.status).toBe(200)
    expect(res.body.jobs).toHaveLength(jobs.length)
    return res.body.jobs
  }

  test('mixed items answer in input order, each by its own rules', async () => {
    const kind = uniqueKind('batch')
    const holder = await enqueueWhileActive(kind, 'held')
    const moved = await debounce(kind, 'moved', 60, { n: 0 })
    const out = await batch([
      { kind, params: { plain: 1 } },
      { kind, idempotency_key: 'held', unique_while_active: true },
      { kind, idempotency_key: 'fresh', unique_while_active: true },
      { kind, idempotency_key: 'moved', debounce_seconds: 120, params: { n: 1 } },
      { kind, idempotency_key: 'held', params: { forever: true } },
      { kind, idempotency_key: 'fresh', unique_while_active: true },
    ])
    expect(out[0]).toMatchObject({ created: true, job: { params: { plain: 1 } } })
    expect(out[1]).toMatchObject({ created: false, job: { id: holder.body.id } })
    expect(out[1]!.debounced).toBeUndefined()
    expect(out[2]).toMatchObject({ created: true, job: { idempotency_key: 'fresh' } })
    expect(out[3]).toMatchObject({ created: false, debounced: true, job: { id: moved.body.id, params: { n: 1 } } })
    // A forever key of the same text as a live while-active one: its own job.
    expect(out[4]).toMatchObject({ created: true, job: { idempotency_key: 'held' } })
    expect(out[4]!.job.id).not.toBe(holder.body.id)
    // A key repeated in the batch meets the job its earlier item created.
    expect(out[5]).toMatchObject({ created: false, job: { id: out[2]!.job.id } })
    expect(await storedJobs(kind)).toHaveLength(5)
  })

  test('concurrent batches of the same while-active keys create each key once', async () => {
    const kind = uniqueKind('batch-race')
    const keys = ['a', 'b', 'c', 'd']
    const batches = await Promise.all(
      Array.from({ length: 8 }, (_, n) =>
        batch(
          (n % 2 ? [...keys].reverse() : keys).map((key) => ({
            kind,
            idempotency_key: key,
            unique_while_active: true,
          })),
        ),
      ),
    )
    const created = batches.flat().filter((o) => o.created)
    expect(created.map((o) => o.job.idempotency_key).sort()).toEqual(keys)
    expect(await storedJobs(kind)).toHaveLength(keys.length)
  })

  test('a bad item is refused under its own index and nothing is stored', async () => {
    const kind = uniqueKind('batch-bad')
    const res = await f.call('POST', '/jobs/batch', {
      jobs: [
        { kind, idempotency_key: 'ok', unique_while_active: true },
        { kind, params: {} },
        { kind, debounce_seconds: 5 },
      ],
    })
    expect(res.status).toBe(400)
    expect(res.body.error).toStartWith('jobs.2.debounce_seconds: ')
    const badPlain = await f.call('POST', '/jobs/batch', {
      jobs: [
        { kind, idempotency_key: 'ok', unique_while_active: true },
        { kind, scheduled_at: '2030-13-45T00:00:00Z' },
      ],
    })
    expect(badPlain.status).toBe(400)
    expect(badPlain.body.error).toStartWith('jobs.1.scheduled_at: ')
    expect(await storedJobs(kind)).toHaveLength(0)
  })
})

test('lookups of a key read its live holder through the partial index, not the jobs that ended with it', async () => {
  // A key reused all day leaves an ended job per use; none of them may be read again.
  const kind = uniqueKind('plan')
  const ended = Array.from({ length: 5000 }, () => newJobId())
  await f.sql`
    insert into ${f.sql(f.tables.jobs)} (id, kind, idempotency_key, unique_while_active, status, completed_at)
    select id, ${kind}, 'k', true, 'succeeded', now() from unnest(${ended}::text[]) as u(id)`
  const holder = await debounce(kind, 'k', 600)
  expect(holder.status).toBe(201)
  await f.sql`analyze ${f.sql(f.tables.jobs)}`
  const explainer = createExplainer(process.env.DATABASE_URL as string)
  try {
    const insert = { ...jobInsertOf(kind), idempotencyKey: 'k' }
    const calls = [
      (sql: Sql) => jobInsertWhileActive(sql, f.tables, insert),
      (sql: Sql) => jobDebounce(sql, f.tables, { ...insert, debounceSeconds: 60 }),
    ]
    for (const call of calls) {
      // settle: the plan a pool connection settles on after repeated calls (generic or not).
      const plan = await explainer.explainCall(call, { settle: 6 })
      expect(plan.indexes).toContain(`${f.tables.prefix}jobs_kind_active_key_key`)
      expect(plan.seqScans).toEqual([])
      expect(plan.rowsRead).toBeLessThan(20)
    }
  } finally {
    await explainer.close()
  }
})
