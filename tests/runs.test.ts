/** The worker side: claim, heartbeat, complete, fail (both addressing forms), ownership, run reads. */
import { describe, expect, test } from 'bun:test'
import { claimOne, enqueueJob, secondsUntil, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture({ defaultLeaseSec: 45 })

const RUN_ID = /^run_[0-9A-HJKMNP-TV-Z]{26}$/
const UNKNOWN_RUN = 'run_01JD8X3Q4N6V7W8Y9Z0A1B2C3D'
const W = 'worker-1'
/** Seconds between two RFC 3339 stamps. */
const gap = (from: string, to: string) => (Date.parse(to) - Date.parse(from)) / 1000

/** A fresh job of its own kind, claimed by worker-1. */
async function claimed(body: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  const kind = uniqueKind('run')
  await enqueueJob(f, { kind, ...body })
  return { kind, ...(await claimOne(f, kind, W, extra)) }
}

/** The same action addressed by job id or by run id. */
const forms = [
  { name: 'by job id', path: (c: { job: any; run: any }, action: string) => `/jobs/${c.job.id}/${action}` },
  { name: 'by run id', path: (c: { job: any; run: any }, action: string) => `/runs/${c.run.id}/${action}` },
]

describe('claim', () => {
  for (const route of ['/claim', '/jobs/claim']) {
    test(`POST ${route} answers 200 {job, run}: job active, attempt 1, run running with the lease`, async () => {
      const kind = uniqueKind('claim')
      const job = await enqueueJob(f, { kind })
      const res = await f.call('POST', route, { kinds: [kind], worker_id: 'w-claim', lease_seconds: 120 })
      expect(res.status).toBe(200)
      const { job: j, run } = res.body
      expect(j).toMatchObject({ id: job.id, status: 'active', attempt_count: 1 })
      expect(Date.parse(j.started_at)).toBeGreaterThan(0)
      expect(run.id).toMatch(RUN_ID)
      expect(run).toMatchObject({ job_id: job.id, attempt: 1, worker_id: 'w-claim', status: 'running' })
      expect(gap(run.started_at, run.lease_expires_at)).toBeCloseTo(120, 1)
      expect(secondsUntil(run.lease_expires_at)).toBeGreaterThan(110)
      expect(secondsUntil(run.lease_expires_at)).toBeLessThanOrEqual(120.5)
      const stored = await f.call('GET', `/runs/${run.id}`)
      expect(stored.body).toEqual(run)
    })

    test(`POST ${route} answers 204 with no body when nothing is claimable`, async () => {
      const res = await f.call('POST', route, { kinds: [uniqueKind('empty')], worker_id: 'w' })
      expect(res.status).toBe(204)
      expect(res.body).toBeNull()
    })
  }

  test('the lease defaults to config.defaultLeaseSec when lease_seconds is omitted', async () => {
    const { run } = await claimed()
    expect(gap(run.started_at, run.lease_expires_at)).toBeCloseTo(f.deps.config.defaultLeaseSec, 1)
    expect(f.deps.config.defaultLeaseSec).toBe(45)
  })

  test('a claimed job is not claimed again', async () => {
    const { kind } = await claimed()
    expect((await f.call('POST', '/claim', { kinds: [kind], worker_id: 'other' })).status).toBe(204)
  })
})

describe('heartbeat', () => {
  for (const form of forms) {
    test(`${form.name}: stores progress, extends the lease and answers the run with cancel_requested`, async () => {
      const c = await claimed({}, { lease_seconds: 30 })
      const res = await f.call('POST', form.path(c, 'heartbeat'), {
        worker_id: W,
        progress_current: 3,
        progress_total: 10,
        progress_message: 'three down',
        lease_seconds: 600,
      })
      expect(res.status).toBe(200)
      expect(res.body).toMatchObject({
        id: c.run.id,
        job_id: c.job.id,
        status: 'running',
        progress_current: 3,
        progress_total: 10,
        progress_message: 'three down',
        cancel_requested: false,
      })
      expect(gap(res.body.updated_at, res.body.lease_expires_at)).toBeCloseTo(600, 1)
      expect(Date.parse(res.body.lease_expires_at)).toBeGreaterThan(Date.parse(c.run.lease_expires_at))
      const stored = (await f.call('GET', `/runs/${c.run.id}`)).body
      expect(stored).toMatchObject({ progress_current: 3, progress_total: 10, progress_message: 'three down' })
      expect(stored.lease_expires_at).toBe(res.body.lease_expires_at)
    })

    test(`${form.name}: cancel_requested turns true after the active job is cancelled`, async () => {
      const c = await claimed()
      await f.call('POST', `/jobs/${c.job.id}/cancel`)
      const res = await f.call('POST', form.path(c, 'heartbeat'), { worker_id: W })
      expect(res.status).toBe(200)
      expect(res.body.cancel_requested).toBe(true)
    })
  }
})

describe('complete', () => {
  for (const form of forms) {
    test(`${form.name}: run and job succeed and the result is copied onto the job`, async () => {
      const c = await claimed()
      const result = { rows: 42, files: ['a', 'b'] }
      const res = await f.call('POST', form.path(c, 'complete'), { worker_id: W, result })
      expect(res.status).toBe(200)
      expect(res.body).toMatchObject({ id: c.job.id, status: 'succeeded', result })
      expect(Date.parse(res.body.completed_at)).toBeGreaterThan(0)
      const run = (await f.call('GET', `/runs/${c.run.id}`)).body
      expect(run).toMatchObject({ status: 'succeeded', result })
      expect(run.lease_expires_at ?? null).toBeNull()
      expect(Date.parse(run.finished_at)).toBeGreaterThan(0)
    })
  }
})

describe('fail', () => {
  test('retryable with attempts left: pending again, due after backoff_seconds', async () => {
    const c = await claimed({ max_attempts: 3 })
    const res = await f.call('POST', `/runs/${c.run.id}/fail`, {
      worker_id: W,
      error: 'timeout',
      retryable: true,
      backoff_seconds: 30,
    })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ status: 'pending', attempt_count: 1 })
    expect(res.body.completed_at ?? null).toBeNull()
    expect(gap(res.body.updated_at, res.body.scheduled_at)).toBeCloseTo(30, 1)
    expect(secondsUntil(res.body.scheduled_at)).toBeGreaterThan(25)
    const run = (await f.call('GET', `/runs/${c.run.id}`)).body
    expect(run).toMatchObject({ status: 'failed', error: 'timeout' })
    expect((await f.call('POST', '/claim', { kinds: [c.kind], worker_id: W })).status).toBe(204)
  })

  test('backoff_seconds 0 means the retry is claimable at once', async () => {
    const c = await claimed({ max_attempts: 2 })
    const res = await f.call('POST', `/jobs/${c.job.id}/fail`, { worker_id: W, retryable: true, backoff_seconds: 0 })
    expect(res.body.status).toBe('pending')
    const again = await claimOne(f, c.kind, 'worker-2')
    expect(again.job.id).toBe(c.job.id)
    expect(again.job.attempt_count).toBe(2)
    expect(again.run.attempt).toBe(2)
  })

  test('omitted backoff_seconds waits 2^attempt s with ±20% jitter (attempt 1: 1.6–2.4 s)', async () => {
    for (let i = 0; i < 3; i++) {
      const c = await claimed({ max_attempts: 2 })
      const res = await f.call('POST', `/runs/${c.run.id}/fail`, { worker_id: W, retryable: true })
      expect(res.body.status).toBe('pending')
      const delay = gap(res.body.updated_at, res.body.scheduled_at)
      expect(delay).toBeGreaterThanOrEqual(1.6)
      expect(delay).toBeLessThanOrEqual(2.4)
      expect((await f.call('POST', '/claim', { kinds: [c.kind], worker_id: W })).status).toBe(204)
    }
  })

  test('no attempts left: failed with completed_at', async () => {
    const c = await claimed({ max_attempts: 1 })
    const res = await f.call('POST', `/runs/${c.run.id}/fail`, { worker_id: W, retryable: true, backoff_seconds: 0 })
    expect(res.body.status).toBe('failed')
    expect(Date.parse(res.body.completed_at)).toBeGreaterThan(0)
    expect((await f.call('POST', '/claim', { kinds: [c.kind], worker_id: W })).status).toBe(204)
  })

  test('not retryable (explicitly or by default): failed even with attempts left', async () => {
    const a = await claimed({ max_attempts: 5 })
    const explicit = await f.call('POST', `/runs/${a.run.id}/fail`, { worker_id: W, retryable: false })
    expect(explicit.body.status).toBe('failed')
    const b = await claimed({ max_attempts: 5 })
    const omitted = await f.call('POST', `/jobs/${b.job.id}/fail`, { worker_id: W, error: 'boom' })
    expect(omitted.body.status).toBe('failed')
  })

  test('cancel requested, then fail: cancelled even if retryable with attempts left', async () => {
    const c = await claimed({ max_attempts: 5 })
    await f.call('POST', `/jobs/${c.job.id}/cancel`)
    const res = await f.call('POST', `/runs/${c.run.id}/fail`, { worker_id: W, retryable: true, backoff_seconds: 0 })
    expect(res.body.status).toBe('cancelled')
    expect(Date.parse(res.body.completed_at)).toBeGreaterThan(0)
    expect((await f.call('POST', '/claim', { kinds: [c.kind], worker_id: W })).status).toBe(204)
  })

  test('a partial result is kept on the run, not copied onto the job', async () => {
    const c = await claimed()
    const partial = { done: 3, of: 10 }
    const res = await f.call('POST', `/runs/${c.run.id}/fail`, { worker_id: W, error: 'half', result: partial })
    expect(res.body.result ?? null).toBeNull()
    expect((await f.call('GET', `/runs/${c.run.id}`)).body.result).toEqual(partial)
  })

  test('a job that succeeded on its 3rd try has runs failed, failed, succeeded', async () => {
    const c = await claimed({ max_attempts: 3 })
    await f.call('POST', `/runs/${c.run.id}/fail`, { worker_id: W, retryable: true, backoff_seconds: 0 })
    const second = await claimOne(f, c.kind, W)
    await f.call('POST', `/jobs/${c.job.id}/fail`, { worker_id: W, retryable: true, backoff_seconds: 0 })
    const third = await claimOne(f, c.kind, W)
    const done = await f.call('POST', `/runs/${third.run.id}/complete`, { worker_id: W, result: 'ok' })
    expect(done.body).toMatchObject({ status: 'succeeded', attempt_count: 3, result: 'ok' })
    const runs = (await f.call('GET', `/jobs/${c.job.id}/runs`)).body
    expect(runs.map((r: any) => [r.id, r.attempt, r.status])).toEqual([
      [c.run.id, 1, 'failed'],
      [second.run.id, 2, 'failed'],
      [third.run.id, 3, 'succeeded'],
    ])
  })
})

