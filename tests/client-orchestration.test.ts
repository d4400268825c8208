/**
 * The client's orchestration surface against a real server (issue 13): jobs that
 * wait for others (`depends_on`, a batch's `ref`s), what a join sees in
 * `ctx.dependencies`, `listJobDependents`, a failure cancelling dependents and
 * `retry(..., { cascade: true })` re-arming them, `on_dependency_failure: 'run'`,
 * `unique_while_active` and debounce. Written against the documented API before
 * the server side landed: these fail until it does.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { type Dependency, ForemanClient, ForemanError, type Job, Worker } from '../src/client'
import { uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()
const foreman = new ForemanClient({ baseUrl: f.serve() })
const workers: Worker[] = []
const UNKNOWN_JOB = 'job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D'

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop(100)))
})

/** A worker with short leases and waits, stopped after each test. */
function worker(concurrency = 1) {
  const w = new Worker(foreman, { leaseSeconds: 3, waitSeconds: 1, graceMs: 2000, concurrency })
  workers.push(w)
  return w
}

/** Polls the job until `done` holds (at most `ms`). */
async function until(id: string, done: (job: Job) => boolean, ms = 10_000): Promise<Job> {
  const deadline = Date.now() + ms
  for (;;) {
    const job = await foreman.getJob(id)
    if (done(job)) return job
    if (Date.now() > deadline) throw new Error(`job ${id} is still ${job.status}`)
    await Bun.sleep(25)
  }
}
const succeeded = (job: Job) => job.status === 'succeeded'

/** Claims the one claimable job of `kind` and fails it for good. */
async function failOnly(kind: string): Promise<void> {
  const claimed = await foreman.claim({ kinds: [kind], worker_id: 'w-orch' })
  if (!claimed) throw new Error(`nothing of ${kind} to claim`)
  await foreman.fail(claimed.run.id, { worker_id: 'w-orch', error: 'boom', retryable: false })
}

/** Claims the one claimable job of `kind` and completes it with `result`. */
async function completeOnly(kind: string, result: unknown = null): Promise<Job> {
  const claimed = await foreman.claim({ kinds: [kind], worker_id: 'w-orch' })
  if (!claimed) throw new Error(`nothing of ${kind} to claim`)
  return foreman.complete(claimed.run.id, { worker_id: 'w-orch', result })
}

const ids = (jobs: { id: string }[]) => jobs.map((j) => j.id).sort()
const byId = (a: Dependency, b: Dependency) => (a.id < b.id ? -1 : 1)
/** A dependency as a dependent sees it. */
const dep = (job: Job, status: Dependency['status'], result: unknown = null): Dependency => ({
  id: job.id,
  kind: job.kind,
  status,
  result,
})

