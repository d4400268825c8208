/**
 * GET /stats: per minute and kind, enqueued, succeeded, failed (for good) and
 * retried (a failed or abandoned run whose job went back to pending), each in the
 * minute it happened.
 */
import { expect, test } from 'bun:test'
import { runAbandonExpired } from '../src/runs/sql/reaper'
import { claimOne, postOk, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()

/** The start of a timestamp's minute, as the API writes it. */
const minuteOf = (stamp: string) => `${stamp.slice(0, 16)}:00.000Z`

type Row = { minute: string; kind: string; enqueued: number; succeeded: number; failed: number; retried: number }

/** Expected rows from events: one count per (minute, what). */
function expectedRows(kind: string, events: [string, keyof Omit<Row, 'minute' | 'kind'>][]): Row[] {
  const rows = new Map<string, Row>()
  for (const [stamp, what] of events) {
    const minute = minuteOf(stamp)
    const row = rows.get(minute) ?? { minute, kind, enqueued: 0, succeeded: 0, failed: 0, retried: 0 }
    row[what]++
    rows.set(minute, row)
  }
  return [...rows.values()].sort((a, b) => (a.minute < b.minute ? -1 : 1))
}

test('a scripted sequence is counted in the minutes it happened: enqueue, succeed, fail with a retry, fail for good', async () => {
  const kind = uniqueKind('stats')
  // Priorities set the order claims take them in.
  const twice = await postOk(f, '/jobs', { kind, max_attempts: 2, priority: 3 })
  const once = await postOk(f, '/jobs', { kind, priority: 2 })
  const doomed = await postOk(f, '/jobs', { kind, priority: 1 })
  const waiting = await postOk(f, '/jobs', { kind })

  const b = await claimOne(f, kind, 'w-stats')
  expect(b.job.id).toBe(twice.id)
  await postOk(f, `/runs/${b.run.id}/fail`, { worker_id: 'w-stats', retryable: true, backoff_seconds: 0 })
  const c = await claimOne(f, kind, 'w-stats')
  expect(c.job.id).toBe(twice.id)
  const failedAfterRetry = await postOk(f, `/runs/${c.run.id}/fail`, { worker_id: 'w-stats', retryable: true })
  expect(failedAfterRetry.status).toBe('failed')
  const a = await claimOne(f, kind, 'w-stats')
  expect(a.job.id).toBe(once.id)
  const succeeded = await postOk(f, `/runs/${a.run.id}/complete`, { worker_id: 'w-stats' })
  const d = await claimOne(f, kind, 'w-stats')
  expect(d.job.id).toBe(doomed.id)
  const failed = await postOk(f, `/runs/${d.run.id}/fail`, { worker_id: 'w-stats', error: 'no' })
  const retriedRun = (await f.call('GET', `/runs/${b.run.id}`)).body

  const res = await f.call('GET', '/stats')
  expect(res.status).toBe(200)
  expect(res.body.bucket_seconds).toBe(60)
  expect(Date.parse(res.body.to) - Date.parse(res.body.from)).toBeGreaterThanOrEqual(3_600_000)
  expect(Date.parse(res.body.to) - Date.parse(res.body.from)).toBeLessThan(3_660_000)
  expect(res.body.from).toBe(minuteOf(res.body.from))
  const rows = (res.body.rows as Row[]).filter((r) => r.kind === kind)
  expect(rows).toEqual(
    expectedRows(kind, [
      ...[once, twice, doomed, waiting].map((j) => [j.enqueued_at, 'enqueued'] as [string, 'enqueued']),
      [succeeded.completed_at, 'succeeded'],
      [retriedRun.finished_at, 'retried'],
      [failedAfterRetry.completed_at, 'failed'],
      [failed.completed_at, 'failed'],
    ]),
  )
})

test('an abandoned run (lease expired) whose job goes back to pending counts as retried', async () => {
  const kind = uniqueKind('stats-reap')
  await postOk(f, '/jobs', { kind, max_attempts: 2 })
  const { run } = await claimOne(f, kind, 'w-reap', { lease_seconds: 1 })
  await f.sql`update ${f.sql(f.tables.runs)} set lease_expires_at = now() - interval '1 second' where id = ${run.id}`
  await runAbandonExpired(f.sql, f.tables, 100)
  const abandoned = (await f.call('GET', `/runs/${run.id}`)).body
  expect(abandoned.status).toBe('abandoned')
  const rows = ((await f.call('GET', '/stats?window=15m')).body.rows as Row[]).filter((r) => r.kind === kind)
  expect(rows.reduce((n, r) => n + r.retried, 0)).toBe(1)
  expect(rows.reduce((n, r) => n + r.failed, 0)).toBe(0)
})

test('rows come by minute then kind, only minutes with activity; window picks how far back', async () => {
  const [x, y] = [uniqueKind('stats-x'), uniqueKind('stats-y')].sort()
  await postOk(f, '/jobs', { kind: y })
  await postOk(f, '/jobs', { kind: x })
  for (const window of ['15m', '1h', '6h', '24h']) {
    const res = await f.call('GET', `/stats?window=${window}`)
    expect(res.status).toBe(200)
    const rows = res.body.rows as Row[]
    const keys = rows.map((r) => `${r.minute} ${r.kind}`)
    expect(keys).toEqual([...keys].sort())
    expect(rows.every((r) => r.enqueued + r.succeeded + r.failed + r.retried > 0)).toBe(true)
    const ours = rows.filter((r) => r.kind === x || r.kind === y)
    expect(ours.map((r) => `${r.kind} ${r.enqueued}`).sort()).toEqual([`${x} 1`, `${y} 1`])
  }
  const span = async (w: string) => {
    const { from, to } = (await f.call('GET', `/stats?window=${w}`)).body
    return Math.floor((Date.parse(to) - Date.parse(from)) / 60_000)
  }
  expect(await span('15m')).toBe(15)
  expect(await span('6h')).toBe(360)
  expect(await span('24h')).toBe(1440)
})

test('an unknown window is a 400 naming it', async () => {
  const res = await f.call('GET', '/stats?window=2h')
  expect(res.status).toBe(400)
  expect(res.body.error).toContain('window')
})
