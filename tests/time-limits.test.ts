/**
 * The time limits (issue 13): a job not claimed before `expires_in_seconds` ran
 * out is never claimed and is cancelled by the sweep with error "expired"; a run
 * longer than its job's `timeout_seconds` is failed by the reaper with error
 * "timed out" even while it heartbeats, under the usual retry rules, and its
 * worker hears 409 on the next heartbeat.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { ForemanClient, Worker } from '../src/client'
import type { Sql } from '../src/db/client'
import type { JobChange } from '../src/events/hub'
import { newJobId } from '../src/ids'
import { jobExpireMany } from '../src/runs/sql/expiry'
import { runTimeOutMany } from '../src/runs/sql/timeout'
import { startReaper } from '../src/sweeps/reaper'
import { expireUnclaimed, timeOutRuns } from '../src/sweeps/time-limits'
import { createExplainer, type PlanSummary } from './support/explain'
import { claimOne, enqueueJob, lockRun, postOk, uniqueKind } from './support/factories'
import { type Fixture, startFixture } from './support/harness'

/** Sweeps here are called by the tests, so "before the sweep" is a state they control. */
const f = await startFixture()
/** Runs the reaper on its timer every 100 ms, as a server does, for the timeout tests. */
const live = await startFixture({ reaperIntervalSec: 0.1 })
const reaper = startReaper(live.deps)
afterAll(() => reaper.stop())

const jobRow = async (fx: Fixture, id: string) =>
  (await fx.sql`select *, expires_at <= now() as expired from ${fx.sql(fx.tables.jobs)} where id = ${id}`)[0]
const runsOf = async (fx: Fixture, jobId: string) =>
  await fx.sql`select * from ${fx.sql(fx.tables.runs)} where job_id = ${jobId} order by attempt`

/** Moves a job's expiry into the past, as if its time to live had run out. */
const expireJob = (fx: Fixture, id: string) =>
  fx.sql`update ${fx.sql(fx.tables.jobs)} set expires_at = now() - interval '1 second' where id = ${id}`
/** Moves a run's start an hour back, as if it had run that long. */
const ageRun = (fx: Fixture, id: string) =>
  fx.sql`update ${fx.sql(fx.tables.runs)} set started_at = started_at - interval '1 hour' where id = ${id}`

/** Claims of `kind` for `worker` through POST /claims: the jobs claimed (none on 204). */
async function claimAll(fx: Fixture, kind: string, worker = 'worker-1'): Promise<{ job: any; run: any }[]> {
  const res = await fx.call('POST', '/claims', { kinds: [kind], worker_id: worker, max_jobs: 10 })
  if (res.status === 204) return []
  expect(res.status).toBe(200)
  return res.body
}

/** The value of a counter series on GET /metrics whose labels include `labels` (0 when absent). */
async function counter(fx: Fixture, name: string, labels: Record<string, string>): Promise<number> {
  const res = await fx.app.handle(new Request('http://localhost/foreman/metrics'))
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  const line = (await res.text())
    .split('\n')
    .find((l) => l.startsWith(`${name}{`) && wanted.every((w) => l.includes(w)))
  return line ? Number(line.split(' ').at(-1)) : 0
}

/** Collects every change the fixture's hub announces until the returned function is called. */
function listen(fx: Fixture): { changes: JobChange[]; stop: () => void } {
  const changes: JobChange[] = []
  const stop = fx.deps.events.hub.subscribe((e) => {
    if (e.type === 'changes') changes.push(...e.changes)
  })
  return { changes, stop }
}

/** Polls until `check` answers a value; fails after `ms`. */
async function until<T>(check: () => Promise<T | undefined | null | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > deadline) throw new Error('condition not reached in time')
    await Bun.sleep(20)
  }
}

