/**
 * The Worker against a real server: success, retries (default and explicit backoff),
 * permanent failure, a thrown non-Error, cooperative cancel, lease extension past the
 * lease, a lost lease freeing its slot, concurrency without double handling, and a
 * graceful stop that drains or gives up in-flight jobs.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import {
  ForemanClient,
  ForemanError,
  type Job,
  PermanentError,
  RetryError,
  SHUTDOWN_MESSAGE,
  Worker,
} from '../src/client'
import { reapExpiredLeases } from '../src/sweeps/reaper'
import { uniqueKind } from './support/factories'
import { startFixture } from './support/harness'
import { eventually } from './support/sse-client'

const f = await startFixture()
const foreman = new ForemanClient({ baseUrl: f.serve() })
const workers: Worker[] = []
const errors: unknown[] = []

/** A worker with short leases and waits, stopped after each test. */
function worker(options: ConstructorParameters<typeof Worker>[1] = {}) {
  const w = new Worker(foreman, {
    leaseSeconds: 3,
    waitSeconds: 2,
    graceMs: 2000,
    onError: (e) => errors.push(e),
    ...options,
  })
  workers.push(w)
  return w
}

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop(100)))
})

/** Polls the job until `done` holds (at most `ms`). */
async function until(id: string, done: (job: Job) => boolean, ms = 10_000): Promise<Job> {
  const deadline = Date.now() + ms
  for (;;) {
    const job = await foreman.getJob(id)
    if (done(job)) return job
    if (Date.now() > deadline) throw new Error(`job ${id} is still ${job.status}`)
    await Bun.sleep(25)
  }
}
const terminal = (job: Job) => ['succeeded', 'failed', 'cancelled'].includes(job.status)

describe('Worker outcomes', () => {
  test('a handler that answers completes the job with its result; progress reaches the run', async () => {
    const kind = uniqueKind('w-ok')
    worker({ leaseSeconds: 1 })
      .handle(kind, async (job, ctx) => {
        ctx.progress(1, 2, 'half')
        await Bun.sleep(700)
        return { doubled: (job.params as { n: number }).n * 2 }
      })
      .start()
    const { job } = await foreman.enqueue({ kind, params: { n: 21 } })
    const done = await until(job.id, terminal)
    expect(done).toMatchObject({ status: 'succeeded', result: { doubled: 42 }, attempt_count: 1 })
    const [run] = await foreman.listJobRuns(job.id)
    expect(run).toMatchObject({ progress_current: 1, progress_total: 2, progress_message: 'half' })
  })

  test('ctx.dependencies is [] for a job without dependencies', async () => {
    const kind = uniqueKind('w-nodeps')
    const seen: unknown[] = []
    worker()
      .handle(kind, (_job, ctx) => {
        seen.push(ctx.dependencies)
        return null
      })
      .start()
    const { job } = await foreman.enqueue({ kind })
    expect(await until(job.id, terminal)).toMatchObject({ status: 'succeeded' })
    expect(seen).toEqual([[]])
  })

  test('a thrown error fails retryably with the default backoff', async () => {
    const kind = uniqueKind('w-retry')
    worker()
      .handle(kind, () => {
        throw new Error('flaky')
      })
      .start()
    const { job } = await foreman.enqueue({ kind, max_attempts: 3 })
    const after = await until(job.id, (j) => j.attempt_count === 1 && j.status === 'pending')
    // Default backoff for attempt 1: 2 s ±20%.
    const delay = (Date.parse(after.scheduled_at!) - Date.parse(after.updated_at)) / 1000
    expect(delay).toBeGreaterThan(1.5)
    expect(delay).toBeLessThan(2.5)
    expect((await foreman.listJobRuns(job.id))[0]).toMatchObject({ status: 'failed', error: 'flaky' })
  })

  test('a RetryError sets its own backoff: 0 retries at once and the next attempt succeeds', async () => {
    const kind = uniqueKind('w-retry0')
    let calls = 0
    worker()
      .handle(kind, () => {
        calls++
        if (calls === 1) throw new RetryError('again', 0)
        return 'second time'
      })
      .start()
    const { job } = await foreman.enqueue({ kind, max_attempts: 3 })
    expect(await until(job.id, terminal)).toMatchObject({
      status: 'succeeded',
      attempt_count: 2,
      result: 'second time',
    })
  })

  test('a PermanentError fails the job at once, attempts left or not', async () => {
    const kind = uniqueKind('w-perm')
    worker()
      .handle(kind, () => {
        throw new PermanentError('no such user')
      })
      .start()
    const { job } = await foreman.enqueue({ kind, max_attempts: 5 })
    expect(await until(job.id, terminal)).toMatchObject({ status: 'failed', attempt_count: 1 })
    expect((await foreman.listJobRuns(job.id))[0]?.error).toBe('no such user')
  })

  test('a thrown non-Error fails the job and the worker goes on to the next one', async () => {
    const kind = uniqueKind('w-weird')
    worker()
      .handle(kind, (job) => {
        if ((job.params as { bad?: boolean }).bad) throw 'not an error object'
        return 'fine'
      })
      .start()
    const bad = (await foreman.enqueue({ kind, params: { bad: true } })).job
    expect(await until(bad.id, terminal)).toMatchObject({ status: 'failed' })
    expect((await foreman.listJobRuns(bad.id))[0]?.error).toBe('not an error object')
    const good = (await foreman.enqueue({ kind, params: {} })).job
    expect(await until(good.id, terminal)).toMatchObject({ status: 'succeeded', result: 'fine' })
  })
})

