/**
 * Long polls through a real socket: claim with wait_seconds returns work that
 * appears mid-wait (new, retried after a backoff, newly due, or enqueued on
 * another instance) and 204 at the deadline; enqueue with wait_seconds holds its
 * answer until the job is terminal or the wait ends.
 */
import { describe, expect, test } from 'bun:test'
import { blockedOn, lockRun, postOk, postTimed, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'
import { eventually, SseReader } from './support/sse-client'

// No safety poll: a waiter wakes on a hint or on its own due-time timer, or not at all.
const f = await startFixture({ eventsPollSec: 3600 })
const base = f.serve()
const other = await startFixture({ eventsPollSec: 3600 }, { prefix: f.tables.prefix, keepTables: true })
const waiters = f.deps.events.waiters

/** Waits until `n` claimers sleep in this instance's line. */
const sleeping = (n: number) => eventually(() => waiters.stats().sleeping >= n, 4000, `${n} sleeping claimer(s)`)

describe('claim with wait_seconds', () => {
  for (const path of ['/claim', '/jobs/claim']) {
    test(`POST ${path}: a job enqueued mid-wait is returned before the deadline`, async () => {
      const kind = uniqueKind('lp-mid')
      const pending = postTimed(base, path, { kinds: [kind], worker_id: 'w-mid', wait_seconds: 10 })
      await sleeping(1)
      const enqueuedAt = Date.now()
      const job = await postOk(f, '/jobs', { kind })
      const answer = await pending
      expect(answer.status).toBe(200)
      expect(answer.body.job).toMatchObject({ id: job.id, status: 'active' })
      expect(answer.body.run).toMatchObject({ job_id: job.id, worker_id: 'w-mid', status: 'running' })
      expect(answer.at).toBeGreaterThanOrEqual(enqueuedAt)
      expect(answer.elapsed).toBeLessThan(10_000)
    }, 15_000)
  }

  test('with nothing to claim, the answer is 204 with no body once the wait is over', async () => {
    const kind = uniqueKind('lp-empty')
    const answer = await postTimed(base, '/claim', { kinds: [kind], worker_id: 'w-empty', wait_seconds: 1 })
    expect(answer.status).toBe(204)
    expect(answer.body).toBeNull()
    expect(answer.elapsed).toBeGreaterThanOrEqual(900)
    expect(waiters.stats().waiting).toBe(0)
  })

  test('a retry whose backoff ends mid-wait is picked up by a waiting claimer', async () => {
    const kind = uniqueKind('lp-retry')
    const job = await postOk(f, '/jobs', { kind, max_attempts: 2 })
    const first = await postOk(f, '/claim', { kinds: [kind], worker_id: 'w-retry-1' })
    const pending = postTimed(base, '/claim', { kinds: [kind], worker_id: 'w-retry-2', wait_seconds: 10 })
    await sleeping(1)
    const failed = await postOk(f, `/runs/${first.run.id}/fail`, {
      worker_id: 'w-retry-1',
      error: 'flaky',
      retryable: true,
      backoff_seconds: 1,
    })
    expect(failed).toMatchObject({ status: 'pending' })
    const answer = await pending
    expect(answer.status).toBe(200)
    expect(answer.body.job).toMatchObject({ id: job.id, status: 'active', attempt_count: 2 })
    expect(answer.body.run).toMatchObject({ attempt: 2, worker_id: 'w-retry-2' })
    expect(answer.elapsed).toBeLessThan(10_000)
  }, 15_000)

  test('a job scheduled a second ahead is picked up by a claimer already waiting', async () => {
    const kind = uniqueKind('lp-scheduled')
    const pending = postTimed(base, '/claim', { kinds: [kind], worker_id: 'w-sched', wait_seconds: 10 })
    await sleeping(1)
    const scheduledAt = new Date(Date.now() + 1000).toISOString()
    const job = await postOk(f, '/jobs', { kind, scheduled_at: scheduledAt })
    const answer = await pending
    expect(answer.status).toBe(200)
    expect(answer.body.job.id).toBe(job.id)
    expect(answer.elapsed).toBeLessThan(10_000)
  }, 15_000)

  test('work enqueued on another instance wakes a claimer waiting on this one', async () => {
    const kind = uniqueKind('lp-other')
    const pending = postTimed(base, '/claim', { kinds: [kind], worker_id: 'w-other', wait_seconds: 10 })
    await sleeping(1)
    const job = await postOk(other, '/jobs', { kind })
    const answer = await pending
    expect(answer.status).toBe(200)
    expect(answer.body.job.id).toBe(job.id)
    expect(answer.elapsed).toBeLessThan(10_000)
  }, 15_000)

  test('20 waiters and 5 new jobs: exactly 5 claims, each job once, the other 15 answer 204', async () => {
    const kind = uniqueKind('lp-many')
    const claims = Array.from({ length: 20 }, (_, i) =>
      postTimed(base, '/claim', { kinds: [kind], worker_id: `w-many-${i}`, wait_seconds: 2 }),
    )
    await sleeping(20)
    const jobs = await Promise.all(Array.from({ length: 5 }, () => postOk(f, '/jobs', { kind })))
    const answers = await Promise.all(claims)
    const won = answers.filter((a) => a.status === 200)
    expect(won.length).toBe(5)
    expect(answers.filter((a) => a.status === 204).length).toBe(15)
    expect(won.map((a) => a.body.job.id).sort()).toEqual(jobs.map((j) => j.id).sort())
    const running = await f.sql<{ n: number }[]>`
      select count(*)::int as n from ${f.sql(f.tables.runs)} r join ${f.sql(f.tables.jobs)} j on j.id = r.job_id
      where j.kind = ${kind}`
    expect(running[0]?.n).toBe(5)
    expect(waiters.stats().waiting).toBe(0)
  })

  test('wait_seconds above 30 is refused with a 400 naming it', async () => {
    const answer = await postTimed(base, '/claim', { kinds: [uniqueKind('lp-bad')], worker_id: 'w', wait_seconds: 31 })
    expect(answer.status).toBe(400)
    expect(answer.body.error).toContain('wait_seconds')
  })
})

describe('enqueue with wait_seconds', () => {
  test('the 201 is held until a worker completes the job and carries succeeded and the result', async () => {
    const kind = uniqueKind('lp-enqueue-done')
    const held = postTimed(base, '/jobs', { kind, params: { n: 1 }, wait_seconds: 10 })
    const claimed = await postOk(f, '/claim', { kinds: [kind], worker_id: 'w-held', wait_seconds: 5 })
    await postOk(f, `/runs/${claimed.run.id}/heartbeat`, { worker_id: 'w-held', progress_current: 1 })
    const completeSentAt = Date.now()
    await postOk(f, `/runs/${claimed.run.id}/complete`, { worker_id: 'w-held', result: { doubled: 2 } })
    const answer = await held
    expect(answer.status).toBe(201)
    expect(answer.body).toMatchObject({ id: claimed.job.id, kind, status: 'succeeded', result: { doubled: 2 } })
    expect(answer.at).toBeGreaterThanOrEqual(completeSentAt)
    expect(answer.elapsed).toBeLessThan(10_000)
  }, 15_000)

  test('with nobody working, the 201 comes after the wait and shows the job still pending', async () => {
    const kind = uniqueKind('lp-enqueue-idle')
    const answer = await postTimed(base, '/jobs', { kind, wait_seconds: 1 })
    expect(answer.status).toBe(201)
    expect(answer.body).toMatchObject({ kind, status: 'pending' })
    expect(answer.elapsed).toBeGreaterThanOrEqual(900)
    expect(f.deps.events.feed.stats().watchedJobs).toBe(0)
  })

  test('a duplicate enqueue with wait_seconds answers 409 with the job as it stands when it ends', async () => {
    const kind = uniqueKind('lp-enqueue-dup')
    const original = await postOk(f, '/jobs', { kind, idempotency_key: 'once' })
    const claimed = await postOk(f, '/claim', { kinds: [kind], worker_id: 'w-dup' })
    const duplicate = postTimed(base, '/jobs', { kind, idempotency_key: 'once', wait_seconds: 10 })
    await eventually(() => f.deps.events.feed.stats().watchedJobs >= 1, 4000, 'the duplicate to watch the job')
    await postOk(f, `/runs/${claimed.run.id}/complete`, { worker_id: 'w-dup', result: 'first' })
    const answer = await duplicate
    expect(answer.status).toBe(409)
    expect(typeof answer.body.error).toBe('string')
    expect(answer.body.job).toMatchObject({ id: original.id, status: 'succeeded', result: 'first' })
    expect(answer.elapsed).toBeLessThan(10_000)
  }, 15_000)

  test('a completion that commits after a concurrent cancel ends the wait with the job succeeded', async () => {
    const kind = uniqueKind('lp-enqueue-race')
    const held = postTimed(base, '/jobs', { kind, wait_seconds: 3 })
    const claimed = await postOk(f, '/claim', { kinds: [kind], worker_id: 'w-race', wait_seconds: 2 })
    await eventually(() => f.deps.events.feed.stats().watchedJobs >= 1, 4000, 'the enqueue to watch its job')
    // Hold the run row, as a concurrent heartbeat would: the completion's statement starts, then waits.
    const unlock = await lockRun(f, claimed.run.id)
    const completing = f.call('POST', `/runs/${claimed.run.id}/complete`, { worker_id: 'w-race', result: 'done' })
    await blockedOn(f, "status = 'succeeded'")
    // A stream on the same job as a marker: once it shows the cancel, so has the waiting enqueue.
    const marker = await SseReader.open(`${base}/events/${claimed.job.id}`)
    await marker.next(1)
    await postOk(f, `/jobs/${claimed.job.id}/cancel`, {})
    await marker.until(() => marker.events.some((e) => e.data.cancel_requested), 2000, 'the cancel request')
    marker.close()
    await unlock()
    expect((await completing).body.status).toBe('succeeded')
    const answer = await held
    expect(answer.body).toMatchObject({ id: claimed.job.id, status: 'succeeded', result: 'done' })
    expect(answer.elapsed).toBeLessThan(3000)
  })
})
