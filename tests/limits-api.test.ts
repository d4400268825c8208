/**
 * The limits API (issue 12): PUT is a full replace that answers the stored
 * limits, GET reads one kind or all by kind, DELETE removes them; bad input is a
 * 400 naming the field and nothing is stored. Only the storage: the claim's
 * enforcement is tested on its own.
 */
import { describe, expect, test } from 'bun:test'
import { ForemanClient, ForemanError, type Limits, type LimitsDetail } from '../src/client'
import { uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()
const foreman = new ForemanClient({ baseUrl: f.serve() })

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/

const put = (kind: string, body: unknown) => f.call('PUT', `/limits/${encodeURIComponent(kind)}`, body)
const get = (kind: string) => f.call('GET', `/limits/${encodeURIComponent(kind)}`)

/** Sets limits (200 expected) and answers them. */
async function setLimits(kind: string, body: Record<string, unknown>) {
  const res = await put(kind, body)
  expect(res.status).toBe(200)
  return res.body
}

/** What GET answers for stored `limits` while the kind has no jobs: the limits, zero counts, empty windows. */
function idle(limits: Limits): LimitsDetail {
  const window = (rate: Limits['rate']) => rate && { claims: 0, per_seconds: rate.per_seconds, opens_at: null }
  return { ...limits, active: 0, pending: 0, rate_window: window(limits.rate), keys: [], keys_more: false }
}

/** The stored row of a kind, straight from the table (to check a refusal stored nothing). */
const storedRow = async (kind: string) =>
  (await f.sql`select * from ${f.sql(f.tables.limits)} where kind = ${kind}`)[0] ?? null

describe('PUT /limits/:kind', () => {
  test('stores every sort of limit and answers them with updated_at', async () => {
    const kind = uniqueKind('lim-all')
    const body = {
      max_active: 10,
      max_active_per_key: 2,
      rate: { limit: 100, per_seconds: 60 },
      rate_per_key: { limit: 5, per_seconds: 1 },
    }
    const limits = await setLimits(kind, body)
    expect(limits).toEqual({ kind, ...body, updated_at: expect.stringMatching(ISO) })
    expect((await get(kind)).body).toEqual(idle(limits))
    expect(await storedRow(kind)).toMatchObject({
      max_active: 10,
      max_active_per_key: 2,
      rate_limit: 100,
      rate_seconds: 60,
      rate_per_key_limit: 5,
      rate_per_key_seconds: 1,
    })
  })

  test('a field left out is no limit, answered as null', async () => {
    const kind = uniqueKind('lim-one')
    expect(await setLimits(kind, { max_active_per_key: 0 })).toMatchObject({
      kind,
      max_active: null,
      max_active_per_key: 0,
      rate: null,
      rate_per_key: null,
    })
  })

  test('is a full replace: limits the new body leaves out are gone', async () => {
    const kind = uniqueKind('lim-replace')
    const first = await setLimits(kind, { max_active: 3, rate: { limit: 10, per_seconds: 5 } })
    const second = await setLimits(kind, { rate_per_key: { limit: 1, per_seconds: 86_400 } })
    expect(second).toMatchObject({
      max_active: null,
      max_active_per_key: null,
      rate: null,
      rate_per_key: { limit: 1, per_seconds: 86_400 },
    })
    expect(Date.parse(second.updated_at)).toBeGreaterThanOrEqual(Date.parse(first.updated_at))
    expect((await get(kind)).body).toEqual(idle(second))
  })

  const refusals: [string, unknown, string][] = [
    ['an empty body', {}, 'body'],
    ['a negative max_active', { max_active: -1 }, 'max_active'],
    ['a fractional max_active_per_key', { max_active_per_key: 1.5 }, 'max_active_per_key'],
    ['a numeric string', { max_active: '5' }, 'max_active'],
    ['a rate limit of 0', { rate: { limit: 0, per_seconds: 1 } }, 'rate.limit'],
    ['a rate window of 0 seconds', { rate: { limit: 1, per_seconds: 0 } }, 'rate.per_seconds'],
    ['a rate window over a day', { rate_per_key: { limit: 1, per_seconds: 86_401 } }, 'rate_per_key.per_seconds'],
    ['a rate without its window', { rate_per_key: { limit: 1 } }, 'rate_per_key.per_seconds'],
    ['a rate that is a number', { rate: 100 }, 'rate'],
    ['a rate that is null', { rate: null }, 'rate'],
    ['null for a limit', { max_active: null }, 'max_active'],
    ['a body that is an array', [], 'body'],
    ['an unknown field', { max_actve: 2 }, 'max_actve'],
    ['an unknown field beside good ones', { max_active: 2, burst: 3 }, 'burst'],
    ['an unknown field in a rate', { rate: { limit: 1, per_seconds: 1, burst: 2 } }, 'rate.burst'],
  ]
  for (const [label, body, field] of refusals) {
    test(`${label} is a 400 naming ${field}, and nothing is stored or changed`, async () => {
      const kind = uniqueKind('lim-bad')
      const res = await put(kind, body)
      expect(res.status).toBe(400)
      expect(res.body.field).toBe(field)
      expect(res.body.error).toStartWith(`${field}: `)
      expect(await storedRow(kind)).toBeNull()
      // A refused replace leaves the stored limits as they were.
      const stored = await setLimits(kind, { max_active: 7 })
      expect((await put(kind, body)).status).toBe(400)
      expect((await get(kind)).body).toEqual(idle(stored))
    })
  }

  test('an empty body names what it needs', async () => {
    const res = await put(uniqueKind('lim-empty'), {})
    expect(res.body.error).toContain('max_active, max_active_per_key, rate, rate_per_key')
  })

  test('a kind that is empty or over 200 characters is a 400 naming kind', async () => {
    const res = await put('k'.repeat(201), { max_active: 1 })
    expect([res.status, res.body.field]).toEqual([400, 'kind'])
  })
})

describe('GET and DELETE /limits', () => {
  test('GET /limits/:kind is a 404 when the kind has no limits', async () => {
    const res = await get(uniqueKind('lim-none'))
    expect(res.status).toBe(404)
    expect(res.body.error).toContain('has no limits')
  })

  test('GET /limits lists every kind with limits, by kind', async () => {
    const base = uniqueKind('lim-list')
    const kinds = [`${base}-b`, `${base}-a`, `${base}-c`]
    for (const [i, kind] of kinds.entries()) await setLimits(kind, { max_active: i })
    const res = await f.call('GET', '/limits')
    expect(res.status).toBe(200)
    const mine = res.body.filter((l: { kind: string }) => l.kind.startsWith(base))
    expect(mine.map((l: { kind: string }) => l.kind)).toEqual([...kinds].sort())
    const all = res.body.map((l: { kind: string }) => l.kind)
    expect(all).toEqual([...all].sort())
  })

  test('DELETE answers {kind}, the limits are gone, and a second DELETE is a 404', async () => {
    const kind = uniqueKind('lim-delete')
    await setLimits(kind, { max_active: 1 })
    const res = await f.call('DELETE', `/limits/${kind}`)
    expect([res.status, res.body]).toEqual([200, { kind }])
    expect((await get(kind)).status).toBe(404)
    expect(await storedRow(kind)).toBeNull()
    expect((await f.call('DELETE', `/limits/${kind}`)).status).toBe(404)
  })

  test('a kind with characters that need encoding round-trips through the path', async () => {
    const kind = `${uniqueKind('lim enc')}/tenant?x=1`
    await setLimits(kind, { max_active: 4 })
    expect((await get(kind)).body).toMatchObject({ kind, max_active: 4 })
    expect((await f.call('DELETE', `/limits/${encodeURIComponent(kind)}`)).body).toEqual({ kind })
  })
})

describe('client.limits', () => {
  test('set, get, list and delete', async () => {
    const kind = uniqueKind('lim-client')
    const set = await foreman.limits.set(kind, { max_active_per_key: 2, rate: { limit: 100, per_seconds: 60 } })
    expect(set).toMatchObject({ kind, max_active: null, max_active_per_key: 2, rate: { limit: 100, per_seconds: 60 } })
    expect(await foreman.limits.get(kind)).toEqual(idle(set))
    expect((await foreman.limits.list()).find((l) => l.kind === kind)).toEqual(set)
    expect(await foreman.limits.delete(kind)).toEqual({ kind })
    const missing = await foreman.limits.get(kind).catch((e) => e)
    expect(missing).toBeInstanceOf(ForemanError)
    expect(missing.status).toBe(404)
  })

  test('a refused body throws a ForemanError 400 naming the field', async () => {
    const error = await foreman.limits.set(uniqueKind('lim-client-bad'), { max_active: -1 }).catch((e) => e)
    expect(error).toBeInstanceOf(ForemanError)
    expect(error.status).toBe(400)
    expect(error.message).toContain('max_active')
  })

  test('enqueue carries concurrency_key, and the answer has it', async () => {
    const { job } = await foreman.enqueue({ kind: uniqueKind('lim-client-ck'), concurrency_key: 'tenant-9' })
    expect(job.concurrency_key).toBe('tenant-9')
    const [many] = await foreman.enqueueMany([{ kind: uniqueKind('lim-client-ck'), concurrency_key: 'tenant-10' }])
    expect(many?.job.concurrency_key).toBe('tenant-10')
  })
})