describe('Worker leases and cancel', () => {
  test('cancel mid-job fires ctx.signal on the next heartbeat and the job lands cancelled', async () => {
    const kind = uniqueKind('w-cancel')
    let started!: () => void
    const running = new Promise<void>((resolve) => {
      started = resolve
    })
    let reason = ''
    worker({ leaseSeconds: 1 })
      .handle(kind, (_job, ctx) => {
        started()
        return new Promise((_, reject) =>
          ctx.signal.addEventListener('abort', () => {
            reason = String(ctx.signal.reason?.message)
            reject(ctx.signal.reason)
          }),
        )
      })
      .start()
    const { job } = await foreman.enqueue({ kind, max_attempts: 3 })
    await running
    expect((await foreman.cancel(job.id)).cancel_requested).toBe(true)
    expect(await until(job.id, terminal)).toMatchObject({ status: 'cancelled', attempt_count: 1 })
    expect(reason).toBe('cancel requested')
  })

  test('a job longer than its lease keeps it by heartbeating; the reaper finds nothing to take', async () => {
    const kind = uniqueKind('w-long')
    let reaped = -1
    worker({ leaseSeconds: 2 })
      .handle(kind, async () => {
        await Bun.sleep(3500)
        reaped = (await reapExpiredLeases(f.deps)).reaped
        await Bun.sleep(500)
        return 'long'
      })
      .start()
    const { job } = await foreman.enqueue({ kind, max_attempts: 2 })
    expect(await until(job.id, terminal)).toMatchObject({ status: 'succeeded', attempt_count: 1 })
    expect(reaped).toBe(0)
    expect(await foreman.listJobRuns(job.id)).toHaveLength(1)
  })

  test('a handler that hangs past a lost lease frees its slot: the worker goes on', async () => {
    const kind = uniqueKind('w-hang')
    let signalled = false
    worker({ leaseSeconds: 1, concurrency: 1 })
      .handle(kind, (job, ctx) => {
        if ((job.params as { hang?: boolean }).hang) {
          ctx.signal.addEventListener('abort', () => {
            signalled = true
          })
          return new Promise(() => {})
        }
        return 'next'
      })
      .start()
    const hung = (await foreman.enqueue({ kind, params: { hang: true } })).job
    await until(hung.id, (j) => j.status === 'active')
    // Expire the lease and reap it, as the reaper would once heartbeats stop arriving.
    await f.sql`update ${f.sql(f.tables.runs)} set lease_expires_at = now() - interval '1 second' where job_id = ${hung.id}`
    await reapExpiredLeases(f.deps)
    expect((await foreman.getJob(hung.id)).status).toBe('failed')
    const next = (await foreman.enqueue({ kind, params: {} })).job
    expect(await until(next.id, terminal)).toMatchObject({ status: 'succeeded', result: 'next' })
    expect(signalled).toBe(true)
  })
})

