/**
 * Flat under backlog (issue 9), as plan shapes rather than times: every hot
 * statement, called through its function, is explained on near-empty tables (the
 * working set only) and on the same working set under a backlog (20,000 finished
 * jobs with runs, 5,000 pending over three kinds, 2,000 of kind c waiting out a
 * retry backoff at the head of its queue, 200 scheduled for tomorrow). With the
 * backlog, a statement may read no more table and index rows than without it, plus
 * a little (rowsSlack); no Sort may be fed more than its batch (a batch per kind
 * where each kind is its own branch); nothing may scan a table whole. Rows read
 * counts scan nodes only: joins and CTE rescans re-handle what scans produced, and
 * the complete batch's plan, for one, differs by table size in a way bounded by
 * the batch, not the backlog. bench/backlog.ts measures the same statements with 1.4M jobs.
 *
 * Plans are taken with enable_seqscan off, on both sets of tables: on tables this
 * small a Seq Scan is often the planner's honest choice, and one it drops at a
 * million rows. Off, a Seq Scan still appears where no other path exists, and a
 * plan that walks or sorts the backlog through an index still shows its rows; the
 * benchmark has the planner's unforced choice at full size.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { createSql } from '../src/db/client'
import type { Tables } from '../src/db/tables'
import { jobGet, jobList } from '../src/jobs/reads-sql'
import { loadBacklog, loadWorkingSet } from './support/backlog'
import { checkLoaderFidelity } from './support/backlog-fidelity'
import { vacuumAnalyze } from './support/backlog-stats'
import { type CallSummary, createExplainer, formatPlan, type PlanNode, planNodes } from './support/explain'
import { startFixture } from './support/harness'
import { explainHot, HOT_STATEMENTS, type HotContext, type HotStatement, rowsSlack } from './support/hot-statements'

const WORKING_SET = { pendingPerKind: 50, active: 20, expired: 5 }
const BACKLOG = { finished: 20_000, pending: 5_000, backoff: 2_000, tomorrow: 200 }
const SETTINGS = { enable_seqscan: 'off' }

const empty = await startFixture()
const loaded = await startFixture()
await loadWorkingSet(empty.sql, empty.tables, WORKING_SET)
await loadWorkingSet(loaded.sql, loaded.tables, WORKING_SET)
await loadBacklog(loaded.sql, loaded.tables, BACKLOG)
await vacuumAnalyze(empty.sql, empty.tables)
await vacuumAnalyze(loaded.sql, loaded.tables)

const explainer = createExplainer(process.env.DATABASE_URL as string)
afterAll(() => explainer.close())

const ctx = (f: { sql: HotContext['sql']; tables: Tables }): HotContext => ({
  sql: f.sql,
  tables: f.tables,
  workerId: 'plan-worker',
})
const isOurs = (t: Tables, relation: string | undefined) => relation === t.jobs || relation === t.runs

/** The rules, as one value so a failure shows every broken rule at once. */
function verdict(s: HotStatement, e: CallSummary, l: CallSummary) {
  const slack = rowsSlack(s.batch)
  return {
    rowsRead:
      l.rowsRead <= e.rowsRead + slack
        ? 'flat'
        : `grew with the backlog: ${e.rowsRead} rows read without it, ${l.rowsRead} with it (slack ${slack})`,
    seqScans: l.seqScans.filter((r) => isOurs(loaded.tables, r)),
    sortsOverBatch: l.sorts
      .filter((x) => x.inputRows > s.sortBound)
      .map((x) => `${x.nodeType} of ${x.inputRows} rows (bound ${s.sortBound})`),
  }
}

/** Explains a statement on both sets of tables; prints the loaded plans when a rule breaks. */
async function both(
  s: HotStatement,
  generic = false,
): Promise<{ e: CallSummary; l: CallSummary; v: ReturnType<typeof verdict> }> {
  // Dead rows left by earlier tests' claims (and rolled-back rehearsals) would be
  // vacuumed away by autovacuum on the small tables but not on the large ones,
  // which bench/backlog.ts shows; here the backlog alone is the difference.
  for (const f of [empty, loaded]) await f.sql.unsafe(`vacuum "${f.tables.jobs}", "${f.tables.runs}"`)
  const e = await explainHot(explainer, ctx(empty), s, { settings: SETTINGS, generic })
  const l = await explainHot(explainer, ctx(loaded), s, { settings: SETTINGS, generic })
  const v = verdict(s, e, l)
  if (v.rowsRead !== 'flat' || v.seqScans.length > 0 || v.sortsOverBatch.length > 0) {
    const which = generic ? 'generic plans' : 'plans for the values'
    console.log(
      `\n${s.name} (${which}): rows read ${e.rowsRead} → ${l.rowsRead}, touched ${e.rowsTouched} → ${l.rowsTouched}`,
    )
    for (const st of l.statements) console.log(formatPlan(st.plan))
  }
  return { e, l, v }
}

const FLAT = { rowsRead: 'flat', seqScans: [], sortsOverBatch: [] }

test('the loader writes rows the way the statements do', async () => {
  expect(await checkLoaderFidelity(empty.sql, `${empty.tables.prefix}x`)).toEqual([])
})