describe('ownership', () => {
  for (const form of forms) {
    test(`${form.name}: another worker_id gets 409 and the run stays running`, async () => {
      const c = await claimed({ max_attempts: 2 })
      for (const action of ['heartbeat', 'complete', 'fail']) {
        const res = await f.call('POST', form.path(c, action), { worker_id: 'intruder' })
        expect(res.status).toBe(409)
        expect(res.body.error).toBeString()
      }
      expect((await f.call('GET', `/runs/${c.run.id}`)).body.status).toBe('running')
      expect((await f.call('GET', `/jobs/${c.job.id}`)).body.status).toBe('active')
    })

    test(`${form.name}: acting on a finished run is 409`, async () => {
      const c = await claimed()
      expect((await f.call('POST', form.path(c, 'complete'), { worker_id: W })).status).toBe(200)
      for (const action of ['heartbeat', 'complete', 'fail']) {
        expect((await f.call('POST', form.path(c, action), { worker_id: W })).status).toBe(409)
      }
    })
  }

  test('a job with no running run is 409; an unknown job is 404', async () => {
    const job = await enqueueJob(f)
    expect((await f.call('POST', `/jobs/${job.id}/heartbeat`, { worker_id: W })).status).toBe(409)
    const unknown = await f.call('POST', '/jobs/job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D/complete', { worker_id: W })
    expect(unknown.status).toBe(404)
  })

  test('an unknown well-formed run id is 404; a malformed one is 400', async () => {
    for (const action of ['heartbeat', 'complete', 'fail']) {
      expect((await f.call('POST', `/runs/${UNKNOWN_RUN}/${action}`, { worker_id: W })).status).toBe(404)
      expect((await f.call('POST', `/runs/nope/${action}`, { worker_id: W })).status).toBe(400)
    }
  })
})