describe('time to live (expires_in_seconds)', () => {
  test('a job past its expiry is never claimed, even before the sweep has run', async () => {
    const kind = uniqueKind('ttl')
    const job = await enqueueJob(f, { kind, expires_in_seconds: 0.2 })
    expect((Date.parse(job.expires_at) - Date.parse(job.enqueued_at)) / 1000).toBeCloseTo(0.2, 1)
    // Past it by the database's clock, the one the claim reads.
    await until(async () => (await jobRow(f, job.id))?.expired, 5000)
    expect((await f.call('POST', '/claim', { kinds: [kind], worker_id: 'w' })).status).toBe(204)
    expect(await claimAll(f, kind)).toEqual([])
    // Nothing swept it: it is still pending, only passed over, until the sweep.
    expect((await jobRow(f, job.id))?.status).toBe('pending')
    expect(await expireUnclaimed(f.deps)).toEqual({ expired: 1 })
    expect((await jobRow(f, job.id))?.status).toBe('cancelled')
  })

  test('a claim of several kinds and the hand-off pass it over too, and take the live job behind it', async () => {
    const [kind, other] = [uniqueKind('ttl-a'), uniqueKind('ttl-b')]
    const expired = await enqueueJob(f, { kind, expires_in_seconds: 60, priority: 5 })
    const fresh = await enqueueJob(f, { kind, expires_in_seconds: 60 })
    await enqueueJob(f, { kind: other })
    await expireJob(f, expired.id)
    const held = await claimOne(f, other)
    const res = await f.call('POST', '/runs/complete', {
      worker_id: 'worker-1',
      runs: [{ run_id: held.run.id }],
      claim: { kinds: [kind, other], max_jobs: 5 },
    })
    expect(res.status).toBe(200)
    expect(res.body.claimed.map((c: any) => c.job.id)).toEqual([fresh.id])
    expect((await jobRow(f, expired.id))?.status).toBe('pending')
    expect(await expireUnclaimed(f.deps)).toEqual({ expired: 1 })
  })

  test('a kind with limits (the limited claim) passes it over too', async () => {
    const kind = uniqueKind('ttl-limited')
    expect((await f.call('PUT', `/limits/${kind}`, { max_active_per_key: 5 })).status).toBe(200)
    const expired = await postOk(f, '/jobs', { kind, concurrency_key: 'k', expires_in_seconds: 60, priority: 5 })
    const fresh = await postOk(f, '/jobs', { kind, concurrency_key: 'k', expires_in_seconds: 60 })
    await expireJob(f, expired.id)
    expect((await claimAll(f, kind)).map((c) => c.job.id)).toEqual([fresh.id])
    expect((await jobRow(f, expired.id))?.status).toBe('pending')
    expect(await expireUnclaimed(f.deps)).toEqual({ expired: 1 })
  })

  test('the sweep cancels it with error "expired" and completed_at, announces it and counts it', async () => {
    const kind = uniqueKind('ttl-sweep')
    const job = await enqueueJob(f, { kind, expires_in_seconds: 60 })
    await expireJob(f, job.id)
    const before = await counter(f, 'foreman_jobs_terminal_total', { kind, status: 'cancelled' })
    const heard = listen(f)
    try {
      expect(await expireUnclaimed(f.deps)).toEqual({ expired: 1 })
    } finally {
      heard.stop()
    }
    const answer = (await f.call('GET', `/jobs/${job.id}`)).body
    expect(answer.status).toBe('cancelled')
    expect(answer.error).toBe('expired')
    expect(answer.completed_at).not.toBeNull()
    expect(answer.attempt_count).toBe(0)
    expect(heard.changes).toEqual([{ id: job.id, status: 'cancelled', kind, queue: 'default' }])
    expect(await counter(f, 'foreman_jobs_terminal_total', { kind, status: 'cancelled' })).toBe(before + 1)
    expect(await expireUnclaimed(f.deps)).toEqual({ expired: 0 })
  })

  test('a job not yet expired, and a job without a time to live, are left alone', async () => {
    const kind = uniqueKind('ttl-live')
    const later = await enqueueJob(f, { kind, expires_in_seconds: 3600 })
    const never = await enqueueJob(f, { kind })
    expect(never.expires_at).toBeNull()
    expect(await expireUnclaimed(f.deps)).toEqual({ expired: 0 })
    expect((await claimAll(f, kind)).map((c) => c.job.id).sort()).toEqual([later.id, never.id].sort())
  })

  test('a waiting job (on dependencies) past its expiry is cancelled as well', async () => {
    const id = newJobId()
    await f.sql`
      insert into ${f.sql(f.tables.jobs)} (id, kind, status, waiting_on, expires_at)
      values (${id}, ${uniqueKind('ttl-waiting')}, 'waiting', 1, now() - interval '1 second')`
    expect(await expireUnclaimed(f.deps)).toEqual({ expired: 1 })
    expect(await jobRow(f, id)).toMatchObject({ status: 'cancelled', error: 'expired' })
  })

  test('a job claimed before its expiry is not affected by it: its run goes on and completes', async () => {
    const kind = uniqueKind('ttl-claimed')
    const job = await enqueueJob(f, { kind, expires_in_seconds: 60 })
    const { run } = await claimOne(f, kind)
    await expireJob(f, job.id)
    expect(await expireUnclaimed(f.deps)).toEqual({ expired: 0 })
    const done = await f.call('POST', `/runs/${run.id}/complete`, { worker_id: 'worker-1', result: 1 })
    expect(done.body.status).toBe('succeeded')
  })

  test('a job claimed before its expiry and retried after it is still claimable: it was claimed by then', async () => {
    const kind = uniqueKind('ttl-retried')
    const job = await enqueueJob(f, { kind, expires_in_seconds: 60, max_attempts: 2 })
    const { run } = await claimOne(f, kind)
    await expireJob(f, job.id)
    const failed = await f.call('POST', `/runs/${run.id}/fail`, {
      worker_id: 'worker-1',
      error: 'flaky',
      retryable: true,
      backoff_seconds: 0,
    })
    expect(failed.body.status).toBe('pending')
    expect(await expireUnclaimed(f.deps)).toEqual({ expired: 0 })
    const again = await claimOne(f, kind)
    expect(again.job.id).toBe(job.id)
    expect(again.run.attempt).toBe(2)
  })

  test('one sweep cancels more expired jobs than its batch, and the next finds none', async () => {
    const kind = uniqueKind('ttl-bulk')
    const ids = Array.from({ length: 1203 }, () => newJobId())
    await f.sql`
      insert into ${f.sql(f.tables.jobs)} (id, kind, expires_at)
      select id, ${kind}, now() - interval '1 second' from unnest(${ids}::text[]) as ids(id)`
    await f.sql`analyze ${f.sql(f.tables.jobs)}`
    expect(await expireUnclaimed(f.deps)).toEqual({ expired: ids.length })
    expect(await expireUnclaimed(f.deps)).toEqual({ expired: 0 })
    const [row] = await f.sql`
      select count(*)::int as n from ${f.sql(f.tables.jobs)}
      where kind = ${kind} and status = 'cancelled' and error = 'expired'`
    expect(row?.n).toBe(ids.length)
  })
})

