/**
 * The limited claim (issue 12), one rule at a time, on one instance: per-key and
 * kind-wide concurrency, rates, round-robin between keys, jobs without a key,
 * skipping to other keys and kinds, and each way a run ends freeing its slot.
 * The many-claimer and many-instance checks are in flow-concurrency.test.ts.
 */
import { describe, expect, test } from 'bun:test'
import { markStragglers } from '../src/limits/stragglers-sql'
import { reapExpiredLeases } from '../src/sweeps/reaper'
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

/** The job rows of a kind that are active now, by key. */
async function activeByKey(kind: string): Promise<Record<string, number>> {
  const rows = await f.sql<{ key: string | null; n: number }[]>`
    select concurrency_key as key, count(*)::int as n from ${f.sql(f.tables.jobs)}
    where kind = ${kind} and status = 'active' group by 1`
  return Object.fromEntries(rows.map((r) => [r.key ?? '(none)', r.n]))
}

describe('each way a run ends frees its slot', () => {
  async function oneRunning(label: string) {
    const kind = uniqueKind(label)
    await setLimits(kind, { max_active_per_key: 1 })
    await enqueue(kind, 'k', { max_attempts: 1 })
    await enqueue(kind, 'k')
    const [running] = await claim([kind], 5)
    expect(await claim([kind], 5)).toEqual([])
    return { kind, running: running as { job: any; run: any } }
  }

  test('a fail', async () => {
    const { kind, running } = await oneRunning('free-fail')
    await postOk(f, `/runs/${running.run.id}/fail`, { worker_id: 'w1', error: 'boom' })
    expect(keysOf(await claim([kind], 5))).toEqual(['k'])
  })

  test('a cancel (the run ends when the worker sees it)', async () => {
    const { kind, running } = await oneRunning('free-cancel')
    await postOk(f, `/jobs/${running.job.id}/cancel`, {})
    // Cancel of a running job is a request; the worker's next heartbeat or report ends it.
    expect(await claim([kind], 5)).toEqual([])
    const res = await f.call('POST', `/runs/${running.run.id}/fail`, { worker_id: 'w1', error: 'cancelled' })
    expect(res.status).toBeLessThan(300)
    expect(keysOf(await claim([kind], 5))).toEqual(['k'])
  })

  test('a cancel of a pending job frees nothing and takes nothing', async () => {
    const kind = uniqueKind('cancel-pending')
    await setLimits(kind, { max_active_per_key: 1 })
    const waiting = await enqueue(kind, 'k')
    await postOk(f, `/jobs/${waiting.id}/cancel`, {})
    expect(await claim([kind], 5)).toEqual([])
    // The key had nothing left: its slot row went with the claim that found it empty.
    const [slots] = await f.sql`select count(*)::int as n from ${f.sql(f.tables.flowSlots)} where kind = ${kind}`
    expect(slots?.n).toBe(0)
  })

  test('a lost lease (the reaper)', async () => {
    const { kind, running } = await oneRunning('free-reaper')
    await f.sql`update ${f.sql(f.tables.runs)} set lease_expires_at = now() - interval '1 second' where id = ${running.run.id}`
    await reapExpiredLeases(f.deps)
    const next = await claim([kind], 5)
    expect(keysOf(next)).toEqual(['k'])
    expect(await activeByKey(kind)).toEqual({ k: 1 })
  })
})

describe('limits change at the next claim', () => {
  test('a lowered limit lets none start until the running ones are below it', async () => {
    const kind = uniqueKind('lowered')
    await setLimits(kind, { max_active_per_key: 3 })
    for (let i = 0; i < 6; i++) await enqueue(kind, 'k')
    const running = await claim([kind], 10)
    expect(running).toHaveLength(3)
    await setLimits(kind, { max_active_per_key: 1 })
    for (const [i, c] of running.entries()) {
      expect(await claim([kind], 10)).toEqual([])
      await postOk(f, `/runs/${c.run.id}/complete`, { worker_id: 'w1', result: i })
    }
    expect(await claim([kind], 10)).toHaveLength(1)
  })

  test('limits set on a kind with jobs already pending and running apply to them', async () => {
    const kind = uniqueKind('late-limits')
    for (let i = 0; i < 4; i++) await enqueue(kind, 'k')
    const [early] = await claim([kind], 1)
    await setLimits(kind, { max_active_per_key: 2 })
    expect(await claim([kind], 10)).toHaveLength(1)
    expect(await activeByKey(kind)).toEqual({ k: 2 })
    await postOk(f, `/runs/${early?.run.id}/complete`, { worker_id: 'w1', result: null })
    expect(await claim([kind], 10)).toHaveLength(1)
  })

  test('deleted limits hand the kind back to the plain claim', async () => {
    const kind = uniqueKind('unlimited-again')
    await setLimits(kind, { max_active_per_key: 1 })
    for (let i = 0; i < 3; i++) await enqueue(kind, 'k')
    expect(await claim([kind], 10)).toHaveLength(1)
    expect((await f.call('DELETE', `/limits/${kind}`)).status).toBe(200)
    expect(await claim([kind], 10)).toHaveLength(2)
  })
})