describe('dependencies through enqueue', () => {
  test('a diamond A → B, C → D: each step sees its dependencies’ results; D runs once, after both', async () => {
    const kind = uniqueKind('orch-diamond')
    const a = (await foreman.enqueue({ kind, params: { node: 'A' } })).job
    const b = (await foreman.enqueue({ kind, params: { node: 'B' }, depends_on: [a.id] })).job
    const c = (await foreman.enqueue({ kind, params: { node: 'C' }, depends_on: [a.id] })).job
    const d = (await foreman.enqueue({ kind, params: { node: 'D' }, depends_on: [b.id, c.id] })).job
    expect([a, b, c, d].map((j) => j.status)).toEqual(['pending', 'waiting', 'waiting', 'waiting'])
    expect(ids(await foreman.listJobDependents(a.id))).toEqual(ids([b, c]))
    expect(ids(await foreman.listJobDependents(b.id))).toEqual([d.id])
    expect(await foreman.listJobDependents(d.id)).toEqual([])
    expect((await foreman.getJob(d.id)).dependencies?.sort(byId)).toEqual(
      [dep(b, 'waiting'), dep(c, 'waiting')].sort(byId),
    )

    const seen = new Map<string, Dependency[]>()
    const onJob = new Map<string, Dependency[] | undefined>()
    worker()
      .handle(kind, (job, ctx) => {
        const node = (job.params as { node: string }).node
        seen.set(node, [...ctx.dependencies].sort(byId))
        onJob.set(node, job.dependencies)
        return { node, from: ctx.dependencies.map((dep) => (dep.result as { node: string }).node).sort() }
      })
      .start()

    const done = await until(d.id, succeeded)
    expect(done.result).toEqual({ node: 'D', from: ['B', 'C'] })
    expect(done.attempt_count).toBe(1)
    expect(seen.get('A')).toEqual([])
    expect(seen.get('B')).toEqual([dep(a, 'succeeded', { node: 'A', from: [] })])
    expect(seen.get('C')).toEqual([dep(a, 'succeeded', { node: 'A', from: [] })])
    expect(seen.get('D')).toEqual(
      [dep(b, 'succeeded', { node: 'B', from: ['A'] }), dep(c, 'succeeded', { node: 'C', from: ['A'] })].sort(byId),
    )
    // The claimed job carries the list the context hands over; absent on the job without any.
    expect(onJob.get('A')).toBeUndefined()
    expect(onJob.get('D')?.sort(byId)).toEqual(seen.get('D'))
    // Every step ran once: one run each.
    for (const job of [a, b, c, d]) expect(await foreman.listJobRuns(job.id)).toHaveLength(1)
  })

  test('a fan-in on a Worker with concurrency 4 (claims and completion hand-offs): the join runs once and sees all 6 results', async () => {
    const kind = uniqueKind('orch-fanin')
    const join = uniqueKind('orch-join')
    const children = []
    for (let i = 0; i < 6; i++) children.push((await foreman.enqueue({ kind, params: { i } })).job)
    const joined = (await foreman.enqueue({ kind: join, depends_on: children.map((c) => c.id) })).job
    const runs: Dependency[][] = []
    worker(4)
      .handle(kind, async (job) => {
        await Bun.sleep(20)
        return (job.params as { i: number }).i * 10
      })
      .handle(join, (_job, ctx) => {
        runs.push(ctx.dependencies)
        return ctx.dependencies.reduce((sum, dep) => sum + (dep.result as number), 0)
      })
      .start()
    expect(await until(joined.id, succeeded)).toMatchObject({ result: 150, attempt_count: 1 })
    expect(runs).toHaveLength(1)
    expect(ids(runs[0]!)).toEqual(ids(children))
    expect(runs[0]!.every((dep) => dep.kind === kind && dep.status === 'succeeded')).toBe(true)
  })

  test('dependencies already ended decide at enqueue: succeeded → pending, failed → cancelled with error', async () => {
    const kind = uniqueKind('orch-ended')
    const ok = (await foreman.enqueue({ kind })).job
    await completeOnly(kind, 'fine')
    const bad = (await foreman.enqueue({ kind })).job
    await failOnly(kind)
    const ready = (await foreman.enqueue({ kind: uniqueKind('orch-ready'), depends_on: [ok.id] })).job
    expect(ready).toMatchObject({ status: 'pending', error: null })
    const doomed = (await foreman.enqueue({ kind: uniqueKind('orch-doomed'), depends_on: [ok.id, bad.id] })).job
    expect(doomed).toMatchObject({ status: 'cancelled', error: `dependency ${bad.id} failed` })
  })

  test('an unknown dependency is a ForemanError 400 naming the entry; the dependents of an unknown job a 404', async () => {
    const refused = await foreman
      .enqueue({ kind: uniqueKind('orch-unknown'), depends_on: [UNKNOWN_JOB] })
      .catch((e) => e)
    expect(refused).toBeInstanceOf(ForemanError)
    expect(refused.status).toBe(400)
    expect(refused.message).toContain('depends_on.0')
    expect(await foreman.listJobDependents(UNKNOWN_JOB).catch((e) => e.status)).toBe(404)
  })
})

describe('dependencies in a batch, by ref', () => {
  test('refs map each ref to its job; items wait on refs and on stored ids alike', async () => {
    const kind = uniqueKind('orch-refs')
    const stored = (await foreman.enqueue({ kind })).job
    const graph = await foreman.enqueueGraph([
      { kind, ref: 'extract', params: { step: 1 } },
      { kind, ref: 'transform', depends_on: ['extract'] },
      { kind, ref: 'load', depends_on: ['transform', stored.id] },
      { kind, params: { unnamed: true } },
    ])
    const [extract, transform, load, unnamed] = graph.jobs.map((o) => o.job) as [Job, Job, Job, Job]
    expect(graph.refs).toEqual({ extract: extract.id, transform: transform.id, load: load.id })
    expect(graph.jobs.map((o) => o.created)).toEqual([true, true, true, true])
    expect([extract, transform, load, unnamed].map((j) => j.status)).toEqual([
      'pending',
      'waiting',
      'waiting',
      'pending',
    ])
    expect(ids(await foreman.listJobDependents(stored.id))).toEqual([load.id])
    expect(ids(await foreman.listJobDependents(extract.id))).toEqual([transform.id])
    expect(ids((await foreman.getJob(load.id)).dependencies ?? [])).toEqual(ids([transform, stored]))
  })

  test('a cycle refuses the whole batch with a ForemanError 400 naming a ref on it; nothing is stored', async () => {
    const kind = uniqueKind('orch-cycle')
    const refused = await foreman
      .enqueueGraph([
        { kind, ref: 'start' },
        { kind, ref: 'loop-x', depends_on: ['start', 'loop-y'] },
        { kind, ref: 'loop-y', depends_on: ['loop-x'] },
      ])
      .catch((e) => e)
    expect(refused).toBeInstanceOf(ForemanError)
    expect(refused.status).toBe(400)
    expect(refused.message).toMatch(/loop-x|loop-y/)
    expect(await foreman.listJobs({ kind })).toEqual([])
  })
})

