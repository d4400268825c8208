/**
 * Job dependencies (issue 13): waiting until every dependency succeeded, release
 * in the completing statement, cancel cascades, graphs by ref, reads.
 */
import { describe, expect, test } from 'bun:test'
import { claimOne, holdLock, postOk, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()

async function enqueue(body: Record<string, unknown>) {
  const res = await f.call('POST', '/jobs', body)
  expect(res.status).toBe(201)
  return res.body
}

async function runToEnd(kind: string, outcome: 'complete' | 'fail', result?: unknown) {
  const { run } = await claimOne(f, kind)
  return postOk(f, `/runs/${run.id}/${outcome}`, { worker_id: 'worker-1', result, error: 'boom' })
}

const job = async (id: string) => (await f.call('GET', `/jobs/${id}`)).body

describe('a diamond A → B, C → D', () => {
  test('D waits for B and C, runs once, and sees both results', async () => {
    const kind = uniqueKind('diamond')
    const batch = await postOk(f, '/jobs/batch', {
      jobs: [
        { ref: 'd', kind, params: { step: 'd' }, depends_on: ['b', 'c'] },
        { ref: 'b', kind, params: { step: 'b' }, depends_on: ['a'] },
        { ref: 'c', kind, params: { step: 'c' }, depends_on: ['a'] },
        { ref: 'a', kind, params: { step: 'a' } },
      ],
    })
    const { a, b, c, d } = batch.refs
    expect(batch.jobs.map((j: any) => j.job.status)).toEqual(['waiting', 'waiting', 'waiting', 'pending'])
    expect(batch.jobs[0].job.id).toBe(d)

    const first = await claimOne(f, kind)
    expect(first.job.id).toBe(a)
    expect(first.job.dependencies).toBeUndefined()
    await postOk(f, `/runs/${first.run.id}/complete`, { worker_id: 'worker-1', result: { a: 1 } })
    expect((await job(b)).status).toBe('pending')
    expect((await job(d)).status).toBe('waiting')

    const second = await claimOne(f, kind)
    const third = await claimOne(f, kind)
    expect([second.job.id, third.job.id].sort()).toEqual([b, c].sort())
    expect(second.job.dependencies).toEqual([{ id: a, kind, status: 'succeeded', result: { a: 1 } }])
    await postOk(f, `/runs/${second.run.id}/complete`, { worker_id: 'worker-1', result: { from: second.job.id } })
    expect((await job(d)).status).toBe('waiting')
    expect((await f.call('POST', '/claim', { kinds: [kind], worker_id: 'w' })).status).toBe(204)
    await postOk(f, `/runs/${third.run.id}/complete`, { worker_id: 'worker-1', result: { from: third.job.id } })

    const join = await claimOne(f, kind)
    expect(join.job.id).toBe(d)
    expect(join.job.dependencies).toEqual([
      { id: b, kind, status: 'succeeded', result: { from: b } },
      { id: c, kind, status: 'succeeded', result: { from: c } },
    ])
    expect((await job(d)).dependencies.map((x: any) => x.id)).toEqual([b, c])
    const dependents = await f.call('GET', `/jobs/${a}/dependents`)
    expect(dependents.status).toBe(200)
    expect(dependents.body.map((x: any) => x.id).sort()).toEqual([b, c].sort())
  })
})

describe('failure', () => {
  test('a failed dependency cancels its dependents transitively, naming the cause', async () => {
    const kind = uniqueKind('chain')
    const a = await enqueue({ kind })
    const b = await enqueue({ kind, depends_on: [a.id] })
    const c = await enqueue({ kind, depends_on: [b.id] })
    const cleanup = await enqueue({ kind: `${kind}-cleanup`, depends_on: [b.id], on_dependency_failure: 'run' })
    expect([b.status, c.status, cleanup.status]).toEqual(['waiting', 'waiting', 'waiting'])
    await runToEnd(kind, 'fail')
    expect(await job(b.id)).toMatchObject({ status: 'cancelled', error: `dependency ${a.id} failed` })
    expect(await job(c.id)).toMatchObject({ status: 'cancelled', error: `dependency ${b.id} cancelled` })
    expect((await job(cleanup.id)).status).toBe('pending')
  })

  test('cancelling a waiting job cancels what waits on it', async () => {
    const kind = uniqueKind('cancel')
    const a = await enqueue({ kind })
    const b = await enqueue({ kind, depends_on: [a.id] })
    const c = await enqueue({ kind, depends_on: [b.id] })
    const res = await f.call('POST', `/jobs/${b.id}/cancel`)
    expect(res.body.status).toBe('cancelled')
    expect(await job(c.id)).toMatchObject({ status: 'cancelled', error: `dependency ${b.id} cancelled` })
    expect((await job(a.id)).status).toBe('pending')
  })

  test('a dependency that already failed cancels the new job at once', async () => {
    const kind = uniqueKind('late')
    const a = await enqueue({ kind })
    await runToEnd(kind, 'fail')
    const b = await enqueue({ kind, depends_on: [a.id] })
    expect(b).toMatchObject({ status: 'cancelled', error: `dependency ${a.id} failed` })
  })
})

describe('refusals', () => {
  test('a cycle is refused with a 400 naming a ref on it, and nothing is stored', async () => {
    const kind = uniqueKind('cycle')
    const res = await f.call('POST', '/jobs/batch', {
      jobs: [
        { ref: 'x', kind, depends_on: ['z'] },
        { ref: 'y', kind, depends_on: ['x'] },
        { ref: 'z', kind, depends_on: ['y'] },
      ],
    })
    expect(res.status).toBe(400)
    expect(res.body.error).toMatch(/cycle/)
    expect(res.body.field).toMatch(/^jobs\.[012]\.depends_on$/)
    expect((await f.call('GET', `/jobs?kind=${kind}`)).body).toEqual([])
  })

  test('unknown refs and unknown job ids are 400s naming the entry', async () => {
    const kind = uniqueKind('unknown')
    const bad = await f.call('POST', '/jobs/batch', { jobs: [{ kind, depends_on: ['nope'] }] })
    expect(bad.status).toBe(400)
    expect(bad.body.field).toBe('jobs.0.depends_on.0')
    const missing = await f.call('POST', '/jobs', { kind, depends_on: ['job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D'] })
    expect(missing.status).toBe(400)
    expect(missing.body.field).toBe('depends_on.0')
    expect((await f.call('GET', `/jobs?kind=${kind}`)).body).toEqual([])
  })
})

test('a retried graph submission creates nothing twice', async () => {
  const kind = uniqueKind('again')
  const graph = {
    jobs: [
      { ref: 'a', kind, idempotency_key: 'a' },
      { ref: 'b', kind, idempotency_key: 'b', depends_on: ['a'] },
    ],
  }
  const first = await postOk(f, '/jobs/batch', graph)
  const second = await postOk(f, '/jobs/batch', graph)
  expect(second.refs).toEqual(first.refs)
  expect(second.jobs.map((j: any) => j.created)).toEqual([false, false])
  expect((await f.call('GET', `/jobs?kind=${kind}`)).body).toHaveLength(2)
})

test('a released job of a kind with limits is claimed through its key', async () => {
  const kind = uniqueKind('limited')
  expect((await f.call('PUT', `/limits/${kind}`, { max_active_per_key: 1 })).status).toBe(200)
  const parent = await enqueue({ kind: `${kind}-parent` })
  const child = await enqueue({ kind, concurrency_key: 'tenant-1', depends_on: [parent.id] })
  // A claim of the kind while the child waits finds its key empty and drops the key's slot row.
  expect((await f.call('POST', '/claim', { kinds: [kind], worker_id: 'worker-1' })).status).toBe(204)
  const [slots] = await f.sql<{ n: number }[]>`
    select count(*)::int as n from ${f.sql(f.tables.flowSlots)} where kind = ${kind}`
  expect(slots?.n).toBe(0)
  await runToEnd(`${kind}-parent`, 'complete')
  const claimed = await claimOne(f, kind)
  expect(claimed.job.id).toBe(child.id)
})

describe('races', () => {
  /** Resolves once `n` backends of this database wait on a lock. */
  async function lockWaiters(n: number) {
    for (let i = 0; i < 200; i++) {
      const [row] = await f.sql<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'`
      if ((row?.n ?? 0) >= n) return
      await Bun.sleep(20)
    }
    throw new Error(`fewer than ${n} backends ever waited on a lock`)
  }

  test('a dependent enqueued while its dependency completes is released all the same', async () => {
    // The completion's snapshot is taken before the dependent commits, and it waits
    // on the dependency's row, which the enqueue locked first: the dependent is on
    // the list the completion reads under that lock, yet invisible to it.
    const kind = uniqueKind('race')
    const parent = await enqueue({ kind })
    const { run } = await claimOne(f, kind)
    const release = await holdLock(f, (tx) => tx`select 1 from ${tx(f.tables.jobs)} where id = ${parent.id} for update`)
    const enqueued = f.call('POST', '/jobs', { kind: `${kind}-child`, depends_on: [parent.id] })
    await lockWaiters(1)
    const completed = f.call('POST', `/runs/${run.id}/complete`, { worker_id: 'worker-1' })
    await lockWaiters(2)
    await release()
    const [child, done] = await Promise.all([enqueued, completed])
    expect(child.status).toBe(201)
    expect(done.status).toBe(200)
    expect((await job(child.body.id)).status).toBe('pending')
  })

  test('a job enqueued onto a waiting job while a cascade cancels it is cancelled too', async () => {
    // The cascade's first statement reads the dependents lists before the enqueue
    // commits; the cancelled job's own firing of the trigger reads them after.
    const kind = uniqueKind('cascade-race')
    const a = await enqueue({ kind })
    const b = await enqueue({ kind: `${kind}-b`, depends_on: [a.id] })
    const { run } = await claimOne(f, kind)
    const release = await holdLock(f, (tx) => tx`select 1 from ${tx(f.tables.jobs)} where id = ${b.id} for update`)
    const enqueued = f.call('POST', '/jobs', { kind: `${kind}-c`, depends_on: [b.id] })
    await lockWaiters(1)
    const failed = f.call('POST', `/runs/${run.id}/fail`, { worker_id: 'worker-1', error: 'boom' })
    await lockWaiters(2)
    await release()
    const [c, done] = await Promise.all([enqueued, failed])
    expect(c.status).toBe(201)
    expect(done.body.status).toBe('failed')
    expect(await job(b.id)).toMatchObject({ status: 'cancelled', error: `dependency ${a.id} failed` })
    expect(await job(c.body.id)).toMatchObject({ status: 'cancelled', error: `dependency ${b.id} cancelled` })
  })
})
