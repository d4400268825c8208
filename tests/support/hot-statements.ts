/**
 * The hot statements of issue 9, each called through its statement function, with
 * fresh targets made before it runs and the backlog put back after, so the plan
 * test and the backlog benchmark measure the same calls the same way.
 */
import type { Sql } from '../../src/db/client'
import type { Tables } from '../../src/db/tables'
import { parseCursor } from '../../src/events/service'
import { jobsChangedSince } from '../../src/events/sql'
import { newRunId } from '../../src/ids'
import { jobList } from '../../src/jobs/reads-sql'
import { jobInsert, jobNextDueIn } from '../../src/jobs/sql'
import { runClaim } from '../../src/runs/sql/claim'
import { runCompleteMany, runCompleteManyAndClaim } from '../../src/runs/sql/complete-many'
import { runComplete, runFail, runHeartbeat } from '../../src/runs/sql/held'
import { runAbandonExpired } from '../../src/runs/sql/reaper'
import type { CallSummary, Explainer, ExplainOptions } from './explain'
import { jobInsertOf } from './job-rows'

/** Where the statements run. */
export interface HotContext {
  sql: Sql
  tables: Tables
  /** The worker that claims, heartbeats, completes and fails. */
  workerId: string
}

/** Jobs claimed for a statement to act on (committed), and their runs. */
export interface Targets {
  jobIds: string[]
  runIds: string[]
}

/** One hot statement. */
export interface HotStatement {
  name: string
  /** The most rows it acts on or answers (batch, page, claimed targets): what its plan may scale with. */
  batch: number
  /** The most rows a Sort may be fed: the batch, or a batch per kind where each kind is its own branch. */
  sortBound: number
  /** Makes fresh targets before each execution (committed, not timed). */
  setup?: (ctx: HotContext) => Promise<Targets>
  /** Undoes what setup did besides the targets (committed, not timed), after each execution. */
  teardown?: (ctx: HotContext) => Promise<void>
  /**
   * Sent unprepared (plannedPerCall), so Postgres plans it for its values on every
   * call and never keeps a generic plan: its generic plan is not what runs.
   */
  plannedPerCall?: true
  /** Sends the statement on `sql` through its function; answers the ids of jobs it claimed. */
  run: (sql: Sql, ctx: HotContext, targets: Targets) => Promise<string[]>
}

const NONE: Targets = { jobIds: [], runIds: [] }
/** Kinds of the loaded tables: a, b, c pending; c also has the jobs in backoff. */
const SETUP_KIND = 'a'

/** Claims `count` jobs of SETUP_KIND (committed) for a statement to act on. */
async function claimTargets(ctx: HotContext, count: number, leaseSec = 300): Promise<Targets> {
  const claimed = await runClaim(ctx.sql, ctx.tables, {
    kinds: [SETUP_KIND],
    workerId: ctx.workerId,
    leaseSec,
    runIds: Array.from({ length: count }, () => newRunId()),
  })
  if (claimed.length !== count) throw new Error(`setup claimed ${claimed.length} of ${count} jobs`)
  return { jobIds: claimed.map((c) => c.job.id), runIds: claimed.map((c) => c.run.id) }
}

/**
 * Puts the backlog back: deletes the jobs a statement claimed or acted on (their
 * runs cascade) and enqueues as many fresh pending jobs of the same kinds through
 * jobInsert, so the pending set keeps its size and finished rows do not pile up.
 */
export async function recycle(ctx: HotContext, jobIds: string[]): Promise<void> {
  if (jobIds.length === 0) return
  const { sql, tables: t } = ctx
  // One transaction, so a batch of replacements costs one commit, not fifty.
  await sql.begin(async (tx) => {
    const gone = await tx<{ kind: string }[]>`delete from ${tx(t.jobs)} where id = any(${jobIds}) returning kind`
    for (const { kind } of gone) {
      await jobInsert(tx, t, jobInsertOf(kind, { maxAttempts: 3 }))
    }
  })
}

