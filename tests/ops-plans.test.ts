/**
 * The operator reads (GET /stats, /workers, /queues) are served from indexes and
 * bounded by recent activity, not by history: explained, as the planner chooses
 * for itself, on tables holding 30,000 jobs and runs that ended two days ago
 * beside a little recent work, each reads no table whole and only a few rows.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { queueList } from '../src/queues/sql'
import { statsRead } from '../src/stats/sql'
import { workerList } from '../src/workers/sql'
import { vacuumAnalyze } from './support/backlog-stats'
import { type CallSummary, createExplainer, formatPlan } from './support/explain'
import { claimOne, postOk, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const HISTORY = 30_000

const f = await startFixture()
const { sql, tables: t } = f
await sql`
  insert into ${sql(t.jobs)} (id, kind, queue, status, attempt_count, enqueued_at, started_at, completed_at, updated_at)
  select 'job_old_' || n, 'old-' || (n % 5), 'q' || (n % 3), case when n % 10 = 0 then 'failed' else 'succeeded' end, 1,
         now() - interval '2 days', now() - interval '2 days', now() - interval '2 days', now() - interval '2 days'
  from generate_series(1, ${HISTORY}) n`
await sql`
  insert into ${sql(t.runs)} (id, job_id, attempt, worker_id, status, started_at, finished_at, created_at, updated_at)
  select 'run_old_' || n, 'job_old_' || n, 1, 'old-worker-' || (n % 7),
         case when n % 10 = 0 then 'failed' else 'succeeded' end,
         now() - interval '2 days', now() - interval '2 days', now() - interval '2 days', now() - interval '2 days'
  from generate_series(1, ${HISTORY}) n`
// A little recent work: enqueued, succeeded, retried, failed, running.
const kind = uniqueKind('recent')
for (let i = 0; i < 5; i++) await postOk(f, '/jobs', { kind, max_attempts: 2 })
const done = await claimOne(f, kind, 'w-recent')
await postOk(f, `/runs/${done.run.id}/complete`, { worker_id: 'w-recent' })
const retried = await claimOne(f, kind, 'w-recent')
await postOk(f, `/runs/${retried.run.id}/fail`, { worker_id: 'w-recent', retryable: true, backoff_seconds: 60 })
await claimOne(f, kind, 'w-recent')
await vacuumAnalyze(sql, t)

const explainer = createExplainer(process.env.DATABASE_URL as string)
afterAll(() => explainer.close())

/** Rows read by scans of jobs or runs, and which of them read a table whole. */
function onOurTables(call: CallSummary) {
  const ours = call.scans.filter((s) => s.relation === t.jobs || s.relation === t.runs || s.index?.startsWith(t.prefix))
  return { seqScans: call.seqScans.filter((r) => r === t.jobs || r === t.runs), rowsRead: call.rowsRead, ours }
}

describe('operator reads over a long history', () => {
  const reads: [string, (s: typeof sql) => Promise<unknown>][] = [
    ['GET /stats?window=24h', (s) => statsRead(s, t, 1440)],
    ['GET /workers', (s) => workerList(s, t)],
    ['GET /queues', (s) => queueList(s, t)],
  ]
  for (const [name, read] of reads) {
    test(`${name}: index scans only, rows read bounded by the recent work`, async () => {
      const call = await explainer.explainCall(read)
      const seen = onOurTables(call)
      console.log(`${name}: rows read ${seen.rowsRead}; indexes ${call.indexes.join(', ')}`)
      if (seen.seqScans.length > 0 || seen.rowsRead > 100) {
        for (const st of call.statements) console.log(formatPlan(st.plan))
      }
      expect(seen.seqScans).toEqual([])
      // The recent work is about a dozen rows; the history is 60,000.
      expect(seen.rowsRead).toBeLessThan(100)
    })
  }

  test('GET /stats uses the finished_at index for retries and the completed_at and updated_at indexes', async () => {
    const call = await explainer.explainCall((s) => statsRead(s, t, 1440))
    expect(call.indexes).toEqual(
      expect.arrayContaining([
        `${t.prefix}job_runs_finished_at_idx`,
        `${t.prefix}jobs_completed_at_idx`,
        `${t.prefix}jobs_updated_at_idx`,
      ]),
    )
  })
})