describe('a dependency that fails', () => {
  test('cancels its dependents transitively; retry with cascade re-arms them and the chain then runs', async () => {
    const kind = uniqueKind('orch-cascade')
    const a = (await foreman.enqueue({ kind, max_attempts: 1 })).job
    const b = (await foreman.enqueue({ kind, depends_on: [a.id] })).job
    const c = (await foreman.enqueue({ kind, depends_on: [b.id] })).job
    await failOnly(kind)
    expect(await foreman.getJob(b.id)).toMatchObject({ status: 'cancelled', error: `dependency ${a.id} failed` })
    expect(await foreman.getJob(c.id)).toMatchObject({ status: 'cancelled', error: `dependency ${b.id} cancelled` })

    expect(await foreman.retry(a.id, { cascade: true })).toMatchObject({ id: a.id, status: 'pending' })
    expect((await foreman.getJob(b.id)).status).toBe('waiting')
    expect((await foreman.getJob(c.id)).status).toBe('waiting')
    let order: string[] = []
    worker()
      .handle(kind, (job) => {
        order = [...order, job.id]
        return job.id
      })
      .start()
    await until(c.id, succeeded)
    expect(order).toEqual([a.id, b.id, c.id])
  })

  test('retry without cascade brings back the dependency only', async () => {
    const kind = uniqueKind('orch-nocascade')
    const a = (await foreman.enqueue({ kind })).job
    const b = (await foreman.enqueue({ kind, depends_on: [a.id] })).job
    await failOnly(kind)
    expect((await foreman.retry(a.id)).status).toBe('pending')
    await completeOnly(kind)
    expect(await foreman.getJob(b.id)).toMatchObject({ status: 'cancelled', error: `dependency ${a.id} failed` })
  })

  test("on_dependency_failure 'run': the clean-up step runs and sees the failure in its dependencies", async () => {
    const kind = uniqueKind('orch-failing')
    const cleanup = uniqueKind('orch-cleanup')
    const a = (await foreman.enqueue({ kind })).job
    const tidy = (await foreman.enqueue({ kind: cleanup, depends_on: [a.id], on_dependency_failure: 'run' })).job
    expect(tidy.status).toBe('waiting')
    await failOnly(kind)
    const claimed = await foreman.claim({ kinds: [cleanup], worker_id: 'w-orch' })
    expect(claimed?.job.id).toBe(tidy.id)
    expect(claimed?.job.dependencies).toEqual([dep(a, 'failed')])
  })
})

describe('lifecycle controls', () => {
  test('unique_while_active: the key holds while the job is live and is free again once it has ended', async () => {
    const kind = uniqueKind('orch-unique')
    const body = { kind, idempotency_key: 'nightly-report', unique_while_active: true }
    const first = await foreman.enqueue(body)
    expect(first.created).toBe(true)
    expect(await foreman.enqueue(body)).toEqual({ created: false, job: first.job })
    await completeOnly(kind)
    const next = await foreman.enqueue(body)
    expect(next.created).toBe(true)
    expect(next.job.id).not.toBe(first.job.id)
  })

  test('debounce: a later enqueue moves the job not yet due (new params, due later); a due one is a duplicate', async () => {
    const kind = uniqueKind('orch-debounce')
    // The first debounced enqueue creates the job, due debounce_seconds from now.
    const first = await foreman.enqueue({ kind, idempotency_key: 'd', params: { n: 1 }, debounce_seconds: 60 })
    expect(first.created).toBe(true)
    const before = Date.now()
    const moved = await foreman.enqueue({ kind, idempotency_key: 'd', params: { n: 2 }, debounce_seconds: 30 })
    expect(moved).toMatchObject({ created: false, debounced: true, job: { id: first.job.id, params: { n: 2 } } })
    expect('debounced' in moved.job).toBe(false)
    const dueIn = (Date.parse(moved.job.scheduled_at!) - before) / 1000
    expect(dueIn).toBeGreaterThan(29)
    expect(dueIn).toBeLessThan(31)

    const dueKind = uniqueKind('orch-debounce-due')
    const due = await foreman.enqueue({
      kind: dueKind,
      idempotency_key: 'd',
      params: { n: 1 },
      unique_while_active: true,
    })
    const dup = await foreman.enqueue({ kind: dueKind, idempotency_key: 'd', params: { n: 2 }, debounce_seconds: 30 })
    expect(dup).toEqual({ created: false, job: due.job })
  })
})
