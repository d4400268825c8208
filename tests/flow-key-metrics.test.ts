/**
 * foreman_flow_key_pending (issue 12): at each scrape, the pending jobs of the 20
 * keys with the most, over the kinds with limits. Its own fixture: the top 20 is
 * over every kind in the tables, so no other test's jobs may be in them.
 */
import { describe, expect, test } from 'bun:test'
import { holdLock, postOk, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()

const GAUGE = 'foreman_flow_key_pending'
const SAMPLE = new RegExp(`^${GAUGE}\\{kind="((?:[^"\\\\]|\\\\.)*)",key="((?:[^"\\\\]|\\\\.)*)"\\} (\\S+)$`)

/** One scrape's text. */
async function scrape(): Promise<string> {
  const res = await f.app.handle(new Request('http://localhost/foreman/metrics'))
  expect(res.status).toBe(200)
  return res.text()
}

/** Scrapes and answers the gauge's series as { "kind/key": value }. */
async function flowKeys(): Promise<Record<string, number>> {
  const text = await scrape()
  expect(text).toContain('foreman_metrics_table_read_success 1')
  const series: Record<string, number> = {}
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${GAUGE}{`)) continue
    const m = SAMPLE.exec(line)
    if (!m) throw new Error(`unexpected sample: ${line}`)
    series[`${m[1]}/${m[2]}`] = Number(m[3])
  }
  return series
}

async function setLimits(kind: string, body: Record<string, unknown>) {
  expect((await f.call('PUT', `/limits/${encodeURIComponent(kind)}`, body)).status).toBe(200)
}

/** Enqueues `n` jobs of `kind` with `key` (null: none); answers their ids. */
async function enqueue(kind: string, key: string | null, n: number): Promise<string[]> {
  const jobs = Array.from({ length: n }, () => ({ kind, concurrency_key: key }))
  const body = await postOk(f, '/jobs/batch', { jobs })
  return body.jobs.map((j: { job: { id: string } }) => j.job.id)
}

// Two limited kinds whose names sort `a` before `b`, for the tie at the 20th place.
const base = uniqueKind('flowkeys')
const a = `${base}-a`
const b = `${base}-b`
const keyA = (i: number) => `a${String(i).padStart(2, '0')}`

describe(GAUGE, () => {
  let bIds: string[] = []

  test('the 20 keys with the most pending jobs over the kinds with limits; key "" for jobs without one', async () => {
    await setLimits(a, { max_active_per_key: 1 })
    await setLimits(b, { max_active_per_key: 1 })
    // Kind a: keys a01…a21 with 1…21 pending jobs, and 25 jobs without a key.
    for (let i = 1; i <= 21; i++) await enqueue(a, keyA(i), i)
    await enqueue(a, null, 25)
    // Kind b: 30 jobs of one key, and 4 of another, tied with a04 for the 20th place.
    bIds = await enqueue(b, 'big', 30)
    await enqueue(b, 'b2', 4)
    // A kind without limits, and one whose limits were removed: never shown, however deep.
    await enqueue(uniqueKind('flowkeys-plain'), 'deep', 40)
    const lifted = uniqueKind('flowkeys-lifted')
    await setLimits(lifted, { max_active: 1 })
    await enqueue(lifted, 'deep', 40)
    expect((await f.call('DELETE', `/limits/${lifted}`)).status).toBe(200)

    const expected: Record<string, number> = { [`${b}/big`]: 30, [`${a}/`]: 25 }
    // a21…a04 make 18 more; a04 wins the tie with b's b2 (4) by kind.
    for (let i = 21; i >= 4; i--) expected[`${a}/${keyA(i)}`] = i
    expect(await flowKeys()).toEqual(expected)
  })

  test('a key that drains drops out at the next scrape, and the next largest comes in', async () => {
    const res = await f.call('POST', '/jobs/bulk', { action: 'cancel', ids: bIds })
    expect(res.status).toBe(200)
    const series = await flowKeys()
    expect(series).not.toHaveProperty(`${b}/big`)
    expect(series[`${b}/b2`]).toBe(4)
    expect(series[`${a}/${keyA(4)}`]).toBe(4)
    expect(Object.keys(series)).toHaveLength(20)
  })

  test('claimed jobs are no longer pending', async () => {
    const res = await f.call('POST', '/claims', { kinds: [a], worker_id: 'w1', max_jobs: 100 })
    expect(res.status).toBe(200)
    // One job of each of a's 22 keys: each listed key of a shows one fewer.
    const series = await flowKeys()
    expect(series[`${a}/`]).toBe(24)
    expect(series[`${a}/${keyA(21)}`]).toBe(20)
  })

  test('a read that runs out of time costs this gauge alone', async () => {
    // A lock on the limits table holds the read past the scrape's statement timeout.
    const release = await lockTable(f.tables.limits)
    try {
      const text = await scrape()
      expect(text).toContain('foreman_metrics_table_read_success 1')
      expect(text).toContain(`foreman_queue_depth{kind="${a}",queue="default"}`)
      expect(text).not.toContain(`${GAUGE}{`)
    } finally {
      await release()
    }
    expect(Object.keys(await flowKeys())).toHaveLength(20)
  })
})

/** Holds an exclusive lock on `table` until the returned function is called. */
const lockTable = (table: string) => holdLock(f, (tx) => tx`lock table ${tx(table)} in access exclusive mode`)