describe('hot statements: plans do not grow with the backlog', () => {
  for (const s of HOT_STATEMENTS) {
    test(s.name, async () => {
      const { v } = await both(s)
      expect(v).toEqual(FLAT)
    })
  }
})

// postgres.js prepares every statement, and after five calls Postgres may keep the
// generic plan (planned without the values) on that connection, when its estimate
// is no worse than the plans so far: the claim is written to get one, and whether
// others switch depends on the load (bench/backlog.ts reports the plan each settled
// on). Whichever it keeps must be flat, so the generic plan must be too.
describe('hot statements: generic plans do not grow with the backlog either', () => {
  for (const s of HOT_STATEMENTS.filter((h) => !h.plannedPerCall)) {
    test(s.name, async () => {
      const { v } = await both(s, true)
      expect(v).toEqual(FLAT)
    })
  }
})

describe('the claim reads the claim index in order (was claim-plan.test.ts)', () => {
  const claimIndex = `${loaded.tables.prefix}jobs_claim_idx`
  const single = HOT_STATEMENTS.find((s) => s.name === 'claim, 1 kind (a)') as HotStatement

  test('one kind: the claim index, read by an index scan that stops at the first due row, and nothing else sorted', async () => {
    const { l } = await both(single)
    const onIndex = l.scans.filter((x) => x.index === claimIndex)
    expect(onIndex.length).toBeGreaterThanOrEqual(1)
    for (const scan of onIndex) {
      expect(scan.nodeType).toMatch(/^Index (Only )?Scan$/)
      // The LIMIT stops the scan after the first eligible row: nothing filtered past.
      expect(scan.rowsTouched).toBeLessThanOrEqual(single.batch)
    }
    for (const st of l.statements) {
      for (const scan of st.scans.filter((x) => isOurs(loaded.tables, x.relation))) {
        expect(scan.rowsTouched).toBeLessThan(10)
      }
      expect(st.buffers).toBeLessThan(200)
    }
  })

  test('the job it claims is the head of the queue, and explaining it claims nothing', async () => {
    const { sql, tables: t } = loaded
    const [head] = await sql<{ id: string }[]>`
      select id from ${sql(t.jobs)}
      where status = 'pending' and kind = 'a' and (scheduled_at is null or scheduled_at <= now())
      order by priority desc, enqueued_at, id limit 1`
    const [before] = await sql<{ n: number }[]>`select count(*)::int as n from ${sql(t.runs)}`
    const sent = await explainer.capture(async (tx) => {
      const claimed = await single.run(tx, ctx(loaded), { jobIds: [], runIds: [] })
      expect(claimed).toEqual([head?.id ?? ''])
    })
    expect(sent.length).toBe(1)
    await explainer.explain(sent[0] as (typeof sent)[number], { settings: SETTINGS })
    const [after] = await sql<{ n: number }[]>`select count(*)::int as n from ${sql(t.runs)}`
    expect(after?.n).toBe(before?.n)
  })
})

describe('a paused queue costs the claim one read of paused_queues, not a lookup per row', () => {
  const paused = HOT_STATEMENTS.find((s) => s.name === 'claim, 1 kind (a), another queue paused') as HotStatement
  const single = HOT_STATEMENTS.find((s) => s.name === 'claim, 1 kind (a)') as HotStatement

  for (const generic of [false, true]) {
    test(`${generic ? 'generic plan' : 'plan for the values'}: the same claim-index scan, the pauses read once`, async () => {
      const { l } = await both(paused, generic)
      const { l: unpaused } = await both(single, generic)
      const claimIndex = `${loaded.tables.prefix}jobs_claim_idx`
      const plan = l.statements[0]?.plan as PlanNode
      // The paused queues are read by an InitPlan, once per statement, whatever the claim scans.
      const pauseReads = planNodes(plan).filter((n) => n['Relation Name'] === loaded.tables.pausedQueues)
      expect(pauseReads.length).toBe(1)
      expect(pauseReads.map((n) => n['Actual Loops'])).toEqual([1])
      expect(pauseReads.map((n) => n['Actual Rows'])).toEqual([1])
      // The claim index is read as without the pause, and stops at the first due row.
      const onIndex = (c: CallSummary) =>
        c.scans.filter((x) => x.index === claimIndex).map((x) => [x.nodeType, x.rowsTouched])
      expect(onIndex(l)).toEqual(onIndex(unpaused))
      expect(l.rowsRead).toBe(unpaused.rowsRead + 1)
    })
  }
})

describe('lists are planned for their values on every call', () => {
  test('GET /jobs statements are never prepared, so Postgres cannot keep a generic plan for them', async () => {
    const one = createSql({ url: process.env.DATABASE_URL as string, max: 1 })
    try {
      for (let i = 0; i < 8; i++) {
        await jobList(one, loaded.tables, { status: 'active', limit: 50 })
        await jobGet(one, loaded.tables, 'job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D', false)
      }
      // The same connection (max 1): the single-job read is prepared, the list is not.
      const prepared = await one<{ statement: string }[]>`select statement from pg_prepared_statements`
      expect(prepared.some((p) => p.statement.includes('where j.id ='))).toBe(true)
      expect(prepared.some((p) => p.statement.includes('order by j.id desc'))).toBe(false)
    } finally {
      await one.end()
    }
  })
})
