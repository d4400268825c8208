/**
 * POST /jobs/:id/retry and DELETE /jobs/:id: the rules, their 404/409/400 edges,
 * what they announce, and a retry racing a claim.
 */
import { describe, expect, test } from 'bun:test'
import { claimOne, enqueueJob, postOk, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'
import { SseReader } from './support/sse-client'

// No safety poll: only an announcement can wake a claimer or reach a stream.
const f = await startFixture({ eventsPollSec: 3600 })
const base = f.serve()
const UNKNOWN = 'job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D'

/** A job that ran `attempts` times and failed for good. */
async function failedJob(body: Record<string, unknown> = {}, attempts = 1) {
  const job = await enqueueJob(f, { max_attempts: attempts, ...body })
  for (let i = 0; i < attempts; i++) {
    const { run } = await claimOne(f, job.kind, 'w-retry')
    const retryable = i < attempts - 1
    await postOk(f, `/runs/${run.id}/fail`, { worker_id: 'w-retry', error: `boom ${i}`, retryable, backoff_seconds: 0 })
  }
  const res = await f.call('GET', `/jobs/${job.id}`)
  expect(res.body.status).toBe('failed')
  return res.body
}

/** A job cancelled while pending. */
async function cancelledJob(body: Record<string, unknown> = {}) {
  const job = await enqueueJob(f, body)
  return postOk(f, `/jobs/${job.id}/cancel`, {})
}

describe('POST /jobs/:id/retry', () => {
  test('a failed job whose attempts are used up goes back to pending, due now, with one more attempt; its runs stay', async () => {
    const job = await failedJob({ params: { n: 1 } }, 2)
    const before = Date.now()
    const res = await f.call('POST', `/jobs/${job.id}/retry`)
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({
      id: job.id,
      status: 'pending',
      cancel_requested: false,
      attempt_count: 2,
      max_attempts: 3,
      params: { n: 1 },
    })
    expect(res.body.completed_at ?? null).toBeNull()
    expect(res.body.result ?? null).toBeNull()
    expect(res.body.started_at).toBe(job.started_at)
    // Due now: not before this call, and claimable at once.
    expect(Date.parse(res.body.scheduled_at)).toBeGreaterThanOrEqual(before - 1000)
    expect(Date.parse(res.body.updated_at)).toBeGreaterThan(Date.parse(job.updated_at))
    expect((await f.call('GET', `/jobs/${job.id}/runs`)).body.map((r: any) => r.status)).toEqual(['failed', 'failed'])

    const { job: claimed, run } = await claimOne(f, job.kind, 'w-again')
    expect(claimed.id).toBe(job.id)
    expect(claimed.attempt_count).toBe(3)
    expect(run.attempt).toBe(3)
    await postOk(f, `/runs/${run.id}/complete`, { worker_id: 'w-again', result: { ok: true } })
    const runs = (await f.call('GET', `/jobs/${job.id}/runs`)).body
    expect(runs.map((r: any) => [r.attempt, r.status])).toEqual([
      [1, 'failed'],
      [2, 'failed'],
      [3, 'succeeded'],
    ])
  })

  test('a failed job with attempts left keeps its max_attempts', async () => {
    const job = await enqueueJob(f, { max_attempts: 5 })
    const { run } = await claimOne(f, job.kind, 'w-left')
    await postOk(f, `/runs/${run.id}/fail`, { worker_id: 'w-left', error: 'permanent', retryable: false })
    const res = await f.call('POST', `/jobs/${job.id}/retry`)
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ status: 'pending', attempt_count: 1, max_attempts: 5 })
  })

  test('a job cancelled while pending (never run) is retried without extra attempts', async () => {
    const job = await cancelledJob({ max_attempts: 2 })
    expect(job).toMatchObject({ status: 'cancelled', cancel_requested: true })
    const res = await f.call('POST', `/jobs/${job.id}/retry`)
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ status: 'pending', cancel_requested: false, attempt_count: 0, max_attempts: 2 })
  })

  test('a job cancelled while active is retried with cancel_requested cleared', async () => {
    const job = await enqueueJob(f)
    const { run } = await claimOne(f, job.kind, 'w-cancel')
    await postOk(f, `/jobs/${job.id}/cancel`, {})
    const cancelled = await postOk(f, `/runs/${run.id}/fail`, { worker_id: 'w-cancel', error: 'cancelled' })
    expect(cancelled.status).toBe('cancelled')
    const res = await f.call('POST', `/jobs/${job.id}/retry`)
    expect(res.body).toMatchObject({ status: 'pending', cancel_requested: false, attempt_count: 1, max_attempts: 2 })
    // The next worker is not told to stop.
    const next = await claimOne(f, job.kind, 'w-next')
    const beat = await postOk(f, `/runs/${next.run.id}/heartbeat`, { worker_id: 'w-next' })
    expect(beat.cancel_requested).toBe(false)
  })

  test('409 naming the status for pending, active and succeeded jobs; nothing changes', async () => {
    const pending = await enqueueJob(f)
    const active = await enqueueJob(f)
    await claimOne(f, active.kind)
    const succeeded = await enqueueJob(f)
    const { run } = await claimOne(f, succeeded.kind, 'w-ok')
    await postOk(f, `/runs/${run.id}/complete`, { worker_id: 'w-ok' })
    for (const [job, status] of [
      [pending, 'pending'],
      [active, 'active'],
      [succeeded, 'succeeded'],
    ] as const) {
      const before = (await f.call('GET', `/jobs/${job.id}`)).body
      const res = await f.call('POST', `/jobs/${job.id}/retry`)
      expect(res.status).toBe(409)
      expect(res.body.error).toContain(status)
      expect((await f.call('GET', `/jobs/${job.id}`)).body).toEqual(before)
    }
  })

  test('404 for an unknown job, 400 for a malformed id', async () => {
    const unknown = await f.call('POST', `/jobs/${UNKNOWN}/retry`)
    expect(unknown.status).toBe(404)
    expect(unknown.body.error).toContain(UNKNOWN)
    const malformed = await f.call('POST', '/jobs/nope/retry')
    expect(malformed.status).toBe(400)
    expect(malformed.body.error).toContain('id')
  })

  test('announces the job: streams send event: job (pending) and a waiting claimer is woken', async () => {
    const job = await failedJob()
    const sse = await SseReader.open(`${base}/events?kind=${job.kind}`)
    expect(sse.status).toBe(200)
    // A long poll that only an announcement can end early (no safety poll here).
    const waiting = fetch(`${base}/claim`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kinds: [job.kind], worker_id: 'w-wait', wait_seconds: 25 }),
    })
    // The claimer is in line once the waiter count says so.
    for (let i = 0; i < 200 && f.deps.events.waiters.stats().sleeping === 0; i++) await Bun.sleep(10)
    expect(f.deps.events.waiters.stats().sleeping).toBeGreaterThan(0)

    await postOk(f, `/jobs/${job.id}/retry`, {})
    const [event] = await sse.next(1)
    expect(event?.event).toBe('job')
    // A stream sends the job as it stands when the feed reads it: the woken claimer
    // may already have taken it (active, its second attempt). Either way the
    // retry was announced, or neither would have happened before the deadline.
    expect(event?.data.id).toBe(job.id)
    expect(['pending', 'active']).toContain(event?.data.status)
    expect(event?.data.cancel_requested).toBe(false)
    const claimed = await waiting
    expect(claimed.status).toBe(200)
    expect(((await claimed.json()) as any).job.id).toBe(job.id)
    sse.close()
  })
})

