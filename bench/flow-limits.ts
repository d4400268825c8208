/**
 * What limits cost (issue 12): the process benchmark's processing scenarios on
 * one Foreman process, for a kind without limits and for the same work with
 * limits, alternating in every round so drift hits each alike.
 *
 *   npm run bench:flow            (3 rounds)
 *   bun bench/flow-limits.ts [--rounds 3] [--quick]
 *
 * Variants, each with 16 loops in flight and the jobs spread over 50 concurrency keys:
 *   - unlimited: no limits (today's single-statement claim);
 *   - limited, slack: max_active_per_key 1000 (never binding): the limited claim's
 *     own cost (its transaction, slot locks, counts, turns);
 *   - limited, binding: max_active_per_key 1 with 10 keys, so at most 10 jobs run
 *     at once for 16 claimers: claims that pass keys over, and waits.
 * Scenarios: one job per claim (POST /claim → POST /runs/:id/complete) and
 * batches of 50 (POST /claims → POST /runs/complete). Per cell: jobs/s and CPU µs
 * per job of the server and of Postgres; medians over the rounds.
 * Results: bench/results/flow-limits-<date>.{json,md} and flow-limits-latest.*.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import postgres from 'postgres'
import { dropTables } from '../src/db/migrate'
import { tablesFor } from '../src/db/tables'
import { postmasterPid, reader } from './before-after/cpu'
import { drive, expectStatus, post } from './before-after/drive'
import type { Outcome } from './before-after/sample'
import { startForemanProcess } from './foreman-process'
import { benchDatabase } from './support'

const argv = process.argv.slice(2)
const quick = argv.includes('--quick')
const roundsAt = argv.indexOf('--rounds')
const rounds = Number(roundsAt >= 0 ? argv[roundsAt + 1] : 3)
const LOOPS = 16
const SIZES = { single: quick ? 400 : 4000, batched: quick ? 2000 : 20_000, batch: 50 }

interface Variant {
  id: 'unlimited' | 'limited_slack' | 'limited_binding'
  keys: number
  limits: Record<string, unknown> | null
}
const VARIANTS: Variant[] = [
  { id: 'unlimited', keys: 50, limits: null },
  { id: 'limited_slack', keys: 50, limits: { max_active_per_key: 1000 } },
  { id: 'limited_binding', keys: 10, limits: { max_active_per_key: 1 } },
]
type ScenarioId = 'single' | 'batched'

interface Cell {
  round: number
  variant: Variant['id']
  scenario: ScenarioId
  outcome: Outcome
}

const db = await benchDatabase()
const admin = postgres(db.url, { max: 2, onnotice: () => {} })
const postmaster = await postmasterPid(admin)

const prefix = `fl_${Date.now().toString(36)}_`
const tables = tablesFor(prefix)
const server = await startForemanProcess(join(import.meta.dir, '..'), db.url, prefix)
const read = reader(server.pid, postmaster)
const cells: Cell[] = []

/** Enqueues `count` jobs of `kind` over `keys` keys (untimed), 1,000 a call. */
async function fill(kind: string, count: number, keys: number): Promise<void> {
  for (let from = 0; from < count; from += 1000) {
    const jobs = Array.from({ length: Math.min(1000, count - from) }, (_, k) => ({
      kind,
      concurrency_key: `tenant-${(from + k) % keys}`,
      params: { n: from + k },
    }))
    const res = await fetch(`${server.base}/jobs/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jobs }),
    })
    await expectStatus(res, 200, 'POST /jobs/batch')
    await res.text()
  }
}

/** Processes every job of `kind`, one per claim or in batches; answers the timed figures. */
async function processAll(kind: string, scenario: ScenarioId, total: number): Promise<Outcome> {
  const warmup = Math.round(total / 10)
  let done = 0
  // A step answers 0 only when every job is done: a claim that found nothing
  // (a binding limit, or the last jobs held by others) tries again.
  const step = async (k: number, signal: AbortSignal): Promise<number> => {
    for (;;) {
      if (done >= total) return 0
      const n = await claimAndComplete(`fl-${k}`, signal)
      if (n > 0) return n
    }
  }
  const claimAndComplete = async (workerId: string, signal: AbortSignal): Promise<number> => {
    if (scenario === 'single') {
      // wait_seconds: a binding limit leaves claimers idle while work is pending.
      const claim = await post(`${server.base}/claim`, { kinds: [kind], worker_id: workerId, wait_seconds: 1 }, signal)
      if (claim.status === 204) {
        await claim.text()
        return 0
      }
      await expectStatus(claim, 200, 'POST /claim')
      const { run } = (await claim.json()) as { run: { id: string } }
      const res = await post(`${server.base}/runs/${run.id}/complete`, { worker_id: workerId, result: null }, signal)
      await expectStatus(res, 200, 'POST /runs/:id/complete')
      await res.text()
      done++
      return 1
    }
    const claim = await post(
      `${server.base}/claims`,
      { kinds: [kind], worker_id: workerId, max_jobs: SIZES.batch, wait_seconds: 1 },
      signal,
    )
    await expectStatus(claim, 200, 'POST /claims')
    const held = (await claim.json()) as { run: { id: string } }[]
    if (held.length === 0) return 0
    const res = await post(
      `${server.base}/runs/complete`,
      { worker_id: workerId, runs: held.map((c) => ({ run_id: c.run.id, result: null })) },
      signal,
    )
    await expectStatus(res, 200, 'POST /runs/complete')
    await res.text()
    done += held.length
    return held.length
  }
  return drive(LOOPS, warmup, read, step)
}

async function runCell(round: number, variant: Variant, scenario: ScenarioId): Promise<void> {
  const kind = `fl_${variant.id}_${scenario}_${round}`
  if (variant.limits) {
    const res = await fetch(`${server.base}/limits/${kind}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(variant.limits),
    })
    await expectStatus(res, 200, 'PUT /limits')
  }
  const total = scenario === 'single' ? SIZES.single : SIZES.batched
  await fill(kind, total, variant.keys)
  await admin.unsafe(`vacuum (analyze) "${tables.jobs}", "${tables.runs}", "${tables.flowSlots}"`)
  const outcome = await processAll(kind, scenario, total)
  const [left] = await admin.unsafe<{ n: number }[]>(
    `select count(*)::int as n from "${tables.jobs}" where kind = $1 and status <> 'succeeded'`,
    [kind],
  )
  if ((left?.n ?? 0) > 0) throw new Error(`${kind}: ${left?.n} jobs not succeeded`)
  cells.push({ round, variant: variant.id, scenario, outcome })
  const o = outcome
  console.log(
    `round ${round} ${variant.id.padEnd(16)} ${scenario.padEnd(8)} ${o.jobs_per_sec} jobs/s; CPU µs/job server ${o.server_cpu_us_per_job}, postgres ${o.pg_cpu_us_per_job ?? '–'}`,
  )
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

