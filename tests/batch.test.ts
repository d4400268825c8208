/**
 * Batch routes: POST /claims takes up to max_jobs jobs in one statement (each job
 * once across concurrent claimers; long-polls like claim), and POST /runs/complete
 * completes several held runs in one statement with a per-item outcome.
 */
import { describe, expect, test } from 'bun:test'
import { enqueueJob, postOk, postTimed, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'
import { eventually } from './support/sse-client'

const f = await startFixture({ eventsPollSec: 3600 })
const base = f.serve()
const UNKNOWN_RUN = 'run_01JD8X3Q4N6V7W8Y9Z0A1B2C3D'

/** Enqueues `n` jobs of `kind`. */
async function enqueueMany(kind: string, n: number) {
  return Promise.all(Array.from({ length: n }, (_, i) => enqueueJob(f, { kind, params: { i } })))
}

describe('POST /claims', () => {
  test('takes up to max_jobs jobs best first, each active with its own running run', async () => {
    const kind = uniqueKind('b-claim')
    const low = await enqueueJob(f, { kind, priority: 0 })
    const high = await enqueueJob(f, { kind, priority: 5 })
    await enqueueJob(f, { kind, priority: 0 })
    const res = await f.call('POST', '/claims', { kinds: [kind], worker_id: 'wb', max_jobs: 2, lease_seconds: 90 })
    expect(res.status).toBe(200)
    expect(res.body).toHaveLength(2)
    expect(res.body.map((c: any) => c.job.id)).toEqual([high.id, low.id])
    for (const { job, run } of res.body) {
      expect(job).toMatchObject({ status: 'active', attempt_count: 1 })
      expect(run).toMatchObject({ job_id: job.id, worker_id: 'wb', status: 'running', attempt: 1 })
    }
    const rest = await f.call('POST', '/claims', { kinds: [kind], worker_id: 'wb', max_jobs: 10 })
    expect(rest.body).toHaveLength(1)
    expect((await f.call('POST', '/claims', { kinds: [kind], worker_id: 'wb', max_jobs: 10 })).body).toEqual([])
  })

  test('max_jobs is required and 1–100', async () => {
    const body = { kinds: ['k'], worker_id: 'w' }
    expect((await f.call('POST', '/claims', body)).status).toBe(400)
    expect((await f.call('POST', '/claims', { ...body, max_jobs: 0 })).status).toBe(400)
    expect((await f.call('POST', '/claims', { ...body, max_jobs: 101 })).status).toBe(400)
    expect((await f.call('POST', '/claims', { ...body, max_jobs: '5' })).status).toBe(400)
  })

  test('8 concurrent claimers × max_jobs 10 over 200 jobs: every job claimed exactly once, one running run each', async () => {
    const kind = uniqueKind('b-race')
    const jobs = await enqueueMany(kind, 200)
    const claimedBy = new Map<string, number>()
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (;;) {
          const res = await postTimed(base, '/claims', { kinds: [kind], worker_id: `w${w}`, max_jobs: 10 })
          expect(res.status).toBe(200)
          if (res.body.length === 0) return
          for (const c of res.body) claimedBy.set(c.job.id, (claimedBy.get(c.job.id) ?? 0) + 1)
        }
      }),
    )
    expect(claimedBy.size).toBe(200)
    expect([...claimedBy.values()].every((n) => n === 1)).toBe(true)
    expect([...claimedBy.keys()].sort()).toEqual(jobs.map((j) => j.id).sort())
    const [row] = await f.sql<{ runs: number; running: number; jobs: number }[]>`
      select count(*)::int as runs, count(*) filter (where r.status = 'running')::int as running,
             count(distinct r.job_id)::int as jobs
      from ${f.sql(f.tables.runs)} r join ${f.sql(f.tables.jobs)} j on j.id = r.job_id
      where j.kind = ${kind}`
    expect(row).toEqual({ runs: 200, running: 200, jobs: 200 })
  })

  test('with wait_seconds, work enqueued mid-wait is returned before the deadline', async () => {
    const kind = uniqueKind('b-wait')
    const pending = postTimed(base, '/claims', { kinds: [kind], worker_id: 'w-wait', max_jobs: 5, wait_seconds: 10 })
    await eventually(() => f.deps.events.waiters.stats().sleeping >= 1, 4000, 'a sleeping batch claimer')
    const job = await postOk(f, '/jobs', { kind })
    const answer = await pending
    expect(answer.status).toBe(200)
    expect(answer.body).toHaveLength(1)
    expect(answer.body[0].job).toMatchObject({ id: job.id, status: 'active' })
    expect(answer.body[0].run).toMatchObject({ job_id: job.id, worker_id: 'w-wait', status: 'running' })
    expect(answer.elapsed).toBeLessThan(10_000)
  }, 15_000)

  test('with wait_seconds and nothing to claim, the answer is [] at the deadline', async () => {
    const answer = await postTimed(base, '/claims', {
      kinds: [uniqueKind('b-none')],
      worker_id: 'w',
      max_jobs: 3,
      wait_seconds: 1,
    })
    expect(answer.status).toBe(200)
    expect(answer.body).toEqual([])
    expect(answer.elapsed).toBeGreaterThanOrEqual(950)
    expect(answer.elapsed).toBeLessThan(3000)
  })
})

