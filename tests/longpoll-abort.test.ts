/**
 * A claim whose client has gone hands no job to the closed socket: a long poll
 * woken by its own client's disconnect claims nothing, and a claim that commits
 * just as the client leaves gives its jobs straight back (pending again, the
 * attempt not used, the run abandoned with a reason), so the next claimer gets
 * them at once instead of after a lease.
 */
import { describe, expect, test } from 'bun:test'
import { ForemanClient, Worker } from '../src/client'
import type { HubEvent } from '../src/events/hub'
import { newJobId, newRunId } from '../src/ids'
import { claimJobsWaiting } from '../src/runs/claiming'
import { completeMany } from '../src/runs/service'
import { runClaim } from '../src/runs/sql/claim'
import { GIVEN_BACK, runGiveBack } from '../src/runs/sql/give-back'
import { blockedOn, claimOne, enqueueJob, postOk, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'
import { eventually } from './support/sse-client'

// No safety poll: a waiter wakes on a hint, its due-time timer or its client leaving.
const f = await startFixture({ eventsPollSec: 3600 })
const base = f.serve()
const waiters = f.deps.events.waiters

const sleeping = (n: number) => eventually(() => waiters.stats().sleeping >= n, 4000, `${n} sleeping claimer(s)`)
const lineEmpty = () => eventually(() => waiters.stats().waiting === 0, 4000, 'the claim to end')
const jobRow = async (id: string) => (await f.sql`select * from ${f.sql(f.tables.jobs)} where id = ${id}`)[0]
const runsOf = (id: string) => f.sql`select * from ${f.sql(f.tables.runs)} where job_id = ${id} order by created_at`
const claimedTotal = async () => (await f.deps.metrics.jobsClaimed.get()).values.reduce((n, v) => n + v.value, 0)

/**
 * A pending job put straight into the table: no hint wakes anyone, as with a
 * NOTIFY from another instance still on its way.
 */
async function quietJob(kind: string): Promise<string> {
  const id = newJobId()
  await f.sql`insert into ${f.sql(f.tables.jobs)} (id, kind) values (${id}, ${kind})`
  return id
}

/** Holds the runs table against inserts, so a claim statement waits on it until released. */
async function holdRunsTable(): Promise<() => Promise<void>> {
  let release!: () => void
  let held!: () => void
  const isHeld = new Promise<void>((resolve) => {
    held = resolve
  })
  const tx = f.sql.begin(async (tx) => {
    await tx`lock table ${tx(f.tables.runs)} in share mode`
    held()
    await new Promise<void>((resolve) => {
      release = resolve
    })
  })
  await isHeld
  return async () => {
    release()
    await tx
  }
}

/** A long-poll claim over HTTP that the test can cut off; `polling` settles to the error's name. */
function longPoll(kind: string) {
  const client = new AbortController()
  const polling = fetch(`${base}/claim`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ kinds: [kind], worker_id: 'w-gone', wait_seconds: 10 }),
    signal: client.signal,
  }).catch((error: Error) => error.name)
  return { client, polling }
}

/** Expects the job pending with no attempt used, and claimable at once as attempt 1. */
async function expectFreshlyClaimable(id: string, kind: string) {
  expect(await jobRow(id)).toMatchObject({ status: 'pending', attempt_count: 0, started_at: null })
  const next = await claimOne(f, kind, 'w-next')
  expect(next.job).toMatchObject({ id, attempt_count: 1 })
  expect(next.run).toMatchObject({ attempt: 1, worker_id: 'w-next', status: 'running' })
}

