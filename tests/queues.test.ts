/**
 * Queues: the overview's counts, and pausing. A paused queue is skipped by every
 * claim (single, batch, hand-off, long poll) on every instance; resume makes its
 * jobs claimable again and wakes long-poll claimers waiting for them, here and on
 * another instance.
 */
import { describe, expect, test } from 'bun:test'
import { ForemanClient } from '../src/client'
import { claimOne, postOk, postTimed, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'
import { eventually } from './support/sse-client'

// No safety poll: a long-poll claimer wakes on a hint or not at all, so a wake is the resume's.
const f = await startFixture({ eventsPollSec: 3600 })
const base = f.serve()
const other = await startFixture({ eventsPollSec: 3600 }, { prefix: f.tables.prefix, keepTables: true })
const otherBase = other.serve()

let seq = 0
const uniqueQueue = (label = 'q') => `${label}-${Date.now().toString(36)}-${seq++}`

const pause = (queue: string, on = f) => postOk(on, `/queues/${encodeURIComponent(queue)}/pause`, undefined)
const resume = (queue: string, on = f) => postOk(on, `/queues/${encodeURIComponent(queue)}/resume`, undefined)
const queueOf = async (queue: string) => {
  const res = await f.call('GET', '/queues')
  expect(res.status).toBe(200)
  return (res.body as { queue: string }[]).find((q) => q.queue === queue) as any
}
/** Waits until `n` claimers sleep in an instance's line. */
const sleeping = (on: typeof f, n: number) =>
  eventually(() => on.deps.events.waiters.stats().sleeping >= n, 4000, `${n} sleeping claimer(s)`)

describe('GET /queues', () => {
  test('counts pending, scheduled, active and the last hour’s endings, per queue and per kind', async () => {
    const queue = uniqueQueue('counts')
    const [a, b] = [uniqueKind('qa'), uniqueKind('qb')]
    for (let i = 0; i < 3; i++) await postOk(f, '/jobs', { kind: a, queue })
    await postOk(f, '/jobs', { kind: b, queue })
    await postOk(f, '/jobs', { kind: b, queue, scheduled_at: new Date(Date.now() + 3_600_000).toISOString() })
    const active = await claimOne(f, a, 'w-counts')
    const done = await claimOne(f, a, 'w-counts')
    await postOk(f, `/runs/${done.run.id}/complete`, { worker_id: 'w-counts' })
    const lost = await claimOne(f, b, 'w-counts')
    await postOk(f, `/runs/${lost.run.id}/fail`, { worker_id: 'w-counts', error: 'no' })
    expect(active.job.queue).toBe(queue)

    const q = await queueOf(queue)
    expect(q).toEqual({
      queue,
      paused: false,
      paused_at: null,
      pending: 1,
      scheduled: 1,
      active: 1,
      oldest_pending_age_seconds: expect.any(Number),
      succeeded_last_minute: 1,
      failed_last_minute: 1,
      succeeded_last_hour: 1,
      failed_last_hour: 1,
      kinds: [
        { kind: a, pending: 1, scheduled: 0, active: 1, succeeded_last_hour: 1, failed_last_hour: 0 },
        { kind: b, pending: 0, scheduled: 1, active: 0, succeeded_last_hour: 0, failed_last_hour: 1 },
      ].sort((x, y) => (x.kind < y.kind ? -1 : 1)),
    })
    expect(q.oldest_pending_age_seconds).toBeGreaterThanOrEqual(0)
  })

  test('queues come sorted by name, and a paused queue with no jobs is listed', async () => {
    const empty = uniqueQueue('zz-empty')
    await pause(empty)
    const res = await f.call('GET', '/queues')
    const names = (res.body as { queue: string }[]).map((q) => q.queue)
    expect(names).toEqual([...names].sort())
    expect(await queueOf(empty)).toMatchObject({ queue: empty, paused: true, pending: 0, active: 0, kinds: [] })
    await resume(empty)
    expect(await queueOf(empty)).toBeUndefined()
  })
})

describe('pause and resume', () => {
  test('answer the queue’s state and are idempotent (a second pause keeps paused_at)', async () => {
    const queue = uniqueQueue('idem')
    const first = await pause(queue)
    expect(first).toEqual({ queue, paused: true, paused_at: expect.any(String) })
    expect(await pause(queue)).toEqual(first)
    expect(await queueOf(queue)).toMatchObject({ paused: true, paused_at: first.paused_at })
    expect(await resume(queue)).toEqual({ queue, paused: false, paused_at: null })
    expect(await resume(queue)).toEqual({ queue, paused: false, paused_at: null })
  })

  test('a queue name with spaces and slashes works URL-encoded; an over-long one is a 400 naming it', async () => {
    const queue = `odd name/${uniqueQueue()}`
    expect(await pause(queue)).toMatchObject({ queue, paused: true })
    await resume(queue)
    const res = await f.call('POST', `/queues/${'q'.repeat(201)}/pause`)
    expect(res.status).toBe(400)
    expect(res.body.error).toContain('queue')
  })

  test('every claim skips a paused queue, even for older jobs; after resume they are claimed', async () => {
    const kind = uniqueKind('skip')
    const paused = uniqueQueue('paused')
    const open = uniqueQueue('open')
    await pause(paused)
    const held = await postOk(f, '/jobs', { kind, queue: paused, priority: 5 })
    const free = await postOk(f, '/jobs', { kind, queue: open })
    // The paused job is older and of higher priority: only the pause keeps it back.
    expect((await claimOne(f, kind, 'w-skip')).job.id).toBe(free.id)
    expect((await f.call('POST', '/claim', { kinds: [kind], worker_id: 'w-skip' })).status).toBe(204)
    expect((await f.call('POST', '/claims', { kinds: [kind], worker_id: 'w-skip', max_jobs: 10 })).body).toEqual([])
    expect((await f.call('POST', '/claim', { kinds: [kind], queues: [paused], worker_id: 'w-skip' })).status).toBe(204)
    // The hand-off (complete + claim in one statement) skips it too.
    const more = await postOk(f, '/jobs', { kind, queue: open })
    const run = await claimOne(f, kind, 'w-skip')
    expect(run.job.id).toBe(more.id)
    const handOff = await postOk(f, '/runs/complete', {
      worker_id: 'w-skip',
      runs: [{ run_id: run.run.id }],
      claim: { kinds: [kind], max_jobs: 5 },
    })
    expect(handOff.claimed).toEqual([])

    await resume(paused)
    expect((await claimOne(f, kind, 'w-skip')).job.id).toBe(held.id)
  })

  test('a pause made on one instance holds for claims on another, and so does the resume', async () => {
    const kind = uniqueKind('cross')
    const queue = uniqueQueue('cross')
    await pause(queue, f)
    const job = await postOk(other, '/jobs', { kind, queue })
    expect((await other.call('POST', '/claim', { kinds: [kind], worker_id: 'w-cross' })).status).toBe(204)
    await resume(queue, f)
    expect((await claimOne(other, kind, 'w-cross')).job.id).toBe(job.id)
  })
})

describe('long-poll claimers and a paused queue', () => {
  test('a waiting claimer does not take a job enqueued into a paused queue, and gets it on resume', async () => {
    const kind = uniqueKind('lp-pause')
    const queue = uniqueQueue('lp')
    await pause(queue)
    const waiting = postTimed(base, '/claim', { kinds: [kind], worker_id: 'w-lp', wait_seconds: 20 })
    await sleeping(f, 1)
    const job = await postOk(f, '/jobs', { kind, queue })
    // The enqueue's hint woke it (in the enqueue's publish, before the answer); once
    // it sleeps again, its claim has found the queue paused.
    await sleeping(f, 1)
    expect((await f.call('GET', `/jobs/${job.id}`)).body.status).toBe('pending')
    await resume(queue)
    const answer = await waiting
    expect(answer.status).toBe(200)
    expect(answer.body.job).toMatchObject({ id: job.id, status: 'active' })
  }, 30_000)

  test('resume on one instance wakes a claimer waiting on another', async () => {
    const kind = uniqueKind('lp-cross')
    const queue = uniqueQueue('lp-cross')
    await pause(queue)
    const job = await postOk(f, '/jobs', { kind, queue })
    const waiting = postTimed(otherBase, '/claim', { kinds: [kind], worker_id: 'w-lp-cross', wait_seconds: 20 })
    await sleeping(other, 1)
    await resume(queue, f)
    const answer = await waiting
    expect(answer.status).toBe(200)
    expect(answer.body.job).toMatchObject({ id: job.id, status: 'active' })
  }, 30_000)

  test('resume wakes claimers of every kind the queue holds, and each of several jobs is taken', async () => {
    const [a, b] = [uniqueKind('lp-a'), uniqueKind('lp-b')]
    const queue = uniqueQueue('lp-many')
    await pause(queue)
    const jobs = [
      await postOk(f, '/jobs', { kind: a, queue }),
      await postOk(f, '/jobs', { kind: a, queue }),
      await postOk(f, '/jobs', { kind: b, queue }),
    ]
    const claimers = [a, a, b].map((kind, i) =>
      postTimed(i % 2 ? otherBase : base, '/claim', { kinds: [kind], worker_id: `w-many-${i}`, wait_seconds: 20 }),
    )
    await sleeping(f, 2)
    await sleeping(other, 1)
    await resume(queue)
    const answers = await Promise.all(claimers)
    expect(answers.map((x) => x.status)).toEqual([200, 200, 200])
    expect(answers.map((x) => x.body.job.id).sort()).toEqual(jobs.map((j) => j.id).sort())
  }, 30_000)
})

describe('ForemanClient: the operations views', () => {
  const foreman = new ForemanClient({ baseUrl: base })

  test('listQueues, pauseQueue, resumeQueue', async () => {
    const queue = uniqueQueue('client q')
    const paused = await foreman.pauseQueue(queue)
    expect(paused).toEqual({ queue, paused: true, paused_at: expect.any(String) })
    expect((await foreman.listQueues()).find((q) => q.queue === queue)).toMatchObject({ paused: true, kinds: [] })
    expect(await foreman.resumeQueue(queue)).toEqual({ queue, paused: false, paused_at: null })
  })

  test('listWorkers, stats, databaseHealth', async () => {
    const kind = uniqueKind('client-ops')
    await postOk(f, '/jobs', { kind })
    await claimOne(f, kind, 'w-client-ops')
    const worker = (await foreman.listWorkers()).find((w) => w.worker_id === 'w-client-ops')
    expect(worker?.running.map((r) => r.kind)).toEqual([kind])
    const stats = await foreman.stats('15m')
    expect(stats.rows.filter((r) => r.kind === kind).reduce((n, r) => n + r.enqueued, 0)).toBe(1)
    expect((await foreman.stats()).bucket_seconds).toBe(60)
    const health = await foreman.databaseHealth()
    expect(health.tables.map((h) => h.table).sort()).toEqual([f.tables.runs, f.tables.jobs].sort())
    expect(health.warnings).toEqual([])
  })
})