describe('kind-wide limits and jobs without a key', () => {
  test('max_active counts every running job of the kind, keyed or not', async () => {
    const kind = uniqueKind('kind-max')
    await setLimits(kind, { max_active: 3 })
    for (const key of ['a', 'a', 'b', null, null]) await enqueue(kind, key)
    expect(await claim([kind], 10)).toHaveLength(3)
    expect(await claim([kind], 10)).toEqual([])
  })

  test('jobs without a key share one slot group under per-key limits', async () => {
    const kind = uniqueKind('no-key')
    await setLimits(kind, { max_active_per_key: 2 })
    for (let i = 0; i < 4; i++) await enqueue(kind, null)
    await enqueue(kind, 'a')
    const claimed = await claim([kind], 10)
    expect(keysOf(claimed).sort()).toEqual(['a', null, null].sort())
  })

  test('a full limited kind does not stop a claim of several kinds taking the others', async () => {
    const limited = uniqueKind('full')
    const free = uniqueKind('free')
    await setLimits(limited, { max_active: 1 })
    await enqueue(limited, null)
    await enqueue(limited, null)
    await enqueue(free, null)
    const claimed = await claim([limited, free], 10)
    expect(claimed.map((c) => c.job.kind).sort()).toEqual([free, limited].sort())
  })

  test('max_active 0 holds the kind', async () => {
    const kind = uniqueKind('held')
    await setLimits(kind, { max_active: 0 })
    await enqueue(kind, 'a')
    expect(await claim([kind], 10)).toEqual([])
  })
})

describe('rates', () => {
  test('rate_per_key: at most `limit` claims of a key in the window; other keys go on', async () => {
    const kind = uniqueKind('rate-key')
    await setLimits(kind, { rate_per_key: { limit: 2, per_seconds: 60 } })
    for (let i = 0; i < 4; i++) await enqueue(kind, 'a')
    await enqueue(kind, 'b')
    const claimed = await claim([kind], 10)
    expect(keysOf(claimed).sort()).toEqual(['a', 'a', 'b'])
    // Completing frees nothing: the window still holds two claims of a.
    for (const c of claimed) await postOk(f, `/runs/${c.run.id}/complete`, { worker_id: 'w1', result: null })
    expect(await claim([kind], 10)).toEqual([])
  })

  test('a kind-wide rate opens again when its window has passed', async () => {
    const kind = uniqueKind('rate-kind')
    await setLimits(kind, { rate: { limit: 2, per_seconds: 1 } })
    for (let i = 0; i < 3; i++) await enqueue(kind, `k${i}`)
    expect(await claim([kind], 10)).toHaveLength(2)
    expect(await claim([kind], 10)).toEqual([])
    await Bun.sleep(1100)
    expect(await claim([kind], 10)).toHaveLength(1)
  })

  test('a long-poll held back by a rate wakes when the window opens', async () => {
    const kind = uniqueKind('rate-wait')
    await setLimits(kind, { rate_per_key: { limit: 1, per_seconds: 1 } })
    await enqueue(kind, 'a')
    await enqueue(kind, 'a')
    expect(await claim([kind], 10)).toHaveLength(1)
    const started = performance.now()
    const res = await f.call('POST', '/claim', { kinds: [kind], worker_id: 'w2', wait_seconds: 5 })
    expect(res.status).toBe(200)
    // It did wait for the window, and did not sleep to its deadline.
    const waited = performance.now() - started
    expect(waited).toBeGreaterThan(300)
    expect(waited).toBeLessThan(4500)
  })
})