describe('a long-poll claim whose client leaves', () => {
  test('claims nothing after the disconnect wakes it, though work is pending: the next claimer gets it', async () => {
    const kind = uniqueKind('lp-gone')
    const { client, polling } = longPoll(kind)
    await sleeping(1)
    const id = await quietJob(kind)
    client.abort()
    expect(await polling).toBe('AbortError')
    await lineEmpty()
    expect(await runsOf(id)).toHaveLength(0)
    await expectFreshlyClaimable(id, kind)
  })

  test('a job enqueued after the client left stays pending for the next claimer', async () => {
    const kind = uniqueKind('lp-gone-later')
    const { client, polling } = longPoll(kind)
    await sleeping(1)
    client.abort()
    expect(await polling).toBe('AbortError')
    await lineEmpty()
    const job = await postOk(f, '/jobs', { kind })
    expect(await runsOf(job.id)).toHaveLength(0)
    await expectFreshlyClaimable(job.id, kind)
  })

  test('a hint that wakes a waiter as its client leaves passes to the next waiter in line', async () => {
    const kind = uniqueKind('lp-pass-on')
    const leaving = new AbortController()
    const body = (worker: string) => ({ kinds: [kind], worker_id: worker, wait_seconds: 5 })
    const first = claimJobsWaiting(f.deps, body('w-leaving'), 1, leaving.signal)
    await sleeping(1)
    const second = claimJobsWaiting(f.deps, body('w-staying'), 1, new AbortController().signal)
    await sleeping(2)
    const id = await quietJob(kind)
    // The hint reaches the first in line, whose client leaves in the same turn.
    f.deps.events.hub.publish([{ id, status: 'pending', kind, queue: 'default' }])
    leaving.abort()
    expect(await first).toEqual([])
    const started = Date.now()
    const [claimed] = await second
    expect(claimed?.job.id).toBe(id)
    expect(Date.now() - started).toBeLessThan(4000)
  })

  test('Worker.stop() while its claim waits leaves no job claimed', async () => {
    const kind = uniqueKind('lp-worker-stop')
    const worker = new Worker(new ForemanClient({ baseUrl: base }), { waitSeconds: 10, leaseSeconds: 30 })
    const handled: string[] = []
    worker.handle(kind, (job) => handled.push(job.id)).start()
    await sleeping(1)
    const id = await quietJob(kind)
    await worker.stop(1000)
    await lineEmpty()
    expect(handled).toEqual([])
    expect(await runsOf(id)).toHaveLength(0)
    await expectFreshlyClaimable(id, kind)
  })
})

describe('Worker.stop() with a hand-off in flight', () => {
  test('waits for (and finishes) the job a completion brought back while stopping', async () => {
    const kind = uniqueKind('stop-handoff')
    const worker = new Worker(new ForemanClient({ baseUrl: base }), {
      concurrency: 2,
      waitSeconds: 10,
      leaseSeconds: 30,
    })
    let finishFirst!: () => void
    const first = new Promise<void>((resolve) => {
      finishFirst = resolve
    })
    const started: string[] = []
    worker
      .handle(kind, async (job) => {
        started.push(job.id)
        // The first job waits for the test; the one the hand-off brings takes a while.
        await (started.length === 1 ? first : Bun.sleep(300))
        return job.id
      })
      .start()
    const a = await postOk(f, '/jobs', { kind })
    await eventually(() => started.length === 1, 4000, 'the first job to start')
    // The loop's claim for the free slot sleeps; the next job comes without a hint.
    await sleeping(1)
    const b = await quietJob(kind)
    const release = await holdRunsTable()
    let stopped: Promise<void> | undefined
    try {
      finishFirst()
      await blockedOn(f, 'jsonb_array_elements')
      stopped = worker.stop(5000)
    } finally {
      await release()
    }
    await stopped
    expect(started).toEqual([a.id, b])
    // Stopped means done: the job the hand-off brought was run and completed first.
    expect(await jobRow(b)).toMatchObject({ status: 'succeeded', result: b })
    expect(await jobRow(a.id)).toMatchObject({ status: 'succeeded' })
  })
})

