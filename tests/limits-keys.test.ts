/**
 * GET /limits/:kind shows where a limited kind stands (issue 12): its running and
 * pending jobs and rate window, kind-wide and per busy key, the busiest keys
 * first, at most `keys_limit` of them.
 */
import { describe, expect, test } from 'bun:test'
import { ForemanClient } from '../src/client'
import { postOk, secondsUntil, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()
const foreman = new ForemanClient({ baseUrl: f.serve() })

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

async function setLimits(kind: string, body: Record<string, unknown>) {
  const res = await f.call('PUT', `/limits/${encodeURIComponent(kind)}`, body)
  expect(res.status).toBe(200)
}

/** Enqueues one job of `kind` per entry of `keys` (null: no key), in one batch; answers the jobs. */
async function enqueue(kind: string, keys: (string | null)[]): Promise<{ id: string }[]> {
  const body = await postOk(f, '/jobs/batch', { jobs: keys.map((concurrency_key) => ({ kind, concurrency_key })) })
  return body.jobs.map((j: { job: { id: string } }) => j.job)
}

const times = (n: number, key: string | null) => Array.from({ length: n }, () => key)

/** Claims up to `max` jobs of `kind` now; answers them. */
async function claim(kind: string, max: number): Promise<{ job: any; run: any }[]> {
  const res = await f.call('POST', '/claims', { kinds: [kind], worker_id: 'w1', max_jobs: max })
  if (res.status === 204) return []
  expect(res.status).toBe(200)
  return res.body
}

/** GET /limits/:kind (200 expected). */
async function detail(kind: string, query = '') {
  const res = await f.call('GET', `/limits/${encodeURIComponent(kind)}${query}`)
  expect(res.status).toBe(200)
  return res.body
}

/** Each listed key as [key, active, pending], in the answer's order. */
const counts = (d: { keys: { key: string | null; active: number; pending: number }[] }) =>
  d.keys.map((k) => [k.key, k.active, k.pending])

describe('counts per key', () => {
  test('running and pending jobs per key, busiest first; jobs without a key are key null', async () => {
    const kind = uniqueKind('keys-counts')
    await setLimits(kind, { max_active_per_key: 2 })
    await enqueue(kind, [...times(5, 'a'), 'b', ...times(3, 'c'), null, null])
    expect(await claim(kind, 10)).toHaveLength(7)
    await enqueue(kind, ['d', 'e', 'f'])
    const d = await detail(kind)
    // active first, then pending, both most first; d, e and f were never served.
    expect(counts(d)).toEqual([
      ['a', 2, 3],
      ['c', 2, 1],
      [null, 2, 0],
      ['b', 1, 0],
      ['d', 0, 1],
      ['e', 0, 1],
      ['f', 0, 1],
    ])
    expect(d).toMatchObject({ active: 7, pending: 7, rate_window: null, keys_more: false })
    // A shorter list is the head of the same order: b (running) before d, e, f (waiting).
    expect(counts(await detail(kind, '?keys_limit=4'))).toEqual(counts(d).slice(0, 4))
    for (const k of d.keys.slice(0, 4))
      expect(k).toMatchObject({ rate_window: null, last_served_at: expect.stringMatching(ISO) })
    for (const k of d.keys.slice(4)) expect(k.last_served_at).toBeNull()
  })

  test('a run that ends moves its key: a drained key leaves the list', async () => {
    const kind = uniqueKind('keys-drain')
    await setLimits(kind, { max_active_per_key: 1 })
    await enqueue(kind, ['a', 'a', 'b'])
    const running = await claim(kind, 10)
    expect(counts(await detail(kind))).toEqual([
      ['a', 1, 1],
      ['b', 1, 0],
    ])
    const b = running.find((c) => c.job.concurrency_key === 'b')
    await postOk(f, `/runs/${b?.run.id}/complete`, { worker_id: 'w1', result: null })
    const d = await detail(kind)
    expect(counts(d)).toEqual([['a', 1, 1]])
    expect([d.active, d.pending]).toEqual([1, 1])
  })

  test('the counts are of this kind only', async () => {
    const kind = uniqueKind('keys-mine')
    const other = uniqueKind('keys-other')
    await setLimits(kind, { max_active: 5 })
    await setLimits(other, { max_active: 5 })
    await enqueue(kind, ['shared'])
    await enqueue(other, ['shared', 'shared', 'x'])
    const d = await detail(kind)
    expect(counts(d)).toEqual([['shared', 0, 1]])
    expect([d.active, d.pending]).toEqual([0, 1])
  })
})

describe('rate windows', () => {
  test('claims in the window, and when full, opens_at: the oldest claim it counts plus the window', async () => {
    const kind = uniqueKind('keys-rate')
    await setLimits(kind, { rate: { limit: 3, per_seconds: 60 }, rate_per_key: { limit: 2, per_seconds: 60 } })
    await enqueue(kind, ['x', 'x', 'x', 'y'])
    expect(await claim(kind, 10)).toHaveLength(3)
    const d = await detail(kind)
    // What the claim stored: x's two claim times, the kind's three.
    const [x] = await f.sql<{ opens: string }[]>`
      select recent_claims[2] + interval '60 seconds' as opens from ${f.sql(f.tables.flowSlots)}
      where kind = ${kind} and key = 'x'`
    const [k] = await f.sql<{ opens: string }[]>`
      select recent_claims[3] + interval '60 seconds' as opens from ${f.sql(f.tables.limits)} where kind = ${kind}`
    expect(d.rate_window).toEqual({ claims: 3, per_seconds: 60, opens_at: k?.opens })
    expect(counts(d)).toEqual([
      ['x', 2, 1],
      ['y', 1, 0],
    ])
    expect(d.keys[0].rate_window).toEqual({ claims: 2, per_seconds: 60, opens_at: x?.opens })
    expect(d.keys[1].rate_window).toEqual({ claims: 1, per_seconds: 60, opens_at: null })
    expect(secondsUntil(d.keys[0].rate_window.opens_at)).toBeWithin(50, 61)
  })

  test('only claims inside the window count, and the limit-th newest decides when it opens', async () => {
    const kind = uniqueKind('keys-window')
    await setLimits(kind, { rate: { limit: 2, per_seconds: 60 }, rate_per_key: { limit: 2, per_seconds: 60 } })
    await enqueue(kind, ['full', 'open'])
    const ago = (s: number) => new Date(Date.now() - s * 1000)
    const full = [ago(10), ago(30), ago(90)]
    const open = [ago(10), ago(90)]
    const stamps = (ds: Date[]) => `{${ds.map((d) => d.toISOString()).join(',')}}`
    await f.sql`update ${f.sql(f.tables.flowSlots)} set recent_claims = ${stamps(full)}::timestamptz[]
      where kind = ${kind} and key = 'full'`
    await f.sql`update ${f.sql(f.tables.flowSlots)} set recent_claims = ${stamps(open)}::timestamptz[]
      where kind = ${kind} and key = 'open'`
    await f.sql`update ${f.sql(f.tables.limits)} set recent_claims = ${stamps(full)}::timestamptz[] where kind = ${kind}`
    const d = await detail(kind)
    const opensAt = new Date(full[1]!.getTime() + 60_000).toISOString()
    expect(d.rate_window).toEqual({ claims: 2, per_seconds: 60, opens_at: opensAt })
    const windows = Object.fromEntries(d.keys.map((k: { key: string; rate_window: unknown }) => [k.key, k.rate_window]))
    expect(windows).toEqual({
      full: { claims: 2, per_seconds: 60, opens_at: opensAt },
      open: { claims: 1, per_seconds: 60, opens_at: null },
    })
  })
})

describe('keys_limit', () => {
  test('lists the busiest that many, and keys_more says whether it left some out', async () => {
    const kind = uniqueKind('keys-limit')
    await setLimits(kind, { max_active_per_key: 1 })
    await enqueue(kind, ['k1', 'k1', 'k1', 'k1', 'k2', 'k2', 'k2', 'k3', 'k3', 'k4'])
    const two = await detail(kind, '?keys_limit=2')
    expect(counts(two)).toEqual([
      ['k1', 0, 4],
      ['k2', 0, 3],
    ])
    expect(two.keys_more).toBe(true)
    // The kind-wide counts cover every key, listed or not.
    expect([two.active, two.pending]).toEqual([0, 10])
    expect((await detail(kind, '?keys_limit=3')).keys_more).toBe(true)
    const all = await detail(kind, '?keys_limit=4')
    expect([all.keys.length, all.keys_more]).toEqual([4, false])
    expect((await detail(kind, '?keys_limit=200')).keys).toEqual(all.keys)
  })

  test('20 by default; equal counts go by key', async () => {
    const kind = uniqueKind('keys-default')
    await setLimits(kind, { max_active_per_key: 1 })
    const keys = Array.from({ length: 22 }, (_, i) => `k${String(i).padStart(2, '0')}`)
    await enqueue(kind, [...keys].reverse())
    const d = await detail(kind)
    expect(d.keys.map((k: { key: string }) => k.key)).toEqual(keys.slice(0, 20))
    expect(d.keys_more).toBe(true)
  })

  for (const bad of ['0', '201', '-1', 'abc', '1.5']) {
    test(`keys_limit=${bad} is a 400 naming keys_limit`, async () => {
      const kind = uniqueKind('keys-bad')
      await setLimits(kind, { max_active: 1 })
      const res = await f.call('GET', `/limits/${kind}?keys_limit=${bad}`)
      expect([res.status, res.body.field]).toEqual([400, 'keys_limit'])
      expect(res.body.error).toStartWith('keys_limit: ')
    })
  }
})

test('client.limits.get passes keys_limit and answers the counts', async () => {
  const kind = uniqueKind('keys-client')
  await foreman.limits.set(kind, { max_active_per_key: 1 })
  await enqueue(kind, ['a', 'b', 'b'])
  const d = await foreman.limits.get(kind, { keys_limit: 1 })
  expect(d).toMatchObject({ kind, active: 0, pending: 3, keys_more: true })
  expect(d.keys).toEqual([{ key: 'b', active: 0, pending: 2, rate_window: null, last_served_at: null }])
})
