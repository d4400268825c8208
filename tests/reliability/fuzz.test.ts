/**
 * Fault scenario 7 (issue 10): every route fuzzed with generated bodies, query
 * strings and path ids, against the real process. Whatever arrives, the answer is
 * a 2xx or a JSON 4xx, in time, with no SQL text, and a refusal changes nothing.
 *
 * `npm test` runs a few cases per route; FOREMAN_FAULTS=full fills ~3.5 minutes
 * and writes bench/results/reliability/fuzz.json. Replay one case with the line a
 * failure prints: FOREMAN_FUZZ_SEED=… FOREMAN_FUZZ_ROUTE='POST /foreman/jobs' FOREMAN_FUZZ_PATH=….
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { loadRoutes, type Route } from './fuzz-support/openapi'
import { rawCases, runRawCase } from './fuzz-support/raw-cases'
import { summarize, writeResults } from './fuzz-support/report'
import { Fuzzer } from './fuzz-support/runner'
import { digestTables, startTarget, type Target } from './fuzz-support/server'

const FULL = process.env.FOREMAN_FAULTS === 'full'
const SEED = Number(process.env.FOREMAN_FUZZ_SEED ?? Date.now() % 2 ** 31)
const REPLAY_ROUTE = process.env.FOREMAN_FUZZ_ROUTE
const REPLAY_PATH = process.env.FOREMAN_FUZZ_PATH
/** Full mode: time for the route fuzz, shared out evenly (the raw cases come on top). */
const FULL_BUDGET_MS = Number(process.env.FOREMAN_FUZZ_BUDGET_SEC ?? 150) * 1000
/** Full mode: most cases on a route without a body (it has only a path and a query to vary). */
const FULL_MAX_RUNS_NO_BODY = 600
/** Reduced mode: cases per route. */
const REDUCED_RUNS = 30

let target: Target
let routes: Route[]
let fuzzer: Fuzzer
const started = performance.now()

beforeAll(async () => {
  target = await startTarget()
  routes = await loadRoutes(target.base)
  fuzzer = new Fuzzer(target, SEED)
  await fuzzer.start()
  console.log(`fuzz seed: ${SEED} (${FULL ? 'full' : 'reduced'}; ${routes.length} routes)`)
}, 120_000)

afterAll(async () => {
  await target?.stop()
})

describe('fuzzing every route', () => {
  test('the OpenAPI document lists the routes to fuzz', () => {
    const keys = routes.map((r) => r.key)
    expect(keys).toContain('POST /foreman/jobs')
    expect(keys).toContain('PUT /foreman/schedules/{id}')
    expect(routes.length).toBeGreaterThanOrEqual(30)
  })

  test('the table digest sees a change a request makes', async () => {
    const before = await digestTables(target.sql, target.tables)
    const res = await fetch(`${target.base}/jobs`, { method: 'POST', body: '{"kind":"fuzz-digest-check"}' })
    expect(res.status).toBe(201)
    expect(await digestTables(target.sql, target.tables)).not.toBe(before)
    await fuzzer.refill() // the fuzzer's own digest must include this write
  })

  test(
    'generated bodies, queries and ids get a 2xx or a JSON 4xx, in time, without SQL text; refusals change nothing',
    async () => {
      // Routes without a body first: they reach their cap early and pass their spare time on.
      const ordered = [...routes.filter((r) => !r.body), ...routes.filter((r) => r.body)]
      const chosen = REPLAY_ROUTE ? routes.filter((r) => r.key === REPLAY_ROUTE) : ordered
      if (REPLAY_ROUTE && chosen.length === 0) throw new Error(`no route ${REPLAY_ROUTE}`)
      // Full mode shares the budget out as it goes, a body route weighing three times a
      // route without one (its cases cost more and have more to find); a route that
      // reaches its run cap early leaves its time to the routes after it.
      const weight = (r: Route) => (r.body ? 3 : 1)
      let weightLeft = chosen.reduce((sum, r) => sum + weight(r), 0)
      const budgetEnd = performance.now() + FULL_BUDGET_MS
      for (const route of chosen) {
        const share = Math.max(1000, ((budgetEnd - performance.now()) * weight(route)) / weightLeft)
        weightLeft -= weight(route)
        await fuzzer.runRoute(route, {
          numRuns: FULL ? (route.body ? 1_000_000 : FULL_MAX_RUNS_NO_BODY) : REDUCED_RUNS,
          timeLimitMs: FULL ? share : 60_000,
          path: REPLAY_PATH,
        })
      }
      const routesDone = performance.now()
      for (const raw of REPLAY_ROUTE ? [] : rawCases(FULL)) await runRawCase(target, fuzzer, raw)
      console.log(
        `fuzz phases: routes ${Math.round((routesDone - started) / 1000)} s, raw TCP ${Math.round((performance.now() - routesDone) / 1000)} s`,
      )
      const summary = summarize(fuzzer, routes.length, (performance.now() - started) / 1000, target.errorLines)
      console.log(summary.text)
      if (FULL && !REPLAY_ROUTE) await writeResults(summary.results)
      // The summary above has every detail; this line names each problem and its replay.
      expect(fuzzer.tally.violations.map((v) => `${v.kind} ${v.route} [${v.label}] ${v.replay}`)).toEqual([])
    },
    FULL ? 900_000 : 120_000,
  )
})
