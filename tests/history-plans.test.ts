/**
 * Reads over history stay bounded (issue 14): with 4,000 historic jobs and runs
 * over four day partitions beside a little live work, each read is explained as
 * the planner chooses for itself, and reads history by index only, touching at
 * most a page per partition (lists, replay), one probe per partition (by id), or
 * the window's rows (stats, queues, workers) — never a partition whole. A read
 * the hot table answers alone touches no history row at all.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import type { Sql } from '../src/db/client'
import { jobsByIds, jobsChangedSince } from '../src/events/sql'
import { moveFinishedJobs } from '../src/history/service'
import { historyDays } from '../src/history/sql'
import { jobGet, jobList, jobRunsList } from '../src/jobs/reads-sql'
import { queueList } from '../src/queues/sql'
import { runGet, runList } from '../src/runs/sql/reads'
import { statsRead } from '../src/stats/sql'
import { workerList } from '../src/workers/sql'
import { type CallSummary, createExplainer, formatPlan } from './support/explain'
import { claimOne, postOk, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const HISTORIC = 4000
const DAYS = 4
const PAGE = 50

const f = await startFixture()
const { sql, tables: t } = f
// Finished 2 hours and more ago, spread over four UTC days; one run each.
await sql`
  insert into ${sql(t.jobs)} (id, kind, queue, status, attempt_count, enqueued_at, started_at, completed_at, updated_at)
  select 'job_old_' || lpad(n::text, 6, '0'), 'old-' || (n % 5), 'q' || (n % 3),
         case when n % 10 = 0 then 'failed' else 'succeeded' end, 1, at, at, at, at
  from generate_series(1, ${HISTORIC}) n,
       lateral (select now() - interval '2 hours' - (n % ${DAYS}) * interval '1 day' as at) a`
await sql`
  insert into ${sql(t.runs)} (id, job_id, attempt, worker_id, status, started_at, finished_at, created_at, updated_at)
  select 'run_old_' || substr(j.id, 9), j.id, 1, 'old-worker-' || (right(j.id, 1)::int % 7),
         case when j.status = 'failed' then 'failed' else 'succeeded' end,
         j.completed_at, j.completed_at, j.completed_at, j.completed_at
  from ${sql(t.jobs)} j`
const moved = await moveFinishedJobs(f.deps, 0)
// A little live work, after the move: pending, and one running.
const kind = uniqueKind('live')
for (let i = 0; i < 5; i++) await postOk(f, '/jobs', { kind })
const live = await claimOne(f, kind, 'w-live')
const partitions = (await historyDays(sql, t)).length
await sql.unsafe(`vacuum analyze "${t.jobs}", "${t.runs}", "${t.jobsHistory}", "${t.runsHistory}"`)

const explainer = createExplainer(process.env.DATABASE_URL as string)
afterAll(() => explainer.close())

const isHistory = (name: string | undefined) => !!name && name.startsWith(t.prefix) && name.includes('history')

/** What a call read from history: scans, rows, and any partition read whole. */
function onHistory(call: CallSummary) {
  const scans = call.scans.filter((s) => isHistory(s.relation) || isHistory(s.index))
  return {
    rows: Math.round(scans.reduce((sum, s) => sum + s.rowsTouched, 0)),
    seqScans: call.seqScans.filter(isHistory),
    partitionsRead: new Set(scans.map((s) => s.relation ?? s.index)).size,
  }
}

/** Explains one read and reports what it did to history. */
async function explainRead(name: string, read: (s: Sql) => Promise<unknown>, settings?: Record<string, string>) {
  const call = await explainer.explainCall(read, { settings })
  const h = onHistory(call)
  console.log(`${name}: history rows ${h.rows} (${h.partitionsRead} scans), all rows read ${call.rowsRead}`)
  return { call, h, dump: () => call.statements.map((s) => formatPlan(s.plan)).join('\n') }
}

test('the fixture: 4,000 jobs moved into four day partitions', () => {
  expect(moved.moved).toBe(HISTORIC)
  expect(partitions).toBeGreaterThanOrEqual(DAYS)
})