describe('run timeout (timeout_seconds)', () => {
  test('a run that keeps heartbeating is failed "timed out" by the reaper; its next heartbeat gets 409', async () => {
    const kind = uniqueKind('timeout')
    const job = await enqueueJob(live, { kind, timeout_seconds: 1 })
    expect(job.timeout_seconds).toBe(1)
    const { run } = await claimOne(live, kind, 'beater', { lease_seconds: 30 })
    const accepted: number[] = []
    let refused: { status: number; body: any } | undefined
    while (!refused) {
      const res = await live.call('POST', `/runs/${run.id}/heartbeat`, { worker_id: 'beater', lease_seconds: 30 })
      if (res.status === 200) accepted.push(res.status)
      else refused = res
      if (Date.now() - Date.parse(run.started_at) > 15_000) throw new Error('the run was never timed out')
      await Bun.sleep(200)
    }
    expect(refused.status).toBe(409)
    expect(typeof refused.body.error).toBe('string')
    // It heartbeat through its second (and its lease of 30 s never lapsed): the timeout ended it.
    expect(accepted.length).toBeGreaterThanOrEqual(2)
    const [ended] = await runsOf(live, job.id)
    expect(ended).toMatchObject({ status: 'failed', error: 'timed out', lease_expires_at: null })
    expect(Date.parse(ended?.finished_at) - Date.parse(ended?.started_at)).toBeGreaterThanOrEqual(1000)
    const after = (await live.call('GET', `/jobs/${job.id}`)).body
    expect(after.status).toBe('failed')
    expect(after.completed_at).not.toBeNull()
  })

  test('with max_attempts 2 the first timeout retries after the default backoff; the second fails the job', async () => {
    const kind = uniqueKind('timeout-retry')
    const job = await enqueueJob(f, { kind, timeout_seconds: 1, max_attempts: 2 })
    const first = await claimOne(f, kind)
    await ageRun(f, first.run.id)
    expect(await timeOutRuns(f.deps)).toEqual({ timedOut: 1 })
    const retried = await jobRow(f, job.id)
    expect(retried?.status).toBe('pending')
    expect(retried?.completed_at).toBeNull()
    // The default backoff after attempt 1: 2 s ± 20%.
    const [run1] = await runsOf(f, job.id)
    const backoff = (Date.parse(retried?.scheduled_at) - Date.parse(run1?.finished_at)) / 1000
    expect(backoff).toBeGreaterThanOrEqual(1.6 - 0.01)
    expect(backoff).toBeLessThanOrEqual(2.4 + 0.01)

    await f.sql`update ${f.sql(f.tables.jobs)} set scheduled_at = now() where id = ${job.id}`
    const second = await claimOne(f, kind)
    expect(second.run.attempt).toBe(2)
    await ageRun(f, second.run.id)
    expect(await timeOutRuns(f.deps)).toEqual({ timedOut: 1 })
    expect(await jobRow(f, job.id)).toMatchObject({ status: 'failed', attempt_count: 2 })
    expect((await runsOf(f, job.id)).map((r) => [r.attempt, r.status, r.error])).toEqual([
      [1, 'failed', 'timed out'],
      [2, 'failed', 'timed out'],
    ])
  })

  test('the failure is announced and counted: the run as failed, the job as terminal', async () => {
    const kind = uniqueKind('timeout-count')
    const job = await enqueueJob(f, { kind, timeout_seconds: 5 })
    const { run } = await claimOne(f, kind)
    await ageRun(f, run.id)
    const runsBefore = await counter(f, 'foreman_runs_terminal_total', { kind, status: 'failed' })
    const jobsBefore = await counter(f, 'foreman_jobs_terminal_total', { kind, status: 'failed' })
    const heard = listen(f)
    try {
      expect(await timeOutRuns(f.deps)).toEqual({ timedOut: 1 })
    } finally {
      heard.stop()
    }
    expect(heard.changes).toEqual([{ id: job.id, status: 'failed', kind, queue: 'default' }])
    expect(await counter(f, 'foreman_runs_terminal_total', { kind, status: 'failed' })).toBe(runsBefore + 1)
    expect(await counter(f, 'foreman_jobs_terminal_total', { kind, status: 'failed' })).toBe(jobsBefore + 1)
  })

  test('a job whose cancel was requested is cancelled by its timeout, even with attempts left', async () => {
    const kind = uniqueKind('timeout-cancel')
    const job = await enqueueJob(f, { kind, timeout_seconds: 5, max_attempts: 3 })
    const { run } = await claimOne(f, kind)
    expect((await f.call('POST', `/jobs/${job.id}/cancel`)).body.cancel_requested).toBe(true)
    await ageRun(f, run.id)
    expect(await timeOutRuns(f.deps)).toEqual({ timedOut: 1 })
    expect(await jobRow(f, job.id)).toMatchObject({ status: 'cancelled' })
  })

  test('a run within its timeout, and a run of a job without one however old, are left alone', async () => {
    const [kind, other] = [uniqueKind('timeout-young'), uniqueKind('timeout-none')]
    await enqueueJob(f, { kind, timeout_seconds: 3600 })
    await enqueueJob(f, { kind: other })
    const young = await claimOne(f, kind)
    const old = await claimOne(f, other)
    await ageRun(f, old.run.id)
    expect(await timeOutRuns(f.deps)).toEqual({ timedOut: 0 })
    for (const { run } of [young, old]) {
      const res = await f.call('POST', `/runs/${run.id}/heartbeat`, { worker_id: 'worker-1' })
      expect(res.status).toBe(200)
    }
  })

  test('a run locked by a heartbeat in flight is skipped, not waited for, and timed out by the next sweep', async () => {
    const kind = uniqueKind('timeout-locked')
    await enqueueJob(f, { kind, timeout_seconds: 5 })
    const { run } = await claimOne(f, kind)
    await ageRun(f, run.id)
    const release = await lockRun(f, run.id)
    try {
      expect(await timeOutRuns(f.deps)).toEqual({ timedOut: 0 })
    } finally {
      await release()
    }
    expect(await timeOutRuns(f.deps)).toEqual({ timedOut: 1 })
  })

  test('a run completed before the sweep is never failed by it', async () => {
    const kind = uniqueKind('timeout-done')
    const job = await enqueueJob(f, { kind, timeout_seconds: 5 })
    const { run } = await claimOne(f, kind)
    await ageRun(f, run.id)
    expect((await f.call('POST', `/runs/${run.id}/complete`, { worker_id: 'worker-1' })).body.status).toBe('succeeded')
    expect(await timeOutRuns(f.deps)).toEqual({ timedOut: 0 })
    expect((await runsOf(f, job.id)).map((r) => r.status)).toEqual(['succeeded'])
  })

  test("a Worker's handler sees ctx.signal abort when its run times out", async () => {
    const kind = uniqueKind('timeout-worker')
    const client = new ForemanClient({ baseUrl: live.serve() })
    const errors: unknown[] = []
    // Heartbeats every second; its lease of 3 s outlives a late one, so only the timeout ends the run.
    const worker = new Worker(client, { leaseSeconds: 3, waitSeconds: 1, onError: (e) => errors.push(e) })
    let aborted: unknown
    worker.handle(kind, async (_job, ctx) => {
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }))
      aborted = ctx.signal.reason
      return 'too late'
    })
    worker.start()
    try {
      const job = await enqueueJob(live, { kind, timeout_seconds: 1 })
      await until(async () => aborted !== undefined)
      expect(String(aborted)).toContain('lease lost')
      const after = (await live.call('GET', `/jobs/${job.id}`)).body
      expect(after.status).toBe('failed')
      expect((await runsOf(live, job.id)).map((r) => [r.status, r.error])).toEqual([['failed', 'timed out']])
    } finally {
      await worker.stop(100)
    }
  })
})

