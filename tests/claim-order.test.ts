/** The claim's order rules: priority first, then due time, merged across the kinds asked for. */
import { describe, expect, test } from 'bun:test'
import { enqueueJob, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()

/** Claims up to `max` jobs of `kinds` in one call; answers their ids in answer order. */
async function claimIds(kinds: string[], max: number): Promise<string[]> {
  const res = await f.call('POST', '/claims', { kinds, worker_id: 'order', max_jobs: max })
  expect(res.status).toBe(200)
  return res.body.map((c: { job: { id: string } }) => c.job.id)
}

describe('claim order across kinds', () => {
  test('two kinds merge by priority, then by age, whatever the order of the kinds', async () => {
    const [a, b] = [uniqueKind('order-a'), uniqueKind('order-b')]
    const a1 = await enqueueJob(f, { kind: a })
    const b1 = await enqueueJob(f, { kind: b })
    const a2 = await enqueueJob(f, { kind: a, priority: 5 })
    const b2 = await enqueueJob(f, { kind: b, priority: 9 })
    const a3 = await enqueueJob(f, { kind: a })
    expect(await claimIds([b, a], 10)).toEqual([b2.id, a2.id, a1.id, b1.id, a3.id])
  })

  test('a batch takes the best jobs across kinds, not the first kind first', async () => {
    const [a, b] = [uniqueKind('best-a'), uniqueKind('best-b')]
    for (let i = 0; i < 3; i++) await enqueueJob(f, { kind: a })
    const high = [await enqueueJob(f, { kind: b, priority: 1 }), await enqueueJob(f, { kind: b, priority: 1 })]
    expect(await claimIds([a, b], 2)).toEqual(high.map((j) => j.id))
  })

  test('a single claim over several kinds answers the best one', async () => {
    const [a, b, c] = [uniqueKind('one-a'), uniqueKind('one-b'), uniqueKind('one-c')]
    await enqueueJob(f, { kind: a })
    const best = await enqueueJob(f, { kind: c, priority: 3 })
    await enqueueJob(f, { kind: b, priority: 2 })
    const res = await f.call('POST', '/claim', { kinds: [a, b, c], worker_id: 'order' })
    expect(res.status).toBe(200)
    expect(res.body.job.id).toBe(best.id)
  })
})

describe('due time', () => {
  test('jobs not yet due are passed over, and the due ones behind them are claimed', async () => {
    const kind = uniqueKind('due')
    const later = new Date(Date.now() + 3_600_000).toISOString()
    for (let i = 0; i < 5; i++) await enqueueJob(f, { kind, scheduled_at: later })
    const due = [await enqueueJob(f, { kind }), await enqueueJob(f, { kind })]
    expect(await claimIds([kind], 10)).toEqual(due.map((j) => j.id))
  })

  test('a job scheduled in the past is due since then, ahead of jobs enqueued after that time', async () => {
    const kind = uniqueKind('past')
    const fresh = await enqueueJob(f, { kind })
    const overdue = await enqueueJob(f, { kind, scheduled_at: new Date(Date.now() - 60_000).toISOString() })
    expect(await claimIds([kind], 10)).toEqual([overdue.id, fresh.id])
  })

  test('a retry waits its turn behind jobs that were due before it', async () => {
    const kind = uniqueKind('retry')
    const flaky = await enqueueJob(f, { kind, max_attempts: 2 })
    const [claimed] = await claimIds([kind], 1)
    expect(claimed).toBe(flaky.id)
    const other = await enqueueJob(f, { kind })
    const failed = await f.call('POST', `/jobs/${flaky.id}/fail`, {
      worker_id: 'order',
      retryable: true,
      backoff_seconds: 0,
    })
    expect(failed.body.status).toBe('pending')
    expect(await claimIds([kind], 10)).toEqual([other.id, flaky.id])
  })
})
