/**
 * Sweeps: the reaper returns expired leases, the sweep loop keeps a sweep running
 * on its timer, and retention prunes old terminal history.
 */
import { describe, expect, test } from 'bun:test'
import { newJobId, newRunId } from '../src/ids'
import type { Logger } from '../src/log'
import { runClaim } from '../src/runs/sql/claim'
import { startSweepLoop } from '../src/sweeps/loop'
import { reapExpiredLeases } from '../src/sweeps/reaper'
import { pruneHistory } from '../src/sweeps/retention'
import { claimOne, enqueueJob, uniqueKind } from './support/factories'
import { type Fixture, startFixture } from './support/harness'

const f = await startFixture()
/** Retention gets a fixture of its own, so its counts see only its own jobs. */
const r = await startFixture()

/** Makes a run's lease expired as of now. */
const expire = (fx: Fixture, runId: string) =>
  fx.sql`update ${fx.sql(fx.tables.runs)} set lease_expires_at = now() - interval '1 second' where id = ${runId}`
const runRow = async (fx: Fixture, id: string) =>
  (await fx.sql`select * from ${fx.sql(fx.tables.runs)} where id = ${id}`)[0]
const jobRow = async (fx: Fixture, id: string) =>
  (await fx.sql`select * from ${fx.sql(fx.tables.jobs)} where id = ${id}`)[0]

/** Enqueues one job, claims it, and expires its lease. */
async function expiredClaim(body: Record<string, unknown> = {}) {
  const kind = uniqueKind('reap')
  await enqueueJob(f, { kind, ...body })
  const claimed = await claimOne(f, kind, 'old-worker', { lease_seconds: 30 })
  await expire(f, claimed.run.id)
  return { kind, ...claimed }
}