describe('round-robin between keys', () => {
  test('keys are served least recently served first, one job per key per round', async () => {
    const kind = uniqueKind('rr')
    await setLimits(kind, { max_active_per_key: 100 })
    for (let i = 0; i < 6; i++) await enqueue(kind, 'big')
    await enqueue(kind, 'x')
    await enqueue(kind, 'y')
    const order: string[] = []
    for (let i = 0; i < 5; i++) order.push(...keysOf(await claim([kind], 1)))
    // big enqueued first, so served first; then x and y before big's second job.
    expect(order.slice(0, 3).sort()).toEqual(['big', 'x', 'y'])
    expect(order.slice(3)).toEqual(['big', 'big'])
  })

  test('priority orders the jobs within a key', async () => {
    const kind = uniqueKind('prio')
    await setLimits(kind, { max_active_per_key: 1 })
    await enqueue(kind, 'k', { priority: 0 })
    const urgent = await enqueue(kind, 'k', { priority: 10 })
    const [first] = await claim([kind], 1)
    expect(first?.job.id).toBe(urgent.id)
  })
})

describe('other paths that make a job pending or claim it', () => {
  test('a retried job of a key whose slot row is gone is claimable again', async () => {
    const kind = uniqueKind('retry')
    await setLimits(kind, { max_active_per_key: 1 })
    await enqueue(kind, 'k', { max_attempts: 1 })
    const [c] = await claim([kind])
    await postOk(f, `/runs/${c?.run.id}/fail`, { worker_id: 'w1', error: 'x' })
    expect(await claim([kind])).toEqual([]) // the key is empty now: its row goes
    await postOk(f, `/jobs/${c?.job.id}/retry`, {})
    expect((await claim([kind]))[0]?.job.id).toBe(c?.job.id)
  })

  test('batch enqueue and the hand-off (complete + claim) go through the limits', async () => {
    const kind = uniqueKind('handoff')
    await setLimits(kind, { max_active_per_key: 1 })
    await postOk(f, '/jobs/batch', { jobs: [1, 2, 3].map(() => ({ kind, concurrency_key: 'k' })) })
    const [first] = await claim([kind], 3)
    const res = await f.call('POST', '/runs/complete', {
      worker_id: 'w1',
      runs: [{ run_id: first?.run.id, result: null }],
      claim: { kinds: [kind], max_jobs: 3 },
    })
    expect(res.status).toBe(200)
    expect(res.body.claimed).toHaveLength(1)
    expect(await activeByKey(kind)).toEqual({ k: 1 })
  })

  test('a paused queue is skipped by the limited claim too', async () => {
    const kind = uniqueKind('paused')
    const queue = uniqueKind('q')
    await setLimits(kind, { max_active_per_key: 5 })
    await enqueue(kind, 'k', { queue })
    await postOk(f, `/queues/${queue}/pause`, {})
    expect(await claim([kind])).toEqual([])
    await postOk(f, `/queues/${queue}/resume`, {})
    expect(await claim([kind])).toHaveLength(1)
  })

  test('throttled claims are counted by reason', async () => {
    const kind = uniqueKind('counted')
    await setLimits(kind, { max_active_per_key: 1 })
    await enqueue(kind, 'k')
    await enqueue(kind, 'k')
    await claim([kind])
    await claim([kind])
    const text = await (await f.app.handle(new Request('http://localhost/foreman/metrics'))).text()
    expect(text).toContain(`foreman_jobs_throttled_total{kind="${kind}",reason="max_active_per_key"} 1`)
  })
})

describe('a job enqueued unmarked as its kind gains limits', () => {
  test('waits, never claimed past the limit, until the reaper tick marks it', async () => {
    const kind = uniqueKind('straggler')
    await setLimits(kind, { max_active_per_key: 1 })
    // As an instance that had not yet heard of the limits would store it.
    await f.sql`insert into ${f.sql(f.tables.jobs)} (id, kind, concurrency_key, updated_at)
                values (${`job_straggler_${kind}`}, ${kind}, 'k', now())`
    expect(await claim([kind])).toEqual([])
    expect(await markStragglers(f.sql, f.tables)).toBe(1)
    expect((await claim([kind]))[0]?.job.id).toBe(`job_straggler_${kind}`)
    expect(await markStragglers(f.sql, f.tables)).toBe(0)
  })

  test('kinds whose limits are older than the window are not read', async () => {
    const kind = uniqueKind('old-limits')
    await setLimits(kind, { max_active_per_key: 1 })
    await f.sql`update ${f.sql(f.tables.limits)} set created_at = now() - interval '1 hour' where kind = ${kind}`
    await f.sql`insert into ${f.sql(f.tables.jobs)} (id, kind, updated_at) values (${`job_old_${kind}`}, ${kind}, now())`
    expect(await markStragglers(f.sql, f.tables)).toBe(0)
  })
})