const claim = (name: string, kinds: string[], batch: number): HotStatement => ({
  name,
  batch,
  sortBound: batch * kinds.length,
  async run(sql, ctx) {
    const claimed = await runClaim(sql, ctx.tables, {
      kinds,
      workerId: ctx.workerId,
      leaseSec: 300,
      runIds: Array.from({ length: batch }, () => newRunId()),
    })
    // An empty claim would make the timing meaningless: the working set always has jobs.
    if (claimed.length !== batch) throw new Error(`${name}: claimed ${claimed.length} of ${batch}`)
    return claimed.map((c) => c.job.id)
  },
})

/** A queue no job of the loaded tables is in. */
export const PAUSED_ELSEWHERE = 'paused-elsewhere'

/**
 * `s` with a queue paused while it runs (committed in setup, resumed after): the
 * claim then reads a paused_queues row and checks every row it considers against
 * it, which must cost no more rows than with nothing paused.
 */
function pausedElsewhere(s: HotStatement): HotStatement {
  return {
    ...s,
    async setup(ctx) {
      const { sql, tables: t } = ctx
      await sql`insert into ${sql(t.pausedQueues)} (queue) values (${PAUSED_ELSEWHERE}) on conflict do nothing`
      return s.setup ? s.setup(ctx) : NONE
    },
    async teardown(ctx) {
      const { sql, tables: t } = ctx
      await sql`delete from ${sql(t.pausedQueues)} where queue = ${PAUSED_ELSEWHERE}`
    },
  }
}

const one = (targets: Targets) => ({ runId: targets.runIds[0] ?? '' })

/** A read: it claims nothing. */
const read =
  (fn: (sql: Sql, ctx: HotContext) => Promise<unknown>): HotStatement['run'] =>
  async (sql, ctx) => {
    await fn(sql, ctx)
    return []
  }

/** An hour before now, as `GET /events?since=` would be given it. */
const hourAgo = () => parseCursor(new Date(Date.now() - 3_600_000).toISOString(), 'since')