describe('a claim that commits as its client leaves', () => {
  for (const wait of [5, 0]) {
    test(`gives the job back at once (wait_seconds ${wait}): pending, attempt unused, run abandoned`, async () => {
      const kind = uniqueKind('race-gone')
      const job = await enqueueJob(f, { kind, max_attempts: 1 })
      const heard: HubEvent[] = []
      const unsubscribe = f.deps.events.hub.subscribe((event) => heard.push(event))
      const claimsBefore = await claimedTotal()
      const release = await holdRunsTable()
      const client = new AbortController()
      const claiming = claimJobsWaiting(
        f.deps,
        { kinds: [kind], worker_id: 'w-race', wait_seconds: wait },
        1,
        client.signal,
      )
      try {
        await blockedOn(f, 'for update skip locked')
        client.abort()
      } finally {
        await release()
      }
      try {
        expect(await claiming).toEqual([])
      } finally {
        unsubscribe()
      }

      const [run, ...more] = await runsOf(job.id)
      expect(more).toHaveLength(0)
      expect(run).toMatchObject({ status: 'abandoned', error: GIVEN_BACK, worker_id: 'w-race', lease_expires_at: null })
      expect(run?.finished_at).not.toBeNull()
      // Out of the attempt numbers, so the next claim is attempt 1 again.
      expect(run?.attempt).toBe(0)
      const changes = heard.flatMap((e) => (e.type === 'changes' ? e.changes : []))
      expect(changes).toEqual([{ id: job.id, status: 'pending', kind, queue: 'default' }])
      expect(await claimedTotal()).toBe(claimsBefore)
      await expectFreshlyClaimable(job.id, kind)
    })
  }

  test('with an already aborted signal nothing is claimed at all', async () => {
    const kind = uniqueKind('race-gone-before')
    const job = await enqueueJob(f, { kind })
    const body = { kinds: [kind], worker_id: 'w-gone', wait_seconds: 5 }
    expect(await claimJobsWaiting(f.deps, body, 1, AbortSignal.abort())).toEqual([])
    expect(await claimJobsWaiting(f.deps, { ...body, wait_seconds: 0 }, 1, AbortSignal.abort())).toEqual([])
    expect(await runsOf(job.id)).toHaveLength(0)
    await expectFreshlyClaimable(job.id, kind)
  })

  test('a hand-off whose client left keeps its completions and gives back what it claimed', async () => {
    const kind = uniqueKind('handoff-gone')
    await enqueueJob(f, { kind })
    const held = await claimOne(f, kind, 'w-hand')
    const next = await enqueueJob(f, { kind })
    const release = await holdRunsTable()
    const client = new AbortController()
    const handing = completeMany(
      f.deps,
      { worker_id: 'w-hand', runs: [{ run_id: held.run.id, result: 1 }], claim: { kinds: [kind], max_jobs: 5 } },
      client.signal,
    )
    try {
      // Early in the statement's text: pg_stat_activity keeps only its first kilobyte.
      await blockedOn(f, 'jsonb_array_elements')
      client.abort()
    } finally {
      await release()
    }
    const answer = await handing
    expect(answer.results).toEqual([expect.objectContaining({ run_id: held.run.id, status: 200 })])
    expect(answer.claimed).toEqual([])
    expect((await jobRow(held.job.id))?.status).toBe('succeeded')
    expect((await runsOf(next.id)).map((r) => r.error)).toEqual([GIVEN_BACK])
    await expectFreshlyClaimable(next.id, kind)
  })

  test('giving back a job whose cancel was requested meanwhile ends it cancelled; a second give-back numbers its run -1', async () => {
    const kind = uniqueKind('give-back')
    const job = await enqueueJob(f, { kind, max_attempts: 3 })
    const claim = () =>
      runClaim(f.sql, f.tables, { kinds: [kind], workerId: 'w-gb', leaseSec: 30, runIds: [newRunId()] })
    const [first] = await claim()
    const back = await runGiveBack(f.sql, f.tables, { workerId: 'w-gb', runIds: [first!.run.id] })
    expect(back).toEqual([expect.objectContaining({ id: job.id, status: 'pending', attempt_count: 0 })])
    const [second] = await claim()
    expect(second?.run.attempt).toBe(1)
    await postOk(f, `/jobs/${job.id}/cancel`, {})
    const [cancelled] = await runGiveBack(f.sql, f.tables, { workerId: 'w-gb', runIds: [second!.run.id] })
    expect(cancelled).toMatchObject({ status: 'cancelled', attempt_count: 0 })
    expect(cancelled?.completed_at).not.toBeNull()
    expect((await runsOf(job.id)).map((r) => [r.attempt, r.status])).toEqual([
      [0, 'abandoned'],
      [-1, 'abandoned'],
    ])
    // Another worker's run, or one no longer running, is not given back.
    expect(await runGiveBack(f.sql, f.tables, { workerId: 'w-gb', runIds: [second!.run.id] })).toEqual([])
  })
})
