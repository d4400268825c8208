/**
 * Fan-out and fan-in under real concurrency (issue 13): two Foreman instances on
 * the same tables, each served over HTTP, 16 claimers in three styles (POST
 * /claim with a complete per run, POST /claims with a batch complete that claims
 * the next ones, the TS Worker). A root fans out to 1,000 children; a join
 * depending on all 1,000 is enqueued while the children are already running, so
 * its enqueue locks children that workers are completing at that moment. The join
 * must run exactly once, after the last child, and see all 1,000 results.
 */
import { afterAll, expect, test } from 'bun:test'
import { type Claimed, ForemanClient, Worker } from '../src/client'
import { uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const a = await startFixture()
// Instance B's safety poll is off (in effect): only a NOTIFY from A can wake its waiting claimers early.
const b = await startFixture({ eventsPollSec: 3600 }, { prefix: a.tables.prefix, keepTables: true })
const clients = [new ForemanClient({ baseUrl: a.serve() }), new ForemanClient({ baseUrl: b.serve() })] as const
const clientOf = (i: number) => clients[i % 2] as ForemanClient
const sql = a.sql
const workers: Worker[] = []
afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop(1000)))
})

/** Resolves once `done()` holds (checked every 50 ms); throws after `ms`. */
async function until(what: string, done: () => Promise<boolean>, ms: number) {
  const deadline = performance.now() + ms
  while (!(await done())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(50)
  }
}

/** What a claimer does with a job: a child answers its index; the join counts what it received. */
const joins: { runs: number; inputs: number[] } = { runs: 0, inputs: [] }
function resultOf(job: Claimed['job']): unknown {
  const step = (job.params as { step: string; i?: number }).step
  if (step === 'join') {
    joins.runs++
    joins.inputs = (job.dependencies ?? []).map((d) => (d.result as { i: number }).i)
    return { joined: job.dependencies?.length }
  }
  return { i: (job.params as { i?: number }).i ?? -1 }
}

test('1,000 children fan out from a root and a join runs exactly once, after the last', async () => {
  const kind = uniqueKind('fan')
  let stop = false
  const claimBody = (workerId: string) => ({ kinds: [kind], worker_id: workerId, wait_seconds: 1, lease_seconds: 60 })

  // 5 single claimers and 5 hand-off claimers, alternating instances; 6 Workers.
  const loops: Promise<void>[] = []
  for (let i = 0; i < 5; i++) {
    const client = clientOf(i)
    const id = `single-${i}`
    loops.push(
      (async () => {
        while (!stop) {
          const claimed = await client.claim(claimBody(id))
          if (claimed) await client.complete(claimed.run.id, { worker_id: id, result: resultOf(claimed.job) })
        }
      })(),
    )
  }
  for (let i = 0; i < 5; i++) {
    const client = clientOf(i + 1)
    const id = `handoff-${i}`
    loops.push(
      (async () => {
        let held: Claimed[] = []
        while (!stop) {
          if (held.length === 0) {
            held = await client.claimMany({ ...claimBody(id), max_jobs: 5 })
            continue
          }
          const runs = held.map((c) => ({ run_id: c.run.id, result: resultOf(c.job) }))
          held = (await client.completeAndClaim(id, runs, { kinds: [kind], max_jobs: 5 })).claimed
        }
        if (held.length > 0)
          await client.completeMany(
            id,
            held.map((c) => ({ run_id: c.run.id, result: resultOf(c.job) })),
          )
      })(),
    )
  }
  for (let i = 0; i < 6; i++) {
    const w = new Worker(clientOf(i), { workerId: `worker-${i}`, concurrency: 1, waitSeconds: 1, leaseSeconds: 60 })
    w.handle(kind, async (job) => resultOf(job)).start()
    workers.push(w)
  }

  const root = (await clients[0].enqueue({ kind, params: { step: 'root', i: -1 } })).job
  const children: string[] = []
  for (let from = 0; from < 1000; from += 250) {
    const batch = Array.from({ length: 250 }, (_, k) => ({
      kind,
      params: { step: 'child', i: from + k },
      depends_on: [root.id],
    }))
    const answer = await clientOf(from / 250).enqueueGraph(batch)
    children.push(...answer.jobs.map((o) => o.job.id))
  }
  // Children are being claimed and completed by now: the join's enqueue races them.
  await until('a few children done', async () => (await doneCount(children)) >= 50, 30_000)
  const join = (await clients[1].enqueue({ kind, params: { step: 'join' }, depends_on: children })).job
  expect(['waiting', 'pending']).toContain(join.status)

  await until('the join to succeed', async () => (await status(join.id)) === 'succeeded', 60_000)
  stop = true
  await Promise.all(loops)

  expect(await doneCount(children)).toBe(1000)
  const [runs] = await sql<{ n: number }[]>`
    select count(*)::int as n from ${sql(a.tables.runs)} where job_id = ${join.id}`
  expect(runs?.n).toBe(1)
  expect(joins.runs).toBe(1)
  expect(joins.inputs.sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i))
  // By the database's clock: the join's run began once the last child's run had ended.
  const [order] = await sql<{ after: boolean }[]>`
    select (select min(started_at) from ${sql(a.tables.runs)} where job_id = ${join.id})
        >= (select max(finished_at) from ${sql(a.tables.runs)} where job_id = any(${children}::text[])) as after`
  expect(order?.after).toBe(true)
}, 120_000)

