/**
 * What orchestration (issue 13) costs the statements of jobs that do not use it,
 * as plans: the end of a plain job fires no trigger and reads no other job; the
 * end of a job with dependents touches its dependents and nothing that grows
 * with the rest of the table. EXPLAIN ANALYZE lists the triggers a statement
 * fired, with their calls.
 */
import { afterAll, expect, test } from 'bun:test'
import { createSql } from '../src/db/client'
import { newRunId } from '../src/ids'
import { jobInsertMany } from '../src/jobs/insert-sql'
import { runClaim } from '../src/runs/sql/claim'
import { runCompleteMany } from '../src/runs/sql/complete-many'
import { runComplete, runFail } from '../src/runs/sql/held'
import { createExplainer, type PlanSummary } from './support/explain'
import { claimOne, jobInsertOf, postOk, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()
const explainer = createExplainer(process.env.DATABASE_URL as string)
afterAll(() => explainer.close())
const trigger = `${f.tables.prefix}jobs_dependents_settle`

/** The one statement `run` sends, explained (inside a rolled-back transaction). */
async function planOf(run: Parameters<typeof explainer.capture>[0]): Promise<PlanSummary> {
  const [sent] = await explainer.capture(run)
  if (!sent) throw new Error('the call sent no statement')
  return explainer.explain(sent)
}

const calls = (p: PlanSummary) =>
  (p.output.Triggers ?? []).filter((t) => t['Trigger Name'] === trigger).reduce((n, t) => n + t.Calls, 0)

/** The indexes the plan reads, by name without this fixture's prefix; and no table read whole. */
const read = (p: PlanSummary) => {
  expect(p.seqScans).toEqual([])
  return [...new Set(p.scans.flatMap((s) => (s.index ? [s.index.replace(f.tables.prefix, '')] : [])))].sort()
}

async function plainBacklog(kind: string, n: number) {
  await jobInsertMany(
    f.sql,
    f.tables,
    Array.from({ length: n }, (_, ord) => ({ ord, ...jobInsertOf(kind) })),
  )
}

test('completing, failing and batch-completing a job without dependents fires no trigger and reads only its run and job', async () => {
  const kind = uniqueKind('plain')
  await plainBacklog(kind, 3)
  const claimed = await runClaim(f.sql, f.tables, {
    kinds: [kind],
    workerId: 'w',
    leaseSec: 60,
    runIds: [newRunId(), newRunId(), newRunId()],
  })
  const [one, two, three] = claimed.map((c) => c.run.id) as [string, string, string]
  const complete = await planOf((tx) => runComplete(tx, f.tables, { runId: one }, { workerId: 'w', result: { ok: 1 } }))
  const fail = await planOf((tx) =>
    runFail(
      tx,
      f.tables,
      { runId: two },
      { workerId: 'w', error: 'x', retryable: false, backoffSec: null, result: undefined },
    ),
  )
  const many = await planOf((tx) => runCompleteMany(tx, f.tables, { workerId: 'w', runs: [{ run_id: three }] }))
  for (const p of [complete, fail, many]) {
    expect(calls(p)).toBe(0)
    expect(read(p)).toEqual(['job_runs_pkey', 'jobs_pkey'])
  }
})

test('completing a job with dependents fires the trigger once, and its statements read the dependents by key', async () => {
  const kind = uniqueKind('parent')
  const parent = (await postOk(f, '/jobs', { kind })) as { id: string }
  const children = await postOk(f, '/jobs/batch', {
    jobs: Array.from({ length: 20 }, () => ({ kind: `${kind}-child`, depends_on: [parent.id] })),
  })
  expect(children.jobs.every((c: { job: { status: string } }) => c.job.status === 'waiting')).toBe(true)
  // A backlog of plain jobs that the release must not walk.
  await plainBacklog(uniqueKind('noise'), 5000)
  await f.sql.unsafe(`analyze "${f.tables.jobs}"`)
  const { run } = await claimOne(f, kind)
  const [sent] = await explainer.capture((tx) =>
    runComplete(tx, f.tables, { runId: run.id }, { workerId: 'worker-1', result: 1 }),
  )
  const p = await explainer.explain(sent as NonNullable<typeof sent>)
  expect(calls(p)).toBe(1)
  expect(read(p)).toEqual(['job_runs_pkey', 'jobs_pkey'])

  // The trigger's own statements are not in the plan: count the table's scans around a real completion.
  const one = createSql({ url: process.env.DATABASE_URL as string, max: 1 })
  try {
    const scans = async () => {
      await one`select pg_stat_force_next_flush()`
      const [row] = await one<{ seq: number }[]>`
        select seq_scan::int as seq from pg_stat_user_tables where relname = ${f.tables.jobs}`
      return row?.seq ?? -1
    }
    const before = await scans()
    const [done] = await runComplete(one, f.tables, { runId: run.id }, { workerId: 'worker-1', result: 1 }).then(
      (r) => [r],
    )
    expect(done?.status).toBe('succeeded')
    expect(await scans()).toBe(before)
  } finally {
    await one.end()
  }
  const [released] = await f.sql<{ n: number }[]>`
    select count(*)::int as n from ${f.sql(f.tables.jobs)} where kind = ${`${kind}-child`} and status = 'pending'`
  expect(released?.n).toBe(20)
})