describe('POST /runs/complete', () => {
  test('completes the held runs in one statement and answers 404/409 per item, in input order', async () => {
    const kind = uniqueKind('b-done')
    await enqueueMany(kind, 4)
    const mine = (await f.call('POST', '/claims', { kinds: [kind], worker_id: 'w-a', max_jobs: 3 })).body
    const [theirs] = (await f.call('POST', '/claims', { kinds: [kind], worker_id: 'w-b', max_jobs: 1 })).body
    const [a, b, c] = mine
    // c is already finished: completing it again is a 409.
    expect((await f.call('POST', `/runs/${c.run.id}/complete`, { worker_id: 'w-a' })).status).toBe(200)
    const res = await f.call('POST', '/runs/complete', {
      worker_id: 'w-a',
      runs: [
        { run_id: b.run.id, result: { n: 2 } },
        { run_id: UNKNOWN_RUN },
        { run_id: theirs.run.id, result: 'nope' },
        { run_id: a.run.id, result: null },
        { run_id: c.run.id },
      ],
    })
    expect(res.status).toBe(200)
    const results = res.body.results
    expect(results.map((r: any) => [r.run_id, r.status])).toEqual([
      [b.run.id, 200],
      [UNKNOWN_RUN, 404],
      [theirs.run.id, 409],
      [a.run.id, 200],
      [c.run.id, 409],
    ])
    expect(results[0].job).toMatchObject({ id: b.job.id, status: 'succeeded', result: { n: 2 } })
    expect(results[3].job).toMatchObject({ id: a.job.id, status: 'succeeded', result: null })
    expect(results[1].error).toContain('not found')
    expect(results[2].error).toContain('held by worker "w-b"')
    expect(results[4].error).toContain('succeeded, not running')
    for (const i of [1, 2, 4]) expect(results[i].job).toBeUndefined()

    const runs = await f.sql<{ id: string; status: string; job_status: string; result: unknown }[]>`
      select r.id, r.status, j.status as job_status, j.result
      from ${f.sql(f.tables.runs)} r join ${f.sql(f.tables.jobs)} j on j.id = r.job_id
      where j.kind = ${kind}`
    const byId = new Map(runs.map((r) => [r.id, r]))
    expect(byId.get(a.run.id)).toMatchObject({ status: 'succeeded', job_status: 'succeeded' })
    expect(byId.get(b.run.id)).toMatchObject({ status: 'succeeded', job_status: 'succeeded', result: { n: 2 } })
    expect(byId.get(theirs.run.id)).toMatchObject({ status: 'running', job_status: 'active' })
    // The job's updated_at never goes back past its run's.
    const [stamps] = await f.sql<{ ok: boolean }[]>`
      select bool_and(j.updated_at >= r.updated_at) as ok
      from ${f.sql(f.tables.runs)} r join ${f.sql(f.tables.jobs)} j on j.id = r.job_id
      where r.id in ${f.sql([a.run.id, b.run.id])}`
    expect(stamps?.ok).toBe(true)
  })

  test('a whole batch of 50 held runs completes at once', async () => {
    const kind = uniqueKind('b-fifty')
    await enqueueMany(kind, 50)
    const claimed = (await f.call('POST', '/claims', { kinds: [kind], worker_id: 'w-50', max_jobs: 50 })).body
    expect(claimed).toHaveLength(50)
    const res = await f.call('POST', '/runs/complete', {
      worker_id: 'w-50',
      runs: claimed.map((c: any, i: number) => ({ run_id: c.run.id, result: { i } })),
    })
    expect(res.status).toBe(200)
    expect(res.body.results.every((r: any) => r.status === 200 && r.job.status === 'succeeded')).toBe(true)
    const [row] = await f.sql<{ n: number }[]>`
      select count(*)::int as n from ${f.sql(f.tables.jobs)} where kind = ${kind} and status = 'succeeded'`
    expect(row?.n).toBe(50)
  })

  test('bad input is a 400: empty, over 100, a run listed twice, a NUL in a result', async () => {
    const claimOne = async () => {
      const kind = uniqueKind('b-bad')
      await enqueueJob(f, { kind })
      return (await f.call('POST', '/claims', { kinds: [kind], worker_id: 'w-bad', max_jobs: 1 })).body[0]
    }
    const c = await claimOne()
    const call = (runs: unknown) => f.call('POST', '/runs/complete', { worker_id: 'w-bad', runs })
    expect((await call([])).status).toBe(400)
    expect((await call(Array.from({ length: 101 }, () => ({ run_id: UNKNOWN_RUN })))).status).toBe(400)
    expect((await call([{ run_id: 'nope' }])).status).toBe(400)
    const twice = await call([{ run_id: c.run.id }, { run_id: c.run.id }])
    expect(twice.status).toBe(400)
    expect(twice.body.error).toContain('more than once')
    const nul = await call([{ run_id: c.run.id, result: { s: 'a\u0000b' } }])
    expect(nul.status).toBe(400)
    // Nothing was completed by the refused calls.
    expect((await f.call('GET', `/runs/${c.run.id}`)).body.status).toBe('running')
  })

  test('every completed job is announced and counted like a single complete', async () => {
    const kind = uniqueKind('b-metrics')
    await enqueueMany(kind, 3)
    const claimed = (await f.call('POST', '/claims', { kinds: [kind], worker_id: 'w-m', max_jobs: 3 })).body
    const seen: string[] = []
    const unsubscribe = f.deps.events.hub.subscribe((event) => {
      if (event.type === 'changes') for (const c of event.changes) if (c.kind === kind) seen.push(c.status)
    })
    try {
      await f.call('POST', '/runs/complete', {
        worker_id: 'w-m',
        runs: claimed.map((c: any) => ({ run_id: c.run.id })),
      })
      await eventually(() => seen.filter((s) => s === 'succeeded').length === 3, 4000, 'three succeeded changes')
    } finally {
      unsubscribe()
    }
    const metrics = await (await f.app.handle(new Request('http://localhost/foreman/metrics'))).text()
    const line = metrics.split('\n').find((l) => l.startsWith('foreman_jobs_terminal_total') && l.includes(kind))
    expect(line).toMatch(/ 3$/)
    const claimedLine = metrics.split('\n').find((l) => l.startsWith('foreman_jobs_claimed_total') && l.includes(kind))
    expect(claimedLine).toMatch(/ 3$/)
  })
})