try {
  for (let r = 1; r <= rounds; r++) {
    // Rotate the order each round, so no variant always runs first (or last).
    const order = VARIANTS.map((_, i) => VARIANTS[(i + r - 1) % VARIANTS.length] as Variant)
    for (const scenario of ['single', 'batched'] as const) for (const v of order) await runCell(r, v, scenario)
  }
  const lines = [
    `# Flow limits: the processing scenarios with and without limits (${rounds} rounds${quick ? ', quick' : ''})`,
    '',
    `${new Date().toISOString()}; ${LOOPS} in flight; one job per claim ${SIZES.single} jobs, batches of ${SIZES.batch} ${SIZES.batched} jobs; medians.`,
    '',
    '| Scenario | Variant | jobs/s | ÷ unlimited | server CPU µs/job | Postgres CPU µs/job |',
    '|---|---|---|---|---|---|',
  ]
  for (const scenario of ['single', 'batched'] as const) {
    const of = (v: Variant['id'], pick: (o: Outcome) => number | null) =>
      median(cells.filter((c) => c.variant === v && c.scenario === scenario).map((c) => pick(c.outcome) ?? Number.NaN))
    const base = of('unlimited', (o) => o.jobs_per_sec ?? 0)
    for (const v of VARIANTS) {
      const rate = of(v.id, (o) => o.jobs_per_sec ?? 0)
      lines.push(
        `| ${scenario} | ${v.id} | ${Math.round(rate)} | ${(rate / base).toFixed(2)} | ${of(v.id, (o) => o.server_cpu_us_per_job ?? null)} | ${of(v.id, (o) => o.pg_cpu_us_per_job ?? null)} |`,
      )
    }
  }
  const md = `${lines.join('\n')}\n`
  console.log(`\n${md}`)
  if (!quick) {
    const stamp = new Date().toISOString().slice(0, 16).replace(':', '')
    const dir = join(import.meta.dir, 'results')
    for (const name of [`flow-limits-${stamp}Z`, 'flow-limits-latest']) {
      writeFileSync(join(dir, `${name}.md`), md)
      writeFileSync(join(dir, `${name}.json`), `${JSON.stringify({ rounds, sizes: SIZES, cells }, null, 2)}\n`)
    }
  }
} finally {
  await server.stop()
  await dropTables(admin, tables).catch(() => {})
  await admin.end()
  await db.stop()
}