describe('lists: a page per partition at most, by index', () => {
  const reads: [string, (s: Sql) => Promise<unknown>][] = [
    ['GET /jobs', (s) => jobList(s, t, { limit: PAGE })],
    ['GET /jobs?include=current_run', (s) => jobList(s, t, { limit: PAGE, include: 'current_run' })],
    ['GET /jobs?kind=old-1', (s) => jobList(s, t, { kind: 'old-1', limit: PAGE })],
    ['GET /jobs?status=failed', (s) => jobList(s, t, { status: 'failed', limit: PAGE })],
    ['GET /jobs?status=succeeded', (s) => jobList(s, t, { status: 'succeeded', limit: PAGE })],
    ['GET /jobs next page', (s) => jobList(s, t, { limit: PAGE, cursor: 'job_old_002000' })],
    ['GET /runs', (s) => runList(s, t, { limit: PAGE })],
    ['GET /events replay from 5 days ago', (s) => jobsChangedSince(s, t, { version: daysAgo(5), id: '' }, {}, PAGE)],
  ]
  for (const [name, read] of reads) {
    test(name, async () => {
      const { h, dump } = await explainRead(name, read)
      if (h.seqScans.length > 0 || h.rows > PAGE * partitions) console.log(dump())
      expect(h.seqScans).toEqual([])
      expect(h.rows).toBeLessThanOrEqual(PAGE * partitions)
    })
  }
})

describe('by id: one probe per partition, none when the hot table has it', () => {
  test('GET /jobs/:id of a historic job', async () => {
    const { h } = await explainRead('GET /jobs/:id (historic)', (s) => jobGet(s, t, 'job_old_000123', true))
    expect(h.seqScans).toEqual([])
    expect(h.rows).toBe(1)
    expect(h.partitionsRead).toBeLessThanOrEqual(partitions)
  })
  test('GET /jobs/:id, /runs/:id, a live re-read and a replay of the last minute of live jobs touch no history row', async () => {
    const reads: [string, (s: Sql) => Promise<unknown>][] = [
      ['GET /jobs/:id (live)', (s) => jobGet(s, t, live.job.id, true)],
      ['GET /runs/:id (live)', (s) => runGet(s, t, live.run.id)],
      ['live re-read (live)', (s) => jobsByIds(s, t, [live.job.id])],
      [
        'GET /events replay of the last minute',
        (s) => jobsChangedSince(s, t, { version: minuteAgo(), id: '' }, {}, 500),
      ],
    ]
    for (const [name, read] of reads) {
      const { h } = await explainRead(name, read)
      expect([name, h.rows, h.seqScans]).toEqual([name, 0, []])
    }
  })
  test('GET /runs/:id, GET /jobs/:id/runs and a live re-read of historic ones', async () => {
    const reads: [string, (s: Sql) => Promise<unknown>][] = [
      ['GET /runs/:id (historic)', (s) => runGet(s, t, 'run_old_000123')],
      ['GET /jobs/:id/runs (historic)', (s) => jobRunsList(s, t, 'job_old_000123')],
      ['live re-read (historic)', (s) => jobsByIds(s, t, ['job_old_000123', 'job_old_000124'])],
    ]
    for (const [name, read] of reads) {
      const { h } = await explainRead(name, read)
      expect([name, h.seqScans]).toEqual([name, []])
      // An index entry and its heap row per id, at most.
      expect(h.rows).toBeLessThanOrEqual(4)
    }
  })
})

/**
 * Explained with enable_seqscan off, as tests/hot-plans.test.ts explains: on
 * partitions this small, hashing a whole day is the planner's honest choice
 * for a 24-hour window (and one it drops at a million rows); off, a plan that
 * reads history beyond the window still shows its rows.
 */
describe('operator windows: the window’s rows only, by index', () => {
  const NO_SEQSCAN = { enable_seqscan: 'off' }
  const reads: [string, number, (s: Sql) => Promise<unknown>][] = [
    ['GET /stats?window=1h', 60, (s) => statsRead(s, t, 60)],
    ['GET /stats?window=24h', 1440, (s) => statsRead(s, t, 1440)],
    ['GET /queues', 60, (s) => queueList(s, t)],
    ['GET /workers', 60, (s) => workerList(s, t)],
  ]
  for (const [name, minutes, read] of reads) {
    test(name, async () => {
      const [inWindow] = await sql<{ n: number }[]>`
        select count(*)::int as n from ${sql(t.jobsHistory)}
        where completed_at >= date_trunc('minute', now()) - make_interval(mins => ${minutes})`
      const { h, dump } = await explainRead(name, read, NO_SEQSCAN)
      // Each of the window's jobs is read for what it enqueued, ended and retried: a few
      // entries each (index and heap), and nothing of the days before the window.
      const bound = 6 * (inWindow?.n ?? 0)
      if (h.seqScans.length > 0 || h.rows > bound || process.env.DUMP) console.log(dump())
      console.log(`  (${inWindow?.n} historic jobs in the window)`)
      expect(h.seqScans).toEqual([])
      expect(h.rows).toBeLessThanOrEqual(bound)
    })
  }
})

function daysAgo(days: number) {
  return `${new Date(Date.now() - days * 86_400_000).toISOString().slice(0, -1)}000Z`
}
function minuteAgo() {
  return `${new Date(Date.now() - 60_000).toISOString().slice(0, -1)}000Z`
}