describe('DELETE /jobs/:id', () => {
  test('removes a terminal job and its runs and answers {id}', async () => {
    const job = await failedJob({}, 2)
    const runs = (await f.call('GET', `/jobs/${job.id}/runs`)).body
    expect(runs.length).toBe(2)
    const res = await f.call('DELETE', `/jobs/${job.id}`)
    expect(res.status).toBe(200)
    expect(res.body).toEqual({ id: job.id })
    expect((await f.call('GET', `/jobs/${job.id}`)).status).toBe(404)
    expect((await f.call('GET', `/jobs/${job.id}/runs`)).status).toBe(404)
    const [left] = await f.sql<{ n: number }[]>`
      select count(*)::int as n from ${f.sql(f.tables.runs)} where job_id = ${job.id}`
    expect(left?.n).toBe(0)
    // A second delete finds nothing.
    expect((await f.call('DELETE', `/jobs/${job.id}`)).status).toBe(404)
  })

  test('deletes succeeded and cancelled jobs too', async () => {
    const succeeded = await enqueueJob(f)
    const { run } = await claimOne(f, succeeded.kind, 'w-del')
    await postOk(f, `/runs/${run.id}/complete`, { worker_id: 'w-del' })
    const cancelled = await cancelledJob()
    for (const job of [succeeded, cancelled]) {
      expect((await f.call('DELETE', `/jobs/${job.id}`)).status).toBe(200)
      expect((await f.call('GET', `/jobs/${job.id}`)).status).toBe(404)
    }
  })

  test('409 while pending or active (the job and its run stay); 404 unknown; 400 malformed', async () => {
    const pending = await enqueueJob(f)
    const active = await enqueueJob(f)
    const { run } = await claimOne(f, active.kind)
    for (const [job, status] of [
      [pending, 'pending'],
      [active, 'active'],
    ] as const) {
      const res = await f.call('DELETE', `/jobs/${job.id}`)
      expect(res.status).toBe(409)
      expect(res.body.error).toContain(status)
      expect((await f.call('GET', `/jobs/${job.id}`)).body.status).toBe(status)
    }
    expect((await f.call('GET', `/runs/${run.id}`)).body.status).toBe('running')
    expect((await f.call('DELETE', `/jobs/${UNKNOWN}`)).status).toBe(404)
    expect((await f.call('DELETE', '/jobs/nope')).status).toBe(400)
  })

  test('announces the deletion: GET /events sends event: deleted with the id', async () => {
    const kind = uniqueKind('del-event')
    const job = await cancelledJob({ kind, queue: 'q-del' })
    const sse = await SseReader.open(`${base}/events?kind=${kind}`)
    expect((await f.call('DELETE', `/jobs/${job.id}`)).status).toBe(200)
    const [event] = await sse.next(1)
    expect(event?.event).toBe('deleted')
    expect(event?.data).toMatchObject({ id: job.id, kind, queue: 'q-del' })
    sse.close()
  })
})

