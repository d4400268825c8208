/**
 * The four measured scenarios, each against one running server: what it sends,
 * how it checks that no job was lost, and its measurement.
 */
import type postgres from 'postgres'
import { ForemanClient, Worker } from '../../src/client'
import type { ForemanProcess } from '../foreman-process'
import { measured, type Reading } from './cpu'
import { drive, expectStatus, fill, post, within } from './drive'
import { LIMITS, sizes, warmupOf } from './options'
import type { Outcome, ScenarioId } from './sample'

/** What a scenario needs: the server, its tables, and how to read CPU. */
export interface Context {
  server: ForemanProcess
  admin: postgres.Sql
  jobsTable: string
  runsTable: string
  read: () => Reading
}

/**
 * Puts the tables in the same settled state before every timed phase, so that an
 * autovacuum of the previous phase's dead rows does not land in this one.
 */
async function settle(ctx: Context): Promise<void> {
  await ctx.admin.unsafe(`vacuum (analyze) "${ctx.jobsTable}", "${ctx.runsTable}"`)
}

/** Throws unless every job of `kind` succeeded (a run that lost jobs would look fast). */
async function checkAllSucceeded(ctx: Context, kind: string, expected: number): Promise<void> {
  // Since issue 14 finished jobs move to jobs_history; a baseline before it has none.
  const history = `${ctx.jobsTable}_history`
  const [found] = await ctx.admin.unsafe<{ there: boolean }[]>('select to_regclass($1) is not null as there', [history])
  const from = found?.there
    ? `(select kind, status from "${ctx.jobsTable}" union all select kind, status from "${history}") j`
    : `"${ctx.jobsTable}"`
  const rows = await ctx.admin.unsafe<{ status: string; n: number }[]>(
    `select status, count(*)::int as n from ${from} where kind = $1 group by status`,
    [kind],
  )
  const succeeded = rows.find((r) => r.status === 'succeeded')?.n ?? 0
  if (succeeded !== expected || rows.some((r) => r.status !== 'succeeded'))
    throw new Error(`expected ${expected} succeeded jobs of ${kind}, found ${JSON.stringify(rows)}`)
}

async function enqueueSingle(ctx: Context): Promise<Outcome> {
  const kind = 'ba_enqueue'
  const total = warmupOf(sizes.enqueue) + sizes.enqueue
  let next = 0
  const result = await drive(sizes.concurrency, warmupOf(sizes.enqueue), ctx.read, async (_, signal) => {
    const n = next++
    if (n >= total) return 0
    const res = await post(`${ctx.server.base}/jobs`, { kind, params: { n } }, signal)
    await expectStatus(res, 201, 'POST /jobs')
    await res.text()
    return 1
  })
  // The jobs would otherwise stay pending beside the next scenarios' jobs.
  await ctx.admin.unsafe(`delete from "${ctx.jobsTable}" where kind = $1`, [kind])
  return result
}

async function processSingleHttp(ctx: Context): Promise<Outcome> {
  const kind = 'ba_single'
  const total = warmupOf(sizes.processSingle) + sizes.processSingle
  const how = await fill(ctx.server.base, kind, total)
  await settle(ctx)
  const result = await drive(sizes.concurrency, warmupOf(sizes.processSingle), ctx.read, async (k, signal) => {
    const workerId = `ba-${k}`
    const claim = await post(`${ctx.server.base}/claim`, { kinds: [kind], worker_id: workerId }, signal)
    if (claim.status === 204) {
      await claim.text()
      return 0
    }
    await expectStatus(claim, 200, 'POST /claim')
    const { run } = (await claim.json()) as { run: { id: string } }
    const res = await post(
      `${ctx.server.base}/runs/${run.id}/complete`,
      { worker_id: workerId, result: { ok: true } },
      signal,
    )
    await expectStatus(res, 200, 'POST /runs/:id/complete')
    await res.text()
    return 1
  })
  await checkAllSucceeded(ctx, kind, total)
  return { ...result, fill: how }
}

async function processSingleWorker(ctx: Context): Promise<Outcome> {
  const kind = 'ba_worker'
  const warmup = warmupOf(sizes.processSingle)
  const total = warmup + sizes.processSingle
  const how = await fill(ctx.server.base, kind, total)
  await settle(ctx)
  const client = new ForemanClient({ baseUrl: ctx.server.origin })
  let handled = 0
  let start: { reading: Reading; handled: number } | undefined
  let failure: unknown
  const workers = Array.from({ length: sizes.concurrency }, (_, k) =>
    new Worker(client, {
      concurrency: 1,
      workerId: `ba-w${k}`,
      onError: (error) => {
        failure ??= error
      },
    }).handle(kind, () => {
      handled++
      // The handler runs in this process, so the warm-up mark is exact here.
      if (!start && handled >= warmup) start = { reading: ctx.read(), handled }
      return { ok: true }
    }),
  )
  const deadline = performance.now() + LIMITS.scenarioMs
  try {
    for (const worker of workers) worker.start()
    while (handled < total && failure === undefined) {
      if (performance.now() > deadline) throw new Error(`timed out after ${LIMITS.scenarioMs / 1000} s`)
      await Bun.sleep(2)
    }
    if (failure !== undefined) throw failure
  } finally {
    // stop() returns once every job in flight is completed; idle long-polls are aborted.
    const stopped = Promise.all(workers.map((w) => w.stop(failure === undefined ? 10_000 : 0)))
    await within(stopped, LIMITS.stopMs)
  }
  const end = ctx.read()
  if (failure !== undefined) throw failure
  if (!start) throw new Error(`only ${handled} jobs handled`)
  await checkAllSucceeded(ctx, kind, total)
  return { ...measured(start.reading, end, total - start.handled), fill: how }
}

async function processBatchedHttp(ctx: Context): Promise<Outcome> {
  const kind = 'ba_batched'
  const total = warmupOf(sizes.processBatched) + sizes.processBatched
  const how = await fill(ctx.server.base, kind, total)
  await settle(ctx)
  const result = await drive(sizes.concurrency, warmupOf(sizes.processBatched), ctx.read, async (k, signal) => {
    const workerId = `ba-${k}`
    const claim = await post(
      `${ctx.server.base}/claims`,
      { kinds: [kind], worker_id: workerId, max_jobs: sizes.batch },
      signal,
    )
    await expectStatus(claim, 200, 'POST /claims')
    const held = (await claim.json()) as { run: { id: string } }[]
    if (held.length === 0) return 0
    const res = await post(
      `${ctx.server.base}/runs/complete`,
      { worker_id: workerId, runs: held.map((c) => ({ run_id: c.run.id, result: { ok: true } })) },
      signal,
    )
    await expectStatus(res, 200, 'POST /runs/complete')
    const { results } = (await res.json()) as { results: { status: number }[] }
    const bad = results.find((r) => r.status !== 200)
    if (bad) throw new Error(`POST /runs/complete: ${JSON.stringify(bad)}`)
    return held.length
  })
  await checkAllSucceeded(ctx, kind, total)
  return { ...result, fill: how }
}

/** Each scenario's runner, by id. */
export const RUNNERS: Record<ScenarioId, (ctx: Context) => Promise<Outcome>> = {
  enqueue_single: enqueueSingle,
  process_single_http: processSingleHttp,
  process_single_worker: processSingleWorker,
  process_batched_http: processBatchedHttp,
}