/** The statements the issue names, in the order they are reported. */
export const HOT_STATEMENTS: HotStatement[] = [
  claim('claim, 1 kind (a)', ['a'], 1),
  claim('claim, 1 kind behind backoff (c)', ['c'], 1),
  claim('claim, 2 kinds (a,b)', ['a', 'b'], 1),
  claim('claim batch 50, 1 kind (a)', ['a'], 50),
  claim('claim batch 50, 2 kinds (a,b)', ['a', 'b'], 50),
  pausedElsewhere(claim('claim, 1 kind (a), another queue paused', ['a'], 1)),
  pausedElsewhere(claim('claim batch 50, 2 kinds (a,b), another queue paused', ['a', 'b'], 50)),
  {
    name: 'heartbeat',
    batch: 1,
    sortBound: 1,
    setup: (ctx) => claimTargets(ctx, 1),
    async run(sql, ctx, targets) {
      const row = await runHeartbeat(sql, ctx.tables, one(targets), {
        workerId: ctx.workerId,
        leaseSec: 300,
        progressCurrent: 1,
      })
      if (!row?.id) throw new Error('heartbeat was refused')
      return []
    },
  },
  {
    name: 'complete',
    batch: 1,
    sortBound: 1,
    setup: (ctx) => claimTargets(ctx, 1),
    async run(sql, ctx, targets) {
      const row = await runComplete(sql, ctx.tables, one(targets), { workerId: ctx.workerId, result: { ok: true } })
      if (!row?.id) throw new Error('complete was refused')
      return []
    },
  },
  {
    name: 'complete batch 50',
    batch: 50,
    sortBound: 50,
    setup: (ctx) => claimTargets(ctx, 50),
    async run(sql, ctx, targets) {
      const rows = await runCompleteMany(sql, ctx.tables, {
        workerId: ctx.workerId,
        runs: targets.runIds.map((run_id) => ({ run_id, result: { ok: true } })),
      })
      if (rows.some((r) => !r.id)) throw new Error('complete batch: some were refused')
      return []
    },
  },
  {
    // The Worker's path on a busy queue: hand the finished run back and claim the next job, one statement.
    name: 'hand-off: complete 1 + claim 1 (a,b)',
    batch: 2,
    sortBound: 2,
    setup: (ctx) => claimTargets(ctx, 1),
    async run(sql, ctx, targets) {
      const { completed, claimed } = await runCompleteManyAndClaim(
        sql,
        ctx.tables,
        { workerId: ctx.workerId, runs: [{ run_id: targets.runIds[0] ?? '', result: { ok: true } }] },
        { kinds: ['a', 'b'], workerId: ctx.workerId, leaseSec: 300, runIds: [newRunId()] },
      )
      if (!completed[0]?.id || claimed.length !== 1) throw new Error('hand-off: nothing completed or claimed')
      return claimed.map((c) => c.job.id)
    },
  },
  {
    name: 'fail (retry with backoff)',
    batch: 1,
    sortBound: 1,
    setup: (ctx) => claimTargets(ctx, 1),
    async run(sql, ctx, targets) {
      const row = await runFail(sql, ctx.tables, one(targets), {
        workerId: ctx.workerId,
        error: 'boom',
        retryable: true,
        backoffSec: null,
        result: undefined,
      })
      if (row?.status !== 'pending') throw new Error(`fail left the job ${row?.status}`)
      return []
    },
  },
  {
    // 5 fresh expired leases, plus the working set's 20 until a committed sweep takes them.
    name: 'reaper sweep (5 expired)',
    batch: 25,
    sortBound: 25,
    setup: (ctx) => claimTargets(ctx, 5, -1),
    async run(sql, ctx) {
      const { runs } = await runAbandonExpired(sql, ctx.tables, 500)
      if (runs < 5) throw new Error(`reaper abandoned ${runs} runs, expected at least 5`)
      return []
    },
  },
  {
    name: 'next-due lookup (a,b)',
    batch: 1,
    sortBound: 1,
    run: read((sql, ctx) => jobNextDueIn(sql, ctx.tables, ['a', 'b'])),
  },
  {
    name: 'next-due lookup (c)',
    batch: 1,
    sortBound: 1,
    run: read((sql, ctx) => jobNextDueIn(sql, ctx.tables, ['c'])),
  },
  {
    name: 'GET /jobs?status=active',
    batch: 50,
    sortBound: 50,
    plannedPerCall: true,
    run: read((sql, ctx) => jobList(sql, ctx.tables, { status: 'active', limit: 50 })),
  },
  {
    name: 'GET /jobs?kind=rare',
    batch: 50,
    sortBound: 50,
    plannedPerCall: true,
    run: read((sql, ctx) => jobList(sql, ctx.tables, { kind: 'rare', limit: 50 })),
  },
  {
    // The route's replay read for `?since=<an hour ago>` (the first page).
    name: 'GET /events catch-up (1 h)',
    batch: 500,
    sortBound: 500,
    run: read((sql, ctx) => jobsChangedSince(sql, ctx.tables, hourAgo(), {}, 500)),
  },
]

/** How many more table and index rows a plan may read on loaded tables than on near-empty ones. */
export const rowsSlack = (batch: number): number => 50 + 5 * batch

/** True when the loaded plan's rows read did not grow with the backlog (beyond rowsSlack). */
export const rowsFlat = (empty: number, loaded: number, batch: number): boolean => loaded <= empty + rowsSlack(batch)

/** Explains one call of a statement on fresh targets; nothing it does is committed, and the targets are recycled. */
export async function explainHot(
  explainer: Explainer,
  ctx: HotContext,
  s: HotStatement,
  options: ExplainOptions = {},
): Promise<CallSummary> {
  const targets = s.setup ? await s.setup(ctx) : NONE
  try {
    return await explainer.explainCall((sql) => s.run(sql, ctx, targets), options)
  } finally {
    await recycle(ctx, targets.jobIds)
    await s.teardown?.(ctx)
  }
}

/** Times `iterations` executions (milliseconds each), each on fresh targets, recycling after each. */
export async function timeHot(
  ctx: HotContext,
  s: HotStatement,
  iterations: number,
  budgetMs: number,
): Promise<number[]> {
  const times: number[] = []
  const started = performance.now()
  for (let i = 0; i < iterations; i++) {
    const targets = s.setup ? await s.setup(ctx) : NONE
    const t0 = performance.now()
    const claimed = await s.run(ctx.sql, ctx, targets)
    times.push(performance.now() - t0)
    await recycle(ctx, [...targets.jobIds, ...claimed])
    await s.teardown?.(ctx)
    // Slow statements on the loaded tables stop early, after a minimum of 10.
    if (i >= 9 && performance.now() - started > budgetMs) break
  }
  return times
}