describe('GET /runs', () => {
  test('filters by status, worker_id, job_id and kind, newest first', async () => {
    const kind = uniqueKind('runs-filter')
    const worker = `w-${kind}`
    const a = await enqueueJob(f, { kind, max_attempts: 2 })
    const b = await enqueueJob(f, { kind })
    const r1 = await claimOne(f, kind, worker)
    await f.call('POST', `/runs/${r1.run.id}/fail`, { worker_id: worker, retryable: true, backoff_seconds: 0 })
    // The retry is due now, after b (enqueued before it): claims go by due time.
    const r2 = await claimOne(f, kind, 'someone-else')
    const r3 = await claimOne(f, kind, worker)
    expect([r1.job.id, r2.job.id, r3.job.id]).toEqual([a.id, b.id, a.id])
    const get = async (q: string) => (await f.call('GET', `/runs?${q}`)).body.map((r: any) => r.id)
    expect(await get(`kind=${kind}`)).toEqual([r3.run.id, r2.run.id, r1.run.id])
    expect(await get(`worker_id=${worker}`)).toEqual([r3.run.id, r1.run.id])
    expect(await get(`job_id=${a.id}`)).toEqual([r3.run.id, r1.run.id])
    expect(await get(`kind=${kind}&status=failed`)).toEqual([r1.run.id])
    expect(await get(`kind=${kind}&status=running&worker_id=${worker}`)).toEqual([r3.run.id])
  })

  test('cursor pages through every run exactly once', async () => {
    const kind = uniqueKind('runs-page')
    const made: string[] = []
    for (let i = 0; i < 5; i++) {
      await enqueueJob(f, { kind })
      made.push((await claimOne(f, kind)).run.id)
    }
    const seen: string[] = []
    let cursor = ''
    for (let page = 0; page < 4; page++) {
      const res = await f.call('GET', `/runs?kind=${kind}&limit=2${cursor ? `&cursor=${cursor}` : ''}`)
      expect(res.body.length).toBeLessThanOrEqual(2)
      if (res.body.length === 0) break
      seen.push(...res.body.map((r: any) => r.id))
      cursor = res.body.at(-1).id
    }
    expect(seen).toEqual(made.reverse())
  })

  test('GET /runs/:id answers the run, 404 when unknown, 400 when malformed', async () => {
    const { run } = await claimed()
    expect((await f.call('GET', `/runs/${run.id}`)).body.id).toBe(run.id)
    expect((await f.call('GET', `/runs/${UNKNOWN_RUN}`)).status).toBe(404)
    expect((await f.call('GET', '/runs/job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D')).status).toBe(400)
  })
})
