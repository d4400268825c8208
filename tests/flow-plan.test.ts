/**
 * Flow control's plans (issue 12), as rows read rather than times:
 * - the plain claim of a kind without limits keeps its claim-index scan, and pays
 *   one probe of the limits table per kind;
 * - the plain claim never walks a limited kind's jobs (it is the limited claim's);
 * - the limited claim reads the same rows with 1,000 pending jobs over 100 keys
 *   as with 100,000 over 10,000 keys: bounded by the batch and the keys it looks
 *   at, not by the backlog or the number of keys.
 * Plans are printed with their execution times for the issue note.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import type { Sql } from '../src/db/client'
import type { Tables } from '../src/db/tables'
import { newRunId } from '../src/ids'
import { claimWithinLimitsIn } from '../src/limits/claim-sql'
import { runClaim } from '../src/runs/sql/claim'
import { vacuumAnalyze } from './support/backlog-stats'
import { type CallSummary, createExplainer, formatPlan, planNodes } from './support/explain'
import { startFixture } from './support/harness'

const LIMITED = 'lim'
const FREE = 'free'

/** `pending` flow-controlled jobs of LIMITED over `keys` keys, 2 keys at their limit, and 200 jobs of FREE. */
async function load(sql: Sql, t: Tables, pending: number, keys: number): Promise<void> {
  await sql`insert into ${sql(t.limits)} (kind, max_active_per_key, rate_per_key_limit, rate_per_key_seconds)
            values (${LIMITED}, 2, 5, 1)`
  await sql`
    insert into ${sql(t.jobs)} (id, kind, concurrency_key, flow_controlled, enqueued_at, updated_at)
    select 'job_lim_' || n, ${LIMITED}, 'key' || (n % ${keys}), true,
           now() - make_interval(secs => ${pending} - n), now()
    from generate_series(1, ${pending}) n`
  // Keys key0 and key1 have two running jobs each and sit at the front of the line
  // (never served): a claim looks at them first and must pass them over.
  await sql`
    insert into ${sql(t.jobs)} (id, kind, concurrency_key, flow_controlled, status, attempt_count, started_at, updated_at)
    select 'job_lim_active_' || n, ${LIMITED}, 'key' || (n % 2), true, 'active', 1, now(), now()
    from generate_series(1, 4) n`
  await sql`
    insert into ${sql(t.flowSlots)} (kind, key, last_served_at)
    select ${LIMITED}, 'key' || k, case when k < 2 then null else now() - make_interval(secs => k) end
    from generate_series(0, ${keys - 1}) k`
  await sql`
    insert into ${sql(t.jobs)} (id, kind, enqueued_at, updated_at)
    select 'job_free_' || n, ${FREE}, now() - make_interval(secs => n), now() from generate_series(1, 200) n`
  await vacuumAnalyze(sql, t)
  await sql.unsafe(`vacuum analyze "${t.flowSlots}", "${t.limits}"`)
}

const small = await startFixture()
const large = await startFixture()
await load(small.sql, small.tables, 1_000, 100)
await load(large.sql, large.tables, 100_000, 10_000)

const explainer = createExplainer(process.env.DATABASE_URL as string)
afterAll(() => explainer.close())

/** Tables that grow (the limits and paused-queues tables hold a row per kind or queue: a Seq Scan of them is fine). */
const big = (t: Tables, relation: string) => [t.jobs, t.runs, t.flowSlots].includes(relation)

const runIds = (n: number) => Array.from({ length: n }, () => newRunId())

function report(label: string, c: CallSummary): void {
  console.log(`\n${label}: ${c.executionMs.toFixed(2)} ms, rows read ${c.rowsRead}, touched ${c.rowsTouched}`)
  for (const s of c.statements)
    console.log(`${s.executionMs.toFixed(2)} ms (planning ${s.output['Planning Time']} ms)\n${formatPlan(s.plan)}`)
}

describe('the limited claim is bounded by what it claims, not by the backlog or the keys', () => {
  for (const batch of [1, 10]) {
    test(`batch of ${batch}: the same rows at 1,000 pending / 100 keys and at 100,000 / 10,000`, async () => {
      const explain = (f: typeof small) =>
        explainer.explainCall((tx) =>
          claimWithinLimitsIn(tx, f.tables, LIMITED, {
            kinds: [LIMITED],
            workerId: 'w',
            leaseSec: 60,
            runIds: runIds(batch),
          }),
        )
      const s = await explain(small)
      const l = await explain(large)
      report(`limited claim, batch ${batch}, 100,000 pending over 10,000 keys`, l)
      // Statement 1 (limits and slot rows) and statement 3 (count and claim): no
      // kind-wide limit, so no statement 2.
      expect(l.statements).toHaveLength(2)
      expect(l.seqScans.filter((r) => big(large.tables, r))).toEqual([])
      // Sorts see at most the jobs offered: a few per key looked at (its room, here at most 2).
      expect(l.sorts.filter((x) => x.inputRows > (batch + 2) * Math.min(batch, 2))).toEqual([])
      expect(l.rowsRead).toBeLessThanOrEqual(s.rowsRead + 10)
      // And it did claim: the 2 full keys passed over, the next keys served.
      const claimed = planNodes(l.statements[1]?.plan ?? { 'Node Type': '' }).find(
        (n) => n['Node Type'] === 'ModifyTable' && n['Relation Name'] === large.tables.runs,
      )
      expect(claimed?.['Actual Rows']).toBe(batch)
    })
  }
})

describe('the plain claim', () => {
  test('of a kind without limits: its claim-index scan stops at the first row, and the limits probe runs once', async () => {
    const c = await explainer.explainCall((tx) =>
      runClaim(tx, large.tables, { kinds: [FREE], workerId: 'w', leaseSec: 60, runIds: runIds(1) }),
    )
    const plan = c.statements[0]?.plan ?? { 'Node Type': '' }
    const claimScans = c.scans.filter((x) => x.index === `${large.tables.prefix}jobs_claim_idx`)
    expect(claimScans.map((x) => x.rowsTouched)).toEqual([1])
    const probes = planNodes(plan).filter((n) => n['Relation Name'] === large.tables.limits)
    expect(probes.map((n) => n['Actual Loops'])).toEqual([1])
    expect(c.seqScans.filter((r) => big(large.tables, r))).toEqual([])
  })

  test('of a limited kind reads none of its 100,000 pending jobs', async () => {
    const c = await explainer.explainCall((tx) =>
      runClaim(tx, large.tables, { kinds: [LIMITED], workerId: 'w', leaseSec: 60, runIds: runIds(10) }),
    )
    report('plain claim of the limited kind', c)
    const jobsRows = c.scans.filter((x) => x.relation === large.tables.jobs || x.index?.includes('jobs_'))
    expect(jobsRows.reduce((sum, x) => sum + x.rowsTouched, 0)).toBe(0)
  })
})
