/**
 * The history move's statements stay bounded: a move of B jobs reads about B
 * finished rows and their runs by index, however large the live backlog or the
 * history already is (the sweep runs every second on every instance).
 */
import { afterAll, expect, test } from 'bun:test'
import { moveFinishedJobs } from '../src/history/service'
import { historyMoveBatch, historyNextBatch } from '../src/history/sql'
import { jobInsertMany } from '../src/jobs/insert-sql'
import { createExplainer, type PlanSummary } from './support/explain'
import { jobInsertOf, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()
const explainer = createExplainer(process.env.DATABASE_URL as string)
afterAll(() => explainer.close())
const { sql, tables: t } = f

async function planOf(run: Parameters<typeof explainer.capture>[0]): Promise<PlanSummary> {
  const [sent] = await explainer.capture(run)
  if (!sent) throw new Error('the call sent no statement')
  return explainer.explain(sent)
}

/**
 * `n` jobs of `kind`, pending; `finished` of them then succeeded and `active`
 * more claimed, each with its run, as claims and completions leave them.
 */
async function load(kind: string, n: number, finished: number, active = 0) {
  await jobInsertMany(
    sql,
    t,
    Array.from({ length: n }, (_, ord) => ({ ord, ...jobInsertOf(kind) })),
  )
  await sql`
    with picked as (
      select id, row_number() over (order by id) as k from ${sql(t.jobs)}
      where kind = ${kind} order by id limit ${finished + active}
    ), moved as (
      update ${sql(t.jobs)} j
      set status = case when p.k <= ${finished} then 'succeeded' else 'active' end, attempt_count = 1,
          started_at = now(), completed_at = case when p.k <= ${finished} then now() end, updated_at = now()
      from picked p where j.id = p.id
      returning j.id, j.status
    )
    insert into ${sql(t.runs)} (id, job_id, attempt, worker_id, status, lease_expires_at, finished_at)
    select 'run_' || substr(id, 5), id, 1, 'w',
           case when status = 'active' then 'running' else 'succeeded' end,
           case when status = 'active' then now() + interval '1 minute' end,
           case when status = 'active' then null else now() end
    from moved`
}

test('a move of B jobs reads about B finished rows by index, past a live backlog and a history 10 times its size', async () => {
  // History already holding 10,000 jobs, then 20,000 live jobs (2,000 running) and 1,000 finished ones waiting to move.
  await load(uniqueKind('old'), 10_000, 10_000)
  expect((await moveFinishedJobs(f.deps, 0)).moved).toBe(10_000)
  await load(uniqueKind('live'), 21_000, 1_000, 2_000)
  await sql.unsafe(`analyze "${t.jobs}", "${t.runs}", "${t.jobsHistory}"`)

  const batch = await historyNextBatch(sql, t, 0, 200)
  if (!batch) throw new Error('nothing to move')
  const next = await planOf((tx) => historyNextBatch(tx, t, 0, 200))
  const move = await planOf((tx) => historyMoveBatch(tx, t, batch, 200))
  for (const plan of [next, move]) {
    expect(plan.seqScans).toEqual([])
    // The live backlog (20,000) and the history (10,000) are never walked.
    expect(plan.rowsRead).toBeLessThan(2_000)
  }
  expect(move.indexes.map((i) => i.replace(t.prefix, ''))).toContain('jobs_completed_at_idx')
})
