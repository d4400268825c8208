/**
 * The claim must not walk finished jobs: with 100,000 succeeded jobs of a kind and
 * a few pending ones, the claim's select reads the partial claim index in order
 * and stops at the first row (no Sort, no filtered-away thousands).
 */
import { describe, expect, test } from 'bun:test'
import postgres from 'postgres'
import { newRunId } from '../src/ids'
import { runClaim } from '../src/runs/sql'
import { startFixture } from './support/harness'

const f = await startFixture()
const KIND = 'plan-kind'
const claimIndex = `${f.tables.prefix}jobs_claim_idx`

await f.sql`
  insert into ${f.sql(f.tables.jobs)} (id, kind, status, attempt_count, started_at, completed_at, enqueued_at)
  select 'job_done_' || lpad(n::text, 8, '0'), ${KIND}, 'succeeded', 1, now(), now(),
         now() - make_interval(secs => 200000 - n)
  from generate_series(1, 100000) as n`
await f.sql`
  insert into ${f.sql(f.tables.jobs)} (id, kind, priority)
  select 'job_todo_' || n, ${KIND}, n % 2 from generate_series(1, 5) as n`
await f.sql`
  insert into ${f.sql(f.tables.jobs)} (id, kind)
  select 'job_other_' || n, 'other-kind' from generate_series(1, 50) as n`
await f.sql`analyze ${f.sql(f.tables.jobs)}`

/** Every node of an EXPLAIN (FORMAT JSON) plan, depth first. */
function nodes(plan: any): any[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)]
}

/** Runs EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) on `text` in a transaction that is rolled back. */
async function explain(sql: postgres.Sql<any>, text: string, params: any[] = []): Promise<any[]> {
  let plan: any
  const rollback = new Error('rollback')
  await sql
    .begin(async (tx) => {
      const [row] = await tx.unsafe(`explain (analyze, buffers, format json) ${text}`, params)
      plan = row?.['QUERY PLAN'][0].Plan
      throw rollback
    })
    .catch((err) => {
      if (err !== rollback) throw err
    })
  return nodes(plan)
}

/** The plan rules: claim index used, nothing sorted, finished rows never visited. */
function expectIndexOrderedPlan(all: any[]) {
  const scans = all.filter((n) => n['Index Name'] === claimIndex)
  expect(scans.length).toBe(1)
  expect(scans[0]['Node Type']).toMatch(/^Index (Only )?Scan$/)
  // The LIMIT stops the scan after the first eligible row.
  expect(scans[0]['Actual Rows']).toBeLessThanOrEqual(1)
  expect(all.filter((n) => /Sort/.test(n['Node Type']))).toEqual([])
  expect(all.filter((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === f.tables.jobs)).toEqual([])
  for (const n of all) {
    expect(n['Rows Removed by Filter'] ?? 0).toBeLessThan(10)
    expect(n['Rows Removed by Index Recheck'] ?? 0).toBeLessThan(10)
    expect(n['Actual Rows'] ?? 0).toBeLessThanOrEqual(10)
  }
  const blocks = all.reduce((sum, n) => sum + (n['Shared Hit Blocks'] ?? 0) + (n['Shared Read Blocks'] ?? 0), 0)
  expect(blocks).toBeLessThan(200)
}

describe('claim plan over 100,000 finished jobs', () => {
  test("the claim's select for one kind reads the claim index in order, with no Sort and no walk over finished rows", async () => {
    // The `picked` CTE of runClaim (src/runs/sql.ts), for a single kind.
    const all = await explain(
      f.sql,
      `select id from ${f.tables.jobs}
       where status = 'pending' and kind = $1
         and (scheduled_at is null or scheduled_at <= now())
       order by priority desc, enqueued_at, id
       limit 1
       for update skip locked`,
      [KIND],
    )
    expectIndexOrderedPlan(all)
  })

  test('the statement runClaim actually sends (captured from the client) plans the same way', async () => {
    const captured: { query: string; params: any[] }[] = []
    const spy = postgres(process.env.DATABASE_URL as string, {
      max: 1,
      onnotice: () => {},
      debug: (_conn, query, params) => captured.push({ query, params: params as any[] }),
    })
    try {
      const rollback = new Error('rollback')
      await spy
        .begin(async (tx) => {
          const claimed = await runClaim(tx as never, f.tables, {
            kinds: [KIND],
            workerId: 'plan-worker',
            leaseSec: 60,
            runIds: [newRunId()],
          })
          // Highest priority first: one of the odd-numbered pending jobs.
          expect(claimed.map((c) => c.job.id)).toEqual(['job_todo_1'])
          throw rollback
        })
        .catch((err) => {
          if (err !== rollback) throw err
        })
      const claim = captured.find((c) => c.query.includes('with picked as'))
      expect(claim).toBeDefined()
      const all = await explain(spy, claim?.query ?? '', claim?.params ?? [])
      // The later CTEs sort the one claimed row (row numbers, answer order); the
      // rules are about how `picked` finds it.
      const picked = all.filter((n) => n['Subplan Name'] === 'CTE picked')
      expect(picked.length).toBe(1)
      expectIndexOrderedPlan(nodes(picked[0]))
    } finally {
      await spy.end()
    }
    // Both transactions rolled back: nothing was claimed.
    const [row] = await f.sql`select count(*)::int as n from ${f.sql(f.tables.runs)}`
    expect(row?.n).toBe(0)
  })
})
