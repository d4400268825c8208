/** Replay paging (jobsChangedSince): every change once, in version order, however the pages fall. */
import { expect, test } from 'bun:test'
import { jobsChangedSince, type ReplayCursor } from '../src/events/sql'
import { claimOne, enqueueJob, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()

/** Pages through every change after `from`, `limit` at a time. */
async function replayAll(from: ReplayCursor, kind: string, limit: number) {
  const seen: { id: string; version: string }[] = []
  let after = from
  for (let pages = 0; pages < 100; pages++) {
    const page = await jobsChangedSince(f.sql, f.tables, after, { kind }, limit)
    seen.push(...page.map((p) => ({ id: p.job.id, version: p.version })))
    const last = page.at(-1)
    if (!last || page.length < limit) return seen
    after = { version: last.version, id: last.job.id }
  }
  throw new Error('replay did not end')
}

test('pages of 2 reach every job once, in version order, when heartbeats move older jobs last', async () => {
  const kind = uniqueKind('replay')
  const from = { version: new Date(Date.now() - 1000).toISOString(), id: '' }
  const jobs = []
  for (let i = 0; i < 7; i++) jobs.push(await enqueueJob(f, { kind }))
  // Claim four, then cancel the other three, then heartbeat the four (latest
  // claimed first): the jobs first by updated_at carry the latest versions
  // through their runs, and a page that stopped at them would skip the cancels.
  const claimed = []
  for (let i = 0; i < 4; i++) claimed.push(await claimOne(f, kind, 'replayer'))
  for (const job of jobs.slice(4)) expect((await f.call('POST', `/jobs/${job.id}/cancel`)).status).toBe(200)
  for (const c of claimed.reverse()) {
    const beat = await f.call('POST', `/runs/${c.run.id}/heartbeat`, { worker_id: 'replayer', progress_current: 1 })
    expect(beat.status).toBe(200)
  }
  for (const limit of [1, 2, 3, 50]) {
    const seen = await replayAll(from, kind, limit)
    expect(seen.map((s) => s.id).sort()).toEqual(jobs.map((j) => j.id).sort())
    const versions = seen.map((s) => `${s.version} ${s.id}`)
    expect(versions).toEqual([...versions].sort())
  }
})

test('a cursor past every change answers nothing', async () => {
  const kind = uniqueKind('replay-none')
  await enqueueJob(f, { kind })
  const future = { version: new Date(Date.now() + 60_000).toISOString(), id: '' }
  expect(await jobsChangedSince(f.sql, f.tables, future, { kind }, 10)).toEqual([])
})
