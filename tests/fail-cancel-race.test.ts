/**
 * A cancel that commits while a worker-side statement waits on a row lock must
 * still count. Three connections make the race deterministic: one holds the run
 * row (as a heartbeat would), one sends the outcome (and blocks on that lock), one
 * commits the cancel; then the first lets go. Postgres re-checks only the locked
 * row after such a wait, so a next status decided from what the statement read at
 * its start would miss the cancel.
 */
import { describe, expect, test } from 'bun:test'
import { reapExpiredLeases } from '../src/sweeps/reaper'
import { blockedOn, claimOne, enqueueJob, lockRun, postOk, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()

const jobRow = async (id: string) => (await f.sql`select * from ${f.sql(f.tables.jobs)} where id = ${id}`)[0]
const runRow = async (id: string) => (await f.sql`select * from ${f.sql(f.tables.runs)} where id = ${id}`)[0]

/** An active job with attempts left, and its run. */
/**
 * Opens a transaction that requests cancel of `jobId` and holds the job row
 * until `commit()` is called; `committed` settles once it has.
 */
async function cancelHoldingJobRow(jobId: string) {
  let commit!: () => void
  let held!: () => void
  const isHeld = new Promise<void>((resolve) => {
    held = resolve
  })
  const committed = f.sql.begin(async (tx) => {
    await tx`update ${tx(f.tables.jobs)} set cancel_requested = true where id = ${jobId}`
    held()
    await new Promise<void>((resolve) => {
      commit = resolve
    })
  })
  await isHeld
  return { commit, committed }
}

async function activeJob(label: string) {
  const kind = uniqueKind(label)
  await enqueueJob(f, { kind, max_attempts: 3 })
  return claimOne(f, kind, 'w-race', { lease_seconds: 60 })
}

describe('fail racing a cancel', () => {
  for (const retryable of [true, false]) {
    test(`a fail (retryable: ${retryable}) that waited on the run row while a cancel committed lands cancelled`, async () => {
      const { job, run } = await activeJob('fail-cancel')
      const unlock = await lockRun(f, run.id)
      const failing = f.call('POST', `/runs/${run.id}/fail`, {
        worker_id: 'w-race',
        error: 'stopped',
        retryable,
        backoff_seconds: 0,
      })
      await blockedOn(f, "status = 'failed'")
      const cancelled = await postOk(f, `/jobs/${job.id}/cancel`, {})
      expect(cancelled).toMatchObject({ status: 'active', cancel_requested: true })
      await unlock()

      const answer = await failing
      expect(answer.status).toBe(200)
      expect(answer.body).toMatchObject({ id: job.id, status: 'cancelled', cancel_requested: true })
      expect(answer.body.completed_at).not.toBeNull()
      const stored = await jobRow(job.id)
      expect(stored).toMatchObject({ status: 'cancelled', cancel_requested: true, attempt_count: 1 })
      expect(await runRow(run.id)).toMatchObject({ status: 'failed', error: 'stopped' })
      // Nothing runs it again.
      const again = await f.call('POST', '/claim', { kinds: [job.kind], worker_id: 'w-next' })
      expect(again.status).toBe(204)
    })
  }

  test('a fail that waited on the job row while a cancel held it lands cancelled', async () => {
    const { job, run } = await activeJob('fail-cancel-job-row')
    // The cancel's own transaction holds the job row until it commits.
    const { commit, committed: cancel } = await cancelHoldingJobRow(job.id)
    const failing = f.call('POST', `/runs/${run.id}/fail`, { worker_id: 'w-race', error: 'x', retryable: true })
    await blockedOn(f, "status = 'failed'")
    commit()
    await cancel
    const answer = await failing
    expect(answer.body).toMatchObject({ id: job.id, status: 'cancelled' })
    expect((await jobRow(job.id))?.status).toBe('cancelled')
  })
})

describe('the other outcomes racing a cancel', () => {
  for (const path of ['complete', 'complete-many'] as const) {
    test(`a ${path} that waited on the run row while a cancel committed still succeeds (cancel only asks)`, async () => {
      const { job, run } = await activeJob(`${path}-cancel`)
      const unlock = await lockRun(f, run.id)
      const completing =
        path === 'complete'
          ? f.call('POST', `/runs/${run.id}/complete`, { worker_id: 'w-race', result: 'r' })
          : f.call('POST', '/runs/complete', { worker_id: 'w-race', runs: [{ run_id: run.id, result: 'r' }] })
      await blockedOn(f, "status = 'succeeded'")
      await postOk(f, `/jobs/${job.id}/cancel`, {})
      await unlock()
      const answer = await completing
      expect(answer.status).toBe(200)
      const stored = await jobRow(job.id)
      expect(stored).toMatchObject({ status: 'succeeded', result: 'r', cancel_requested: true })
      expect(await runRow(run.id)).toMatchObject({ status: 'succeeded' })
    })
  }

  test('the reaper, waiting on the job row while a cancel commits, lands the job cancelled', async () => {
    const { job, run } = await activeJob('reap-cancel')
    await f.sql`update ${f.sql(f.tables.runs)} set lease_expires_at = now() - interval '1 second' where id = ${run.id}`
    const { commit, committed: cancel } = await cancelHoldingJobRow(job.id)
    const sweeping = reapExpiredLeases(f.deps)
    await blockedOn(f, "error = 'lease expired'")
    commit()
    await cancel
    expect(await sweeping).toEqual({ reaped: 1 })
    expect(await jobRow(job.id)).toMatchObject({ status: 'cancelled', attempt_count: 1 })
    expect(await runRow(run.id)).toMatchObject({ status: 'abandoned', error: 'lease expired' })
  })
})