test('a failed child cancels the join, and the join of a join, transitively', async () => {
  const kind = uniqueKind('fan-fail')
  const root = (await clients[0].enqueue({ kind, params: { i: 0 } })).job
  const children = (
    await clients[1].enqueueGraph(
      Array.from({ length: 20 }, (_, i) => ({ kind, params: { i }, depends_on: [root.id] })),
    )
  ).jobs.map((o) => o.job.id)
  const join = (await clients[0].enqueue({ kind: `${kind}-join`, depends_on: children })).job
  const report = (await clients[1].enqueue({ kind: `${kind}-report`, depends_on: [join.id] })).job
  const failing = children[7] as string

  let stop = false
  const loops = [0, 1, 2, 3].map(async (i) => {
    const client = clientOf(i)
    while (!stop) {
      const claimed = await client.claim({ kinds: [kind], worker_id: `f-${i}`, wait_seconds: 1 })
      if (!claimed) continue
      if (claimed.job.id === failing) await client.fail(claimed.run.id, { worker_id: `f-${i}`, error: 'bad input' })
      else await client.complete(claimed.run.id, { worker_id: `f-${i}` })
    }
  })
  await until('the report to be cancelled', async () => (await status(report.id)) === 'cancelled', 30_000)
  stop = true
  await Promise.all(loops)
  const [joinNow, reportNow] = await Promise.all([clients[0].getJob(join.id), clients[0].getJob(report.id)])
  expect(joinNow).toMatchObject({ status: 'cancelled', error: `dependency ${failing} failed` })
  expect(reportNow).toMatchObject({ status: 'cancelled', error: `dependency ${join.id} cancelled` })
  const [runs] = await sql<{ n: number }[]>`
    select count(*)::int as n from ${sql(a.tables.runs)} where job_id in (${join.id}, ${report.id})`
  expect(runs?.n).toBe(0)
}, 60_000)

test('a long-poll claimer on the other instance wakes when the last dependency completes', async () => {
  const kind = uniqueKind('wake')
  const parent = (await clients[0].enqueue({ kind: `${kind}-parent` })).job
  const child = (await clients[0].enqueue({ kind, depends_on: [parent.id] })).job
  const claimedOnB = clients[1].claim({ kinds: [kind], worker_id: 'waiter', wait_seconds: 20 })
  await Bun.sleep(300) // the claimer is parked on B
  const started = performance.now()
  const held = await clients[0].claim({ kinds: [`${kind}-parent`], worker_id: 'w' })
  await clients[0].complete(held?.run.id as string, { worker_id: 'w' })
  const woken = await claimedOnB
  expect(woken?.job.id).toBe(child.id)
  // Well inside its 20 s wait: woken by the release's announcement, not by its deadline.
  expect(performance.now() - started).toBeLessThan(10_000)
}, 30_000)

async function doneCount(ids: string[]): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from ${sql(a.tables.jobs)} where id = any(${ids}::text[]) and status = 'succeeded'`
  return row?.n ?? 0
}

async function status(id: string): Promise<string | undefined> {
  const [row] = await sql<{ status: string }[]>`select status from ${sql(a.tables.jobs)} where id = ${id}`
  return row?.status
}