describe('reapExpiredLeases', () => {
  test('an expired run becomes abandoned with error "lease expired", finished_at set and no lease', async () => {
    const { run } = await expiredClaim({ max_attempts: 2 })
    expect(await reapExpiredLeases(f.deps)).toEqual({ reaped: 1 })
    const r = await runRow(f, run.id)
    expect(r?.status).toBe('abandoned')
    expect(r?.error).toBe('lease expired')
    expect(r?.finished_at).not.toBeNull()
    expect(r?.lease_expires_at).toBeNull()
  })

  test('the job returns to pending when attempts remain', async () => {
    const { job } = await expiredClaim({ max_attempts: 2 })
    await reapExpiredLeases(f.deps)
    const j = await jobRow(f, job.id)
    expect(j?.status).toBe('pending')
    expect(j?.completed_at).toBeNull()
    expect(j?.attempt_count).toBe(1)
  })

  test('the job fails, with completed_at, when no attempts remain', async () => {
    const { job } = await expiredClaim({ max_attempts: 1 })
    await reapExpiredLeases(f.deps)
    const j = await jobRow(f, job.id)
    expect(j?.status).toBe('failed')
    expect(j?.completed_at).not.toBeNull()
  })

  test('the job is cancelled when cancel was requested, even with attempts left', async () => {
    const { job } = await expiredClaim({ max_attempts: 3 })
    const cancel = await f.call('POST', `/jobs/${job.id}/cancel`)
    expect(cancel.body.status).toBe('active')
    expect(cancel.body.cancel_requested).toBe(true)
    await reapExpiredLeases(f.deps)
    const j = await jobRow(f, job.id)
    expect(j?.status).toBe('cancelled')
    expect(j?.completed_at).not.toBeNull()
  })

  test('a run with a live lease is left untouched', async () => {
    const kind = uniqueKind('live')
    await enqueueJob(f, { kind })
    const { job, run } = await claimOne(f, kind, 'live-worker', { lease_seconds: 120 })
    const before = await runRow(f, run.id)
    expect(await reapExpiredLeases(f.deps)).toEqual({ reaped: 0 })
    const after = await runRow(f, run.id)
    expect(after?.status).toBe('running')
    expect(after?.lease_expires_at).toBe(before?.lease_expires_at)
    expect(after?.updated_at).toBe(before?.updated_at)
    expect((await jobRow(f, job.id))?.status).toBe('active')
  })

  test('the old worker gets 409 for heartbeat, complete and fail after its run was reaped', async () => {
    const { job, run } = await expiredClaim({ max_attempts: 2 })
    await reapExpiredLeases(f.deps)
    const calls = [
      [`/jobs/${job.id}/heartbeat`, { worker_id: 'old-worker', progress_current: 1 }],
      [`/runs/${run.id}/heartbeat`, { worker_id: 'old-worker', progress_current: 1 }],
      [`/jobs/${job.id}/complete`, { worker_id: 'old-worker', result: { late: true } }],
      [`/runs/${run.id}/complete`, { worker_id: 'old-worker', result: { late: true } }],
      [`/jobs/${job.id}/fail`, { worker_id: 'old-worker', error: 'late' }],
      [`/runs/${run.id}/fail`, { worker_id: 'old-worker', error: 'late' }],
    ] as const
    for (const [path, body] of calls) {
      const res = await f.call('POST', path, body)
      expect({ path, status: res.status }).toEqual({ path, status: 409 })
      expect(typeof res.body.error).toBe('string')
    }
    const r = await runRow(f, run.id)
    expect(r?.status).toBe('abandoned')
    expect(r?.result).toBeNull()
    expect(r?.progress_current).toBeNull()
    expect((await jobRow(f, job.id))?.status).toBe('pending')
  })

  test('a reaped job can be claimed again and gets attempt 2; the old worker still cannot act on it', async () => {
    const { kind, job, run } = await expiredClaim({ max_attempts: 2 })
    await reapExpiredLeases(f.deps)
    const again = await claimOne(f, kind, 'new-worker')
    expect(again.job.id).toBe(job.id)
    expect(again.job.attempt_count).toBe(2)
    expect(again.run.attempt).toBe(2)
    expect(again.run.id).not.toBe(run.id)

    const stale = await f.call('POST', `/jobs/${job.id}/complete`, { worker_id: 'old-worker' })
    expect(stale.status).toBe(409)
    const done = await f.call('POST', `/runs/${again.run.id}/complete`, { worker_id: 'new-worker', result: 'ok' })
    expect(done.status).toBe(200)
    expect(done.body.status).toBe('succeeded')

    const runs = await f.call('GET', `/jobs/${job.id}/runs`)
    expect(runs.body.map((r: any) => [r.attempt, r.worker_id, r.status, r.error])).toEqual([
      [1, 'old-worker', 'abandoned', 'lease expired'],
      [2, 'new-worker', 'succeeded', null],
    ])
  })

  test('one sweep reaps more expired runs than its batch size, and a second sweep finds nothing', async () => {
    const kind = uniqueKind('bulk')
    const ids = Array.from({ length: 1203 }, () => newJobId())
    await f.sql`
      insert into ${f.sql(f.tables.jobs)} (id, kind, max_attempts)
      select id, ${kind}, 2 from unnest(${ids}::text[]) as ids(id)`
    // Fresh statistics, as autovacuum would have them; stale ones make these bulk
    // statements plan nested loops over the whole batch.
    await f.sql`analyze ${f.sql(f.tables.jobs)}`
    const claimed = await runClaim(f.sql, f.tables, {
      kinds: [kind],
      workerId: 'bulk-worker',
      leaseSec: 60,
      runIds: ids.map(() => newRunId()),
    })
    expect(claimed.length).toBe(ids.length)
    await f.sql`
      update ${f.sql(f.tables.runs)} set lease_expires_at = now() - interval '1 second'
      where worker_id = 'bulk-worker'`
    await f.sql`analyze ${f.sql(f.tables.runs)}`

    expect(await reapExpiredLeases(f.deps)).toEqual({ reaped: ids.length })
    expect(await reapExpiredLeases(f.deps)).toEqual({ reaped: 0 })
    const states = await f.sql`
      select j.status as job, r.status as run, count(*)::int as n
      from ${f.sql(f.tables.jobs)} j join ${f.sql(f.tables.runs)} r on r.job_id = j.id
      where j.kind = ${kind} group by 1, 2`
    expect([...states]).toEqual([{ job: 'pending', run: 'abandoned', n: ids.length }])
  })
})

/** A logger that records error calls and ignores the rest. */
function recordingLogger() {
  const errors: unknown[][] = []
  const log = { info() {}, warn() {}, debug() {}, error: (...args: unknown[]) => errors.push(args) }
  return { errors, log: log as unknown as Logger }
}

/** Waits (polling) until `check` holds; fails the test after `ms`. */
async function until(check: () => boolean, ms = 5000) {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time')
    await Bun.sleep(5)
  }
}

