/**
 * Runs fast-check over one route at a time against the target, one case after
 * another (so a change in the tables belongs to exactly one request), judging
 * each answer and counting everything for the report.
 */
import fc from 'fast-check'
import { caseArb, renderCase } from './cases'
import type { Route } from './openapi'
import { judge, type ViolationKind } from './oracle'
import { Pool } from './pool'
import { distinctErrors } from './report'
import { type Outcome, send } from './send'
import { digestTables, type Target } from './server'

/** One broken rule, with what is needed to read and to replay it. */
export interface Violation {
  kind: ViolationKind
  detail: string
  route: string
  label: string
  method: string
  url: string
  body: string
  status: number
  /** `FOREMAN_FUZZ_SEED=… FOREMAN_FUZZ_ROUTE=… FOREMAN_FUZZ_PATH=…` replays this case. */
  replay: string
  /** What the server logged at error level meanwhile (the 500's cause). */
  serverLog: string
}

/** Counts for the report. */
export interface Tally {
  cases: number
  perRoute: Record<string, number>
  statuses: Record<string, number>
  byKind: Record<ViolationKind, number>
  violations: Violation[]
}

const MAX_KEPT = 300
const TOP_UP_EVERY = 10

/** The per-route seed: the run's seed mixed with the route, so routes differ. */
export function routeSeed(seed: number, key: string): number {
  let h = seed | 0
  for (let i = 0; i < key.length; i++) h = (Math.imul(h, 31) + key.charCodeAt(i)) | 0
  return h
}

/** Thrown by the property once a route's time is up. */
class OutOfTime extends Error {}

/** A fuzzing session over one target. */
export class Fuzzer {
  readonly tally: Tally = {
    cases: 0,
    perRoute: {},
    statuses: {},
    byKind: {
      fivexx: 0,
      hang: 0,
      'no-answer': 0,
      'bad-status': 0,
      'non-json-refusal': 0,
      'leaked-sql': 0,
      'leaked-internals': 0,
      'refused-changed-data': 0,
    },
    violations: [],
  }
  private readonly pool: Pool
  private digest = ''
  private logMark = 0
  private readonly origin: string

  constructor(
    private readonly target: Target,
    readonly seed: number,
  ) {
    this.pool = new Pool(target.base, target.sql, target.tables)
    this.origin = new URL(target.base).origin
  }

  /** Fills the pool and takes the first digest. */
  async start(): Promise<void> {
    await this.pool.topUp()
    this.digest = await digestTables(this.target.sql, this.target.tables)
  }

  /**
   * Runs `route` for `numRuns` cases or until `timeLimitMs`, whichever comes first;
   * with `path`, replays just that case.
   */
  async runRoute(route: Route, opts: { numRuns: number; timeLimitMs: number; path?: string }): Promise<void> {
    const seed = routeSeed(this.seed, route.key)
    let index = opts.path ? Number(opts.path.split(':')[0]) : 0
    const deadline = performance.now() + opts.timeLimitMs
    const property = fc.asyncProperty(caseArb(route), async (c) => {
      if (performance.now() > deadline) throw new OutOfTime()
      const path = String(index++)
      if (index % TOP_UP_EVERY === 0) await this.refill()
      const r = renderCase(route, c, this.origin, this.pool.resolve)
      const outcome = await send(r)
      const replay = `FOREMAN_FUZZ_SEED=${this.seed} FOREMAN_FUZZ_ROUTE='${route.key}' FOREMAN_FUZZ_PATH=${path}`
      const lastEventId = r.headers['last-event-id']
      const url = lastEventId === undefined ? r.url : `${r.url} (Last-Event-ID: ${lastEventId})`
      await this.check({ route: route.key, label: r.label, method: r.method, url, body: r.bodyText, replay }, outcome)
      // Never fail the property: every case runs and every problem is counted.
      return true
    })
    // Not fc's interruptAfterTimeLimit: it races the running case and moves on while
    // the request is still in flight, so two cases would overlap and a change in the
    // tables could be blamed on the wrong one. Running out of time ends the run as a
    // "failure" that is not shrunk (endOnFailure); every case before it ran in full.
    const details = await fc.check(property, {
      seed,
      numRuns: opts.path ? 1 : opts.numRuns,
      path: opts.path,
      endOnFailure: true,
    })
    if (details.failed && !(details.errorInstance instanceof OutOfTime)) {
      throw new Error(
        `fuzzing ${route.key} stopped at path ${details.counterexamplePath}: ${String(details.errorInstance)}`,
      )
    }
  }

  /**
   * Judges one answer: takes the digest after it, counts it, keeps what it broke.
   * Throws when the server has exited (nothing after that would mean anything).
   */
  async check(
    c: { route: string; label: string; method: string; url: string; body: string; replay: string },
    outcome: Outcome,
    httpLayer = false,
  ): Promise<void> {
    const before = this.digest
    // A hung request may still be running: wait until the server answers again, or the
    // next cases would time out behind it and the digest would blame them for its writes.
    if (outcome.hung) await this.waitUntilAnswering()
    // The error line is written before the 500 is sent, but the pipe may lag a little.
    if (outcome.hung || outcome.status >= 500) await Bun.sleep(50)
    const serverLog = distinctErrors(this.target.errorLines.slice(this.logMark)).join('; ').slice(0, 500)
    this.logMark = this.target.errorLines.length
    this.digest = await digestTables(this.target.sql, this.target.tables)
    this.count(c.route, outcome.hung ? 'hang' : outcome.failure ? 'no-answer' : String(outcome.status))
    const exited = this.target.exited()
    const problems = judge(outcome, {
      method: c.method,
      requestText: `${c.url} ${c.body}`,
      dataChanged: before !== this.digest,
      httpLayer,
    })
    if (exited !== null) problems.push({ kind: 'fivexx', detail: `the server exited with code ${exited}` })
    for (const p of problems) {
      this.tally.byKind[p.kind]++
      if (this.tally.violations.length < MAX_KEPT) {
        this.tally.violations.push({
          ...p,
          ...c,
          url: c.url.length > 300 ? `${c.url.slice(0, 300)}…(${c.url.length} chars)` : c.url,
          body: c.body.length > 300 ? `${c.body.slice(0, 300)}…(${c.body.length} chars)` : c.body,
          status: outcome.status,
          serverLog,
        })
      }
    }
    if (exited !== null) throw new Error(`the server exited with code ${exited}`)
  }

  private async waitUntilAnswering(): Promise<void> {
    const until = performance.now() + 120_000
    while (performance.now() < until) {
      const ok = await fetch(`${this.target.base}/ping`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.ok,
        () => false,
      )
      if (ok) return
      await Bun.sleep(500)
    }
    throw new Error('the server has not answered /ping for two minutes after a hang')
  }

  private count(route: string, status: string) {
    this.tally.cases++
    this.tally.perRoute[route] = (this.tally.perRoute[route] ?? 0) + 1
    this.tally.statuses[status] = (this.tally.statuses[status] ?? 0) + 1
  }

  /** Tops the pool up (valid writes of our own) and re-takes the digest. */
  async refill(): Promise<void> {
    await this.pool.topUp()
    this.digest = await digestTables(this.target.sql, this.target.tables)
  }
}