describe('Worker concurrency and stop', () => {
  test('concurrency N runs N jobs at once and never one job twice', async () => {
    const kind = uniqueKind('w-many')
    const handled: string[] = []
    let now = 0
    let peak = 0
    const w = worker({ concurrency: 4 }).handle(kind, async (job) => {
      handled.push(job.id)
      peak = Math.max(peak, ++now)
      await Bun.sleep(300)
      now--
    })
    const jobs = await Promise.all(Array.from({ length: 12 }, () => foreman.enqueue({ kind }).then((e) => e.job)))
    w.start()
    await Promise.all(jobs.map((j) => until(j.id, terminal)))
    expect(handled.sort()).toEqual(jobs.map((j) => j.id).sort())
    expect(peak).toBe(4)
    for (const j of jobs) expect((await foreman.getJob(j.id)).status).toBe('succeeded')
  })

  test('concurrency 1 on a busy queue: each completion brings the next job, one request per job', async () => {
    const kind = uniqueKind('w-handoff')
    const bodies: { path: string; body: string }[] = []
    const counted = new ForemanClient({
      baseUrl: foreman.baseUrl,
      fetch: ((input: RequestInfo | URL, init?: RequestInit) => {
        const path = new URL(input instanceof Request ? input.url : input).pathname
        bodies.push({ path, body: typeof init?.body === 'string' ? init.body : '' })
        return fetch(input, init)
      }) as typeof fetch,
    })
    const handled: string[] = []
    const w = new Worker(counted, { leaseSeconds: 30, waitSeconds: 1, onError: (e) => errors.push(e) })
    workers.push(w)
    w.handle(kind, (job) => {
      handled.push(job.id)
      return { ok: job.id }
    })
    const jobs = []
    for (let i = 0; i < 12; i++) jobs.push((await foreman.enqueue({ kind })).job)
    w.start()
    await Promise.all(jobs.map((j) => until(j.id, terminal)))
    // One at a time, in claim order, each once.
    expect(handled).toEqual(jobs.map((j) => j.id))
    const claims = bodies.filter((b) => b.path.endsWith('/claim')).length
    const handoffs = bodies.filter((b) => b.path.endsWith('/runs/complete') && JSON.parse(b.body).claim?.max_jobs === 1)
    expect(claims).toBeLessThanOrEqual(2)
    expect(handoffs.length).toBe(12)
  })

  test('concurrency 8 claims in batches: 40 jobs take fewer claim requests than jobs, none handled twice', async () => {
    const kind = uniqueKind('w-batch')
    const paths: string[] = []
    const counted = new ForemanClient({
      baseUrl: foreman.baseUrl,
      fetch: ((input: RequestInfo | URL, init?: RequestInit) => {
        paths.push(new URL(input instanceof Request ? input.url : input).pathname)
        return fetch(input, init)
      }) as typeof fetch,
    })
    const handled: string[] = []
    const w = new Worker(counted, { concurrency: 8, leaseSeconds: 3, waitSeconds: 2, onError: (e) => errors.push(e) })
    workers.push(w)
    w.handle(kind, async (job) => {
      handled.push(job.id)
      await Bun.sleep(20)
      return { ok: job.id }
    })
    const jobs = await Promise.all(Array.from({ length: 40 }, () => foreman.enqueue({ kind }).then((e) => e.job)))
    const errorsBefore = errors.length
    w.start()
    await Promise.all(jobs.map((j) => until(j.id, terminal)))
    expect(handled.sort()).toEqual(jobs.map((j) => j.id).sort())
    for (const j of jobs)
      expect(await foreman.getJob(j.id)).toMatchObject({ status: 'succeeded', result: { ok: j.id } })
    const claims = paths.filter((p) => p.endsWith('/claims')).length
    const completes = paths.filter((p) => p.endsWith('/runs/complete')).length
    expect(paths.some((p) => p.endsWith('/claim'))).toBe(false)
    expect(claims).toBeGreaterThan(0)
    expect(claims).toBeLessThan(40)
    expect(completes).toBeGreaterThan(0)
    expect(completes).toBeLessThan(40)
    expect(errors.length).toBe(errorsBefore)
  })

  test('a batched completion the server refuses is reported to onError with the job', async () => {
    const kind = uniqueKind('w-batch-409')
    const reported: { error: unknown; job?: Job }[] = []
    let started!: () => void
    const running = new Promise<void>((resolve) => {
      started = resolve
    })
    let release!: () => void
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    worker({ concurrency: 4, leaseSeconds: 30, onError: (error, job) => reported.push({ error, job }) })
      .handle(kind, async () => {
        started()
        await gate
        return 'late'
      })
      .start()
    const { job } = await foreman.enqueue({ kind })
    await running
    // Someone else ends the run first (as the reaper would): the worker's completion is a 409.
    const [run] = await foreman.listJobRuns(job.id)
    await f.sql`update ${f.sql(f.tables.runs)} set worker_id = 'someone-else' where id = ${run!.id}`
    release()
    await eventually(() => reported.length > 0, 5000, 'a reported completion')
    const [first] = reported
    expect(first?.job?.id).toBe(job.id)
    expect(first?.error).toBeInstanceOf(ForemanError)
    expect(first?.error).toMatchObject({ status: 409 })
    expect((await foreman.getJob(job.id)).status).toBe('active')
  })

  test('stop() waits for an in-flight job to finish and claims nothing more', async () => {
    const kind = uniqueKind('w-drain')
    let started!: () => void
    const running = new Promise<void>((resolve) => {
      started = resolve
    })
    const w = worker().handle(kind, async () => {
      started()
      await Bun.sleep(500)
      return 'drained'
    })
    w.start()
    const { job } = await foreman.enqueue({ kind })
    await running
    await w.stop()
    expect(await foreman.getJob(job.id)).toMatchObject({ status: 'succeeded', result: 'drained' })
    const later = (await foreman.enqueue({ kind })).job
    await Bun.sleep(200)
    expect((await foreman.getJob(later.id)).status).toBe('pending')
    expect(w.inFlight).toBe(0)
  })

  test('stop() gives up a job that outlasts the grace period: signal fires, the job is free to retry', async () => {
    const kind = uniqueKind('w-grace')
    let started!: () => void
    const running = new Promise<void>((resolve) => {
      started = resolve
    })
    let aborted = false
    const w = worker().handle(kind, (_job, ctx) => {
      started()
      ctx.signal.addEventListener('abort', () => {
        aborted = true
      })
      return new Promise(() => {})
    })
    w.start()
    const { job } = await foreman.enqueue({ kind, max_attempts: 2 })
    await running
    await w.stop(200)
    expect(aborted).toBe(true)
    expect(await foreman.getJob(job.id)).toMatchObject({ status: 'pending', attempt_count: 1 })
    expect((await foreman.listJobRuns(job.id))[0]).toMatchObject({ status: 'failed', error: SHUTDOWN_MESSAGE })
  })
})