describe('startSweepLoop', () => {
  test('runs the sweep repeatedly until stopped, and not after', async () => {
    const { log } = recordingLogger()
    let calls = 0
    const loop = startSweepLoop({ name: 'test', intervalMs: 10, log, sweep: async () => ({ n: ++calls }) })
    await until(() => calls >= 3)
    await loop.stop()
    const atStop = calls
    await Bun.sleep(60)
    expect(calls).toBe(atStop)
  })

  test('keeps going after a sweep throws, and logs the failure', async () => {
    const { log, errors } = recordingLogger()
    let calls = 0
    const loop = startSweepLoop({
      name: 'flaky',
      intervalMs: 10,
      log,
      sweep: async () => {
        calls++
        if (calls <= 2) throw new Error(`boom ${calls}`)
        return { n: 0 }
      },
    })
    await until(() => calls >= 4)
    await loop.stop()
    expect(errors.length).toBe(2)
    expect(JSON.stringify(errors[0]?.[0])).toContain('flaky')
  })

  test('never runs two sweeps at once, even when a sweep outlasts the interval', async () => {
    const { log } = recordingLogger()
    let inFlight = 0
    let maxInFlight = 0
    let calls = 0
    const loop = startSweepLoop({
      name: 'slow',
      intervalMs: 5,
      log,
      sweep: async () => {
        calls++
        maxInFlight = Math.max(maxInFlight, ++inFlight)
        await Bun.sleep(25)
        inFlight--
        return {}
      },
    })
    await until(() => calls >= 3)
    await loop.stop()
    expect(maxInFlight).toBe(1)
  })

  test('stop() waits for a sweep in progress to finish', async () => {
    const { log } = recordingLogger()
    let release: () => void = () => {}
    let started = false
    let finished = false
    const loop = startSweepLoop({
      name: 'held',
      intervalMs: 10,
      log,
      sweep: async () => {
        started = true
        await new Promise<void>((resolve) => {
          release = resolve
        })
        finished = true
        return {}
      },
    })
    await until(() => started)
    let stopped = false
    const stopping = loop.stop().then(() => {
      stopped = true
    })
    await Bun.sleep(50)
    expect(stopped).toBe(false)
    release()
    await stopping
    expect(finished).toBe(true)
    expect(stopped).toBe(true)
  })
})

describe('pruneHistory', () => {
  /** A job driven to `status` through the API, its completed_at backdated by `daysAgo`. */
  async function terminal(status: 'succeeded' | 'failed' | 'cancelled', daysAgo: number) {
    const kind = uniqueKind('prune')
    const job = await enqueueJob(r, { kind })
    if (status === 'cancelled') {
      expect((await r.call('POST', `/jobs/${job.id}/cancel`)).body.status).toBe('cancelled')
    } else {
      await claimOne(r, kind)
      const action = status === 'succeeded' ? 'complete' : 'fail'
      const res = await r.call('POST', `/jobs/${job.id}/${action}`, { worker_id: 'worker-1' })
      expect(res.body.status).toBe(status)
    }
    await r.sql`
      update ${r.sql(r.tables.jobs)} set completed_at = now() - make_interval(days => ${daysAgo})
      where id = ${job.id}`
    return job.id as string
  }

  test('deletes terminal jobs completed more than N days ago with their runs; keeps recent terminal and all live jobs', async () => {
    const oldOnes = [await terminal('succeeded', 10), await terminal('failed', 8), await terminal('cancelled', 30)]
    const recent = [await terminal('succeeded', 6), await terminal('failed', 0)]
    const pending = (await enqueueJob(r, {})).id
    const activeKind = uniqueKind('prune-active')
    const active = (await enqueueJob(r, { kind: activeKind })).id
    await claimOne(r, activeKind)
    // Live jobs are never pruned, however old they are.
    await r.sql`
      update ${r.sql(r.tables.jobs)} set enqueued_at = now() - interval '90 days',
        updated_at = now() - interval '90 days'
      where id in ${r.sql([pending, active])}`

    expect(await pruneHistory(r.deps, 7)).toEqual({ deleted: 3 })

    const left = await r.sql`select id from ${r.sql(r.tables.jobs)}`
    expect(left.map((x) => x.id).sort()).toEqual([...recent, pending, active].sort())
    const orphans = await r.sql`select id from ${r.sql(r.tables.runs)} where job_id in ${r.sql(oldOnes)}`
    expect([...orphans]).toEqual([])
    const kept = await r.sql`select job_id from ${r.sql(r.tables.runs)}`
    expect(kept.map((x) => x.job_id).sort()).toEqual([...recent, active].sort())
    for (const id of oldOnes) expect((await r.call('GET', `/jobs/${id}`)).status).toBe(404)

    expect(await pruneHistory(r.deps, 7)).toEqual({ deleted: 0 })
  })

  test('deletes more expired jobs than one batch in a single call', async () => {
    const kind = uniqueKind('prune-bulk')
    const ids = Array.from({ length: 2345 }, () => newJobId())
    await r.sql`
      insert into ${r.sql(r.tables.jobs)} (id, kind, status, completed_at)
      select id, ${kind}, 'succeeded', now() - interval '40 days' from unnest(${ids}::text[]) as ids(id)`
    expect(await pruneHistory(r.deps, 30)).toEqual({ deleted: ids.length })
    const [row] = await r.sql`select count(*)::int as n from ${r.sql(r.tables.jobs)} where kind = ${kind}`
    expect(row?.n).toBe(0)
  })
})