/** Its own tables for the plans: a backlog of plain jobs, pending and active, and a few with limits. */
const p = await startFixture()
const explainer = createExplainer(process.env.DATABASE_URL as string)
afterAll(() => explainer.close())

describe('the sweeps read only the jobs that have a time limit', () => {
  beforeAll(async () => {
    const plain = uniqueKind('plan-plain')
    await p.sql`
      insert into ${p.sql(p.tables.jobs)} (id, kind, status, attempt_count, started_at)
      select 'job_plan_' || i, ${plain}, case when i % 2 = 0 then 'active' else 'pending' end,
             i % 2, case when i % 2 = 0 then now() end
      from generate_series(1, 5000) as i`
    await p.sql`
      insert into ${p.sql(p.tables.runs)} (id, job_id, attempt, worker_id, status, lease_expires_at)
      select 'run_plan_' || i, 'job_plan_' || i, 1, 'w', 'running', now() + interval '1 hour'
      from generate_series(2, 5000, 2) as i`
    const limited = uniqueKind('plan-limited')
    for (let i = 0; i < 3; i++) await enqueueJob(p, { kind: limited, expires_in_seconds: 1, timeout_seconds: 1 })
    await claimOne(p, limited)
    await p.sql`analyze ${p.sql(p.tables.jobs)}`
    await p.sql`analyze ${p.sql(p.tables.runs)}`
  })

  /** The plan of the one statement `call` sends (run and rolled back). */
  const planOf = async (call: (sql: Sql) => Promise<unknown>) =>
    (await explainer.explainCall(call)).statements[0] as PlanSummary

  test('the expiry sweep reads jobs_expires_at_idx, not the backlog', async () => {
    const plan = await planOf((tx) => jobExpireMany(tx, p.tables, 500))
    expect(plan.seqScans).toEqual([])
    expect(plan.indexes).toContain(`${p.tables.prefix}jobs_expires_at_idx`)
    expect(plan.rowsRead).toBeLessThan(100)
  })

  test('the timeout sweep reads jobs_timeout_idx and the one-running index, not the backlog', async () => {
    const plan = await planOf((tx) => runTimeOutMany(tx, p.tables, 500))
    expect(plan.seqScans).toEqual([])
    expect(plan.indexes).toContain(`${p.tables.prefix}jobs_timeout_idx`)
    expect(plan.indexes).toContain(`${p.tables.prefix}job_runs_one_running_key`)
    expect(plan.rowsRead).toBeLessThan(100)
  })
})
