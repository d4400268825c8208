/**
 * What a paused queue with a deep backlog costs other queues' claims, as plan
 * rows (the measurement behind the comment on pausedQueues in
 * src/runs/sql/claim.ts). The claim index is ordered by kind, then priority and
 * due time, not by queue: a claim of kind `a` passes over each paused job of
 * kind `a` that sorts ahead of the first claimable one, and over nothing else.
 * A claim of another kind pays nothing.
 */
import { afterAll, expect, test } from 'bun:test'
import { newRunId } from '../src/ids'
import { runClaim } from '../src/runs/sql/claim'
import { loadWorkingSet } from './support/backlog'
import { vacuumAnalyze } from './support/backlog-stats'
import { createExplainer, type PlanSummary, planNodes } from './support/explain'
import { startFixture } from './support/harness'

/** Paused jobs of kind `a` due before the working set's head (it was enqueued 90–65 min ago), and after it. */
const AHEAD = 10_000
const BEHIND = 10_000
const HELD = 'held'

const f = await startFixture()
const { sql, tables: t } = f
await loadWorkingSet(sql, t, { pendingPerKind: 50, active: 20, expired: 5 })
for (const [count, age] of [
  [AHEAD, '3 hours'],
  [BEHIND, '30 minutes'],
] as const) {
  await sql`
    insert into ${sql(t.jobs)} (id, kind, queue, enqueued_at, updated_at)
    select 'job_held_' || ${age} || '_' || n, 'a', ${HELD}, now() - ${age}::interval, now() - ${age}::interval
    from generate_series(1, ${count}) n`
}
await sql`insert into ${sql(t.pausedQueues)} (queue) values (${HELD})`
await vacuumAnalyze(sql, t)

const explainer = createExplainer(process.env.DATABASE_URL as string)
afterAll(() => explainer.close())

/** The plan of one claim of `kind` (rolled back), and what its claim-index scan passed over. */
async function claimPlan(kind: string): Promise<{ plan: PlanSummary; filtered: number; claimed: string[] }> {
  let claimed: string[] = []
  const call = await explainer.explainCall(async (tx) => {
    const rows = await runClaim(tx, t, { kinds: [kind], workerId: 'w', leaseSec: 60, runIds: [newRunId()] })
    claimed = rows.map((r) => r.job.queue)
  })
  const plan = call.statements[0] as PlanSummary
  const scan = planNodes(plan.plan).find((n) => n['Index Name'] === `${t.prefix}jobs_claim_idx`)
  console.log(
    `claim of ${kind}: ${plan.executionMs.toFixed(2)} ms, rows read ${plan.rowsRead}, passed over ${scan?.['Rows Removed by Filter'] ?? 0}`,
  )
  return { plan, filtered: scan?.['Rows Removed by Filter'] ?? 0, claimed }
}

test('a claim of the paused kind passes over exactly the paused jobs due ahead of its head, not those behind', async () => {
  const { plan, filtered, claimed } = await claimPlan('a')
  expect(claimed).toEqual(['default'])
  // Still the ordered scan of the claim index: nothing sorted beyond the one row claimed.
  expect(plan.sorts.map((x) => x.inputRows)).toEqual(plan.sorts.map(() => 1))
  expect(filtered).toBe(AHEAD)
  expect(plan.rowsRead).toBeLessThan(AHEAD + 20)
})

test('a claim of another kind pays nothing for the paused backlog', async () => {
  const { plan, filtered, claimed } = await claimPlan('b')
  expect(claimed).toEqual(['default'])
  expect(filtered).toBe(0)
  expect(plan.rowsRead).toBeLessThan(20)
})

test('resumed, the same claim takes the oldest held job and passes over nothing', async () => {
  await sql`delete from ${sql(t.pausedQueues)} where queue = ${HELD}`
  const { filtered, claimed } = await claimPlan('a')
  expect(claimed).toEqual([HELD])
  expect(filtered).toBe(0)
})
