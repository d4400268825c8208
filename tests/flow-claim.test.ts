/**
 * The limited claim (issue 12), one rule at a time, on one instance: per-key and
 * kind-wide concurrency, rates, round-robin between keys, jobs without a key,
 * skipping to other keys and kinds, and each way a run ends freeing its slot.
 * The many-claimer and many-instance checks are in flow-concurrency.test.ts.
 */
import { describe, expect, test } from 'bun:test'
import { postOk, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()

async function setLimits(kind: string, body: Record<string, unknown>) {
  const res = await f.call('PUT', `/limits/${encodeURIComponent(kind)}`, body)
  expect(res.status).toBe(200)
}

async function enqueue(kind: string, concurrency_key: string | null, extra: Record<string, unknown> = {}) {
  return postOk(f, '/jobs', { kind, concurrency_key, ...extra })
}

/** Claims up to `max` jobs of the kinds now (no wait); answers the claimed jobs. */
async function claim(kinds: string[], max = 1, worker = 'w1'): Promise<{ job: any; run: any }[]> {
  const res = await f.call('POST', '/claims', { kinds, worker_id: worker, max_jobs: max })
  if (res.status === 204) return []
  expect(res.status).toBe(200)
  return res.body
}

const keysOf = (claimed: { job: any }[]) => claimed.map((c) => c.job.concurrency_key)

describe('max_active_per_key', () => {
  test('never more than the limit of one key runs; other keys go on', async () => {
    const kind = uniqueKind('per-key')
    await setLimits(kind, { max_active_per_key: 2 })
    for (let i = 0; i < 5; i++) await enqueue(kind, 'a')
    for (let i = 0; i < 2; i++) await enqueue(kind, 'b')
    const first = await claim([kind], 10)
    expect(keysOf(first).sort()).toEqual(['a', 'a', 'b', 'b'])
    expect(await claim([kind], 10)).toEqual([])
    // Completing one run of `a` frees one slot of `a`.
    const aRun = first.find((c) => c.job.concurrency_key === 'a')
    await postOk(f, `/runs/${aRun?.run.id}/complete`, { worker_id: 'w1', result: null })
    expect(keysOf(await claim([kind], 10))).toEqual(['a'])
  })
})

test('answers keep the documented job fields: flow_controlled stays inside', async () => {
  const kind = uniqueKind('shape')
  await setLimits(kind, { max_active_per_key: 1 })
  const enqueued = await enqueue(kind, 'k')
  expect(enqueued).not.toHaveProperty('flow_controlled')
  const [claimed] = await claim([kind])
  expect(claimed?.job).not.toHaveProperty('flow_controlled')
  const got = await f.call('GET', `/jobs/${enqueued.id}`)
  expect(got.body).not.toHaveProperty('flow_controlled')
})