describe('races', () => {
  test('retry against concurrent claims: the job is claimed at most once per retry and its attempts stay coherent', async () => {
    // Two connections: retries on one, claim loops on the other (a second app on the same tables).
    const other = await startFixture({ eventsPollSec: 3600 }, { prefix: f.tables.prefix, keepTables: true })
    for (let round = 0; round < 20; round++) {
      const job = await failedJob({ max_attempts: 1 })
      const claims: any[] = []
      let retried = false
      const claimer = (async () => {
        // Claim until the retry has answered and one more claim found nothing.
        for (let after = 0; after < 2; ) {
          const res = await other.call('POST', '/claim', { kinds: [job.kind], worker_id: `w-race-${round}` })
          expect([200, 204]).toContain(res.status)
          if (res.status === 200) claims.push(res.body)
          if (retried) after++
        }
      })()
      const [first, second] = await Promise.all([
        f.call('POST', `/jobs/${job.id}/retry`),
        f.call('POST', `/jobs/${job.id}/retry`),
      ])
      retried = true
      await claimer
      // One retry wins; the other finds it pending (or already claimed again): 409.
      expect([first?.status, second?.status].sort()).toEqual([200, 409])
      expect(claims.length).toBe(1)
      expect(claims[0].job.id).toBe(job.id)
      expect(claims[0].run.attempt).toBe(2)
      const stored = (await f.call('GET', `/jobs/${job.id}`)).body
      expect(stored).toMatchObject({ status: 'active', attempt_count: 2, max_attempts: 2 })
      const runs = (await f.call('GET', `/jobs/${job.id}/runs`)).body
      expect(runs.map((r: any) => [r.attempt, r.status])).toEqual([
        [1, 'failed'],
        [2, 'running'],
      ])
    }
  })
})
