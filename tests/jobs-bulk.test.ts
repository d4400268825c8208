/**
 * POST /jobs/bulk: cancel, retry and delete on a filter or a list of ids, bounded
 * per call with `more`, dry runs, refusals, the events and metrics that follow,
 * and a bulk cancel racing running workers.
 */
import { describe, expect, test } from 'bun:test'
import { newJobId } from '../src/ids'
import { claimOne, enqueueJob, postOk, postTimed, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture({ eventsPollSec: 3600 })
const base = f.serve()

const bulk = (body: Record<string, unknown>) => f.call('POST', '/jobs/bulk', body)

/** Statuses (and cancel_requested) of these jobs, by id. */
async function states(ids: string[]) {
  const rows = await f.sql<{ id: string; status: string; cancel_requested: boolean }[]>`
    select id, status, cancel_requested from ${f.sql(f.tables.jobs)} where id = any(${ids}::text[])`
  return Object.fromEntries(rows.map((r) => [r.id, r.cancel_requested ? `${r.status}+requested` : r.status]))
}

/** Inserts `n` jobs of `kind` straight into the table, in `status` (terminal ones completed now). */
async function insertJobs(kind: string, n: number, status = 'pending'): Promise<string[]> {
  const ids = Array.from({ length: n }, () => newJobId())
  await f.sql`
    insert into ${f.sql(f.tables.jobs)} (id, kind, status, completed_at)
    select id, ${kind}, ${status}, case when ${status} in ('pending', 'active') then null else now() end
    from unnest(${ids}::text[]) as ids(id)`
  return ids
}

/** The value of foreman_jobs_terminal_total for a kind and status. */
async function terminalCount(kind: string, status: string): Promise<number> {
  const text = await (await f.app.handle(new Request('http://localhost/foreman/metrics'))).text()
  const line = text
    .split('\n')
    .find(
      (l) =>
        l.startsWith('foreman_jobs_terminal_total{') &&
        l.includes(`kind="${kind}"`) &&
        l.includes(`status="${status}"`),
    )
  return line ? Number(line.split(' ').at(-1)) : 0
}

/** Records every change the hub announces. */
function hubLog() {
  const changes: { id: string; status: string }[] = []
  const stop = f.deps.events.hub.subscribe((e) => {
    if (e.type === 'changes') changes.push(...e.changes)
  })
  return { changes, stop }
}

describe('cancel', () => {
  test('on a filter: pending → cancelled, active → cancel_requested, others untouched; announced and counted', async () => {
    const kind = uniqueKind('bulk-cancel')
    const pending = [await enqueueJob(f, { kind }), await enqueueJob(f, { kind }), await enqueueJob(f, { kind })]
    const active = await enqueueJob(f, { kind, priority: 10 })
    const { run } = await claimOne(f, kind, 'w-bulk')
    expect(run.job_id).toBe(active.id)
    const done = await enqueueJob(f, { kind, priority: 10 })
    const claimed = await claimOne(f, kind, 'w-bulk')
    await postOk(f, `/runs/${claimed.run.id}/complete`, { worker_id: 'w-bulk' })
    const otherKind = await enqueueJob(f)
    const before = await terminalCount(kind, 'cancelled')
    const hub = hubLog()

    const res = await bulk({ action: 'cancel', filter: { kind } })
    hub.stop()
    expect(res.status).toBe(200)
    expect(res.body).toEqual({ matched: 4, changed: 4, more: false })
    const ids = [...pending.map((j) => j.id), active.id, done.id, otherKind.id]
    expect(await states(ids)).toEqual({
      [pending[0].id]: 'cancelled+requested',
      [pending[1].id]: 'cancelled+requested',
      [pending[2].id]: 'cancelled+requested',
      [active.id]: 'active+requested',
      [done.id]: 'succeeded',
      [otherKind.id]: 'pending',
    })
    expect(hub.changes.map((c) => `${c.id}:${c.status}`).sort()).toEqual(
      [...pending.map((j) => `${j.id}:cancelled`), `${active.id}:active`].sort(),
    )
    // Only the jobs that ended here are terminal; the active one ends when its worker fails out.
    expect((await terminalCount(kind, 'cancelled')) - before).toBe(3)
    const beat = await postOk(f, `/runs/${run.id}/heartbeat`, { worker_id: 'w-bulk' })
    expect(beat.cancel_requested).toBe(true)

    // Nothing is left to cancel: a repeat matches nothing.
    expect((await bulk({ action: 'cancel', filter: { kind } })).body).toEqual({ matched: 0, changed: 0, more: false })
  })

  test('on a list of ids: only the ids the action applies to are matched; unknown ids are ignored', async () => {
    const kind = uniqueKind('bulk-ids')
    const a = await enqueueJob(f, { kind })
    const b = await enqueueJob(f, { kind })
    const cancelled = await postOk(f, `/jobs/${(await enqueueJob(f, { kind })).id}/cancel`, {})
    const res = await bulk({ action: 'cancel', ids: [a.id, cancelled.id, 'job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D'] })
    expect(res.body).toEqual({ matched: 1, changed: 1, more: false })
    expect(await states([a.id, b.id])).toEqual({ [a.id]: 'cancelled+requested', [b.id]: 'pending' })
  })

  test('filters combine: status, queue, service and params containment', async () => {
    const kind = uniqueKind('bulk-filter')
    const hit = await enqueueJob(f, { kind, queue: 'q1', service: 'billing', params: { customer: 42, plan: 'pro' } })
    const otherCustomer = await enqueueJob(f, { kind, queue: 'q1', service: 'billing', params: { customer: 7 } })
    const otherQueue = await enqueueJob(f, { kind, queue: 'q2', service: 'billing', params: { customer: 42 } })
    const otherService = await enqueueJob(f, { kind, queue: 'q1', service: 'mail', params: { customer: 42 } })
    const filter = { kind, status: 'pending', queue: 'q1', service: 'billing', params: { customer: 42 } }
    expect((await bulk({ action: 'cancel', filter })).body).toEqual({ matched: 1, changed: 1, more: false })
    expect(await states([hit.id, otherCustomer.id, otherQueue.id, otherService.id])).toEqual({
      [hit.id]: 'cancelled+requested',
      [otherCustomer.id]: 'pending',
      [otherQueue.id]: 'pending',
      [otherService.id]: 'pending',
    })
  })

  test('a job another statement holds is matched but not changed, and left for the next call (more)', async () => {
    const kind = uniqueKind('bulk-busy')
    const free = await enqueueJob(f, { kind })
    const held = await enqueueJob(f, { kind })
    let release!: () => void
    let locked!: () => void
    const isLocked = new Promise<void>((resolve) => {
      locked = resolve
    })
    const tx = f.sql.begin(async (tx) => {
      await tx`select 1 from ${tx(f.tables.jobs)} where id = ${held.id} for update`
      locked()
      await new Promise<void>((resolve) => {
        release = resolve
      })
    })
    await isLocked
    // Answers while the lock is held: a bulk call never waits on a row.
    const first = await bulk({ action: 'cancel', filter: { kind } })
    expect(first.body).toEqual({ matched: 2, changed: 1, more: true })
    expect(await states([free.id, held.id])).toEqual({ [free.id]: 'cancelled+requested', [held.id]: 'pending' })
    release()
    await tx
    expect((await bulk({ action: 'cancel', filter: { kind } })).body).toEqual({ matched: 1, changed: 1, more: false })
    expect((await states([held.id]))[held.id]).toBe('cancelled+requested')
  })
})

describe('retry and delete', () => {
  test('retry: failed and cancelled jobs go back to pending by the one-job rule; announced', async () => {
    const kind = uniqueKind('bulk-retry')
    const failed = await enqueueJob(f, { kind })
    const { run } = await claimOne(f, kind, 'w-r')
    await postOk(f, `/runs/${run.id}/fail`, { worker_id: 'w-r', error: 'boom' })
    const cancelled = await postOk(f, `/jobs/${(await enqueueJob(f, { kind })).id}/cancel`, {})
    const pending = await enqueueJob(f, { kind })
    const hub = hubLog()
    const res = await bulk({ action: 'retry', filter: { kind } })
    hub.stop()
    expect(res.body).toEqual({ matched: 2, changed: 2, more: false })
    const after = (await f.call('GET', `/jobs/${failed.id}`)).body
    expect(after).toMatchObject({ status: 'pending', attempt_count: 1, max_attempts: 2, cancel_requested: false })
    expect(after.completed_at ?? null).toBeNull()
    expect(await states([failed.id, cancelled.id, pending.id])).toEqual({
      [failed.id]: 'pending',
      [cancelled.id]: 'pending',
      [pending.id]: 'pending',
    })
    expect(hub.changes.map((c) => `${c.id}:${c.status}`).sort()).toEqual(
      [`${failed.id}:pending`, `${cancelled.id}:pending`].sort(),
    )
    expect((await claimOne(f, kind, 'w-r2')).run.attempt).toBeGreaterThanOrEqual(1)
  })

  test('delete: terminal jobs and their runs go, pending and active stay; announced as deleted', async () => {
    const kind = uniqueKind('bulk-delete')
    const succeeded = await enqueueJob(f, { kind })
    const { run } = await claimOne(f, kind, 'w-d')
    await postOk(f, `/runs/${run.id}/complete`, { worker_id: 'w-d' })
    const cancelled = await postOk(f, `/jobs/${(await enqueueJob(f, { kind })).id}/cancel`, {})
    const pending = await enqueueJob(f, { kind })
    const hub = hubLog()
    const res = await bulk({ action: 'delete', filter: { kind } })
    hub.stop()
    expect(res.body).toEqual({ matched: 2, changed: 2, more: false })
    expect(await states([succeeded.id, cancelled.id, pending.id])).toEqual({ [pending.id]: 'pending' })
    expect((await f.call('GET', `/runs/${run.id}`)).status).toBe(404)
    expect(hub.changes.map((c) => `${c.id}:${c.status}`).sort()).toEqual(
      [`${succeeded.id}:deleted`, `${cancelled.id}:deleted`].sort(),
    )
  })
})

describe('limits, more and dry runs', () => {
  test('more than `limit` jobs: each call moves at most limit, oldest first, and repeating until more is false reaches them all', async () => {
    const kind = uniqueKind('bulk-more')
    const ids = (await insertJobs(kind, 25, 'failed')).sort()
    const answers = []
    for (let call = 0; call < 10; call++) {
      const res = await bulk({ action: 'retry', filter: { kind }, limit: 10 })
      expect(res.status).toBe(200)
      answers.push(res.body)
      if (!res.body.more) break
    }
    expect(answers).toEqual([
      { matched: 10, changed: 10, more: true },
      { matched: 10, changed: 10, more: true },
      { matched: 5, changed: 5, more: false },
    ])
    expect(Object.values(await states(ids))).toEqual(Array(25).fill('pending'))
  })

  test('the default limit is 10,000: 10,001 jobs take two calls', async () => {
    const kind = uniqueKind('bulk-default')
    await insertJobs(kind, 10_001, 'succeeded')
    expect((await bulk({ action: 'delete', filter: { kind }, dry_run: true })).body).toEqual({
      matched: 10_000,
      changed: 0,
      more: true,
    })
    expect((await bulk({ action: 'delete', filter: { kind } })).body).toEqual({
      matched: 10_000,
      changed: 10_000,
      more: true,
    })
    expect((await bulk({ action: 'delete', filter: { kind } })).body).toEqual({ matched: 1, changed: 1, more: false })
    const [left] = await f.sql<{ n: number }[]>`
      select count(*)::int as n from ${f.sql(f.tables.jobs)} where kind = ${kind}`
    expect(left?.n).toBe(0)
  })

  test('dry_run counts what would match (up to limit) and changes nothing', async () => {
    const kind = uniqueKind('bulk-dry')
    const ids = await insertJobs(kind, 7, 'pending')
    await insertJobs(kind, 3, 'succeeded')
    const snapshot = async () =>
      f.sql`select * from ${f.sql(f.tables.jobs)} where kind = ${kind} order by id`.then((rows) => [...rows])
    const before = await snapshot()
    const hub = hubLog()
    expect((await bulk({ action: 'cancel', filter: { kind }, dry_run: true })).body).toEqual({
      matched: 7,
      changed: 0,
      more: false,
    })
    expect((await bulk({ action: 'cancel', filter: { kind }, dry_run: true, limit: 5 })).body).toEqual({
      matched: 5,
      changed: 0,
      more: true,
    })
    expect((await bulk({ action: 'delete', ids, dry_run: true })).body).toEqual({ matched: 0, changed: 0, more: false })
    hub.stop()
    expect(await snapshot()).toEqual(before)
    expect(hub.changes).toEqual([])
  })
})

describe('refusals (400 naming the field)', () => {
  test.each([
    ['both filter and ids', { action: 'cancel', filter: {}, ids: [] }, 'ids'],
    ['neither filter nor ids', { action: 'cancel' }, 'filter'],
    ['an unknown action', { action: 'purge', filter: {} }, 'action'],
    ['a misspelt dry_run', { action: 'delete', filter: {}, dryrun: true }, 'dryrun'],
    ['an unknown filter field', { action: 'delete', filter: { stauts: 'failed' } }, 'stauts'],
    ['limit 0', { action: 'cancel', filter: {}, limit: 0 }, 'limit'],
    ['limit 10,001', { action: 'cancel', filter: {}, limit: 10_001 }, 'limit'],
    ['a limit as a string', { action: 'cancel', filter: {}, limit: '5' }, 'limit'],
    ['a malformed id', { action: 'cancel', ids: ['nope'] }, 'ids'],
    ['params that is not an object', { action: 'cancel', filter: { params: [1] } }, 'params'],
    ['an unknown status', { action: 'cancel', filter: { status: 'done' } }, 'status'],
  ])('%s', async (_name, body, field) => {
    const res = await bulk(body)
    expect(res.status).toBe(400)
    expect(res.body.error).toContain(field)
  })

  test('more than 10,000 ids', async () => {
    const ids = Array.from({ length: 10_001 }, () => newJobId())
    const res = await bulk({ action: 'delete', ids })
    expect(res.status).toBe(400)
    expect(res.body.error).toContain('ids')
  })
})

describe('bulk cancel against running workers', () => {
  test('every job ends coherent: none lost, none double-finished, no 500', async () => {
    const kind = uniqueKind('bulk-race')
    const N = 400
    const ids = await insertJobs(kind, N)
    const statuses: number[] = []
    const pace = () => Bun.sleep(Math.random() * 4)

    /** Claims one at a time: heartbeat twice, then complete, or fail out when cancel is requested. */
    const single = async (worker: string) => {
      for (;;) {
        const claim = await postTimed(base, '/claim', { kinds: [kind], worker_id: worker })
        statuses.push(claim.status)
        if (claim.status !== 200) return
        const runId = claim.body.run.id
        let cancel = false
        for (let beat = 0; beat < 2 && !cancel; beat++) {
          await pace()
          const hb = await postTimed(base, `/runs/${runId}/heartbeat`, { worker_id: worker, progress_current: beat })
          statuses.push(hb.status)
          cancel = hb.body.cancel_requested === true
        }
        const end = cancel
          ? await postTimed(base, `/runs/${runId}/fail`, { worker_id: worker, error: 'cancelled' })
          : await postTimed(base, `/runs/${runId}/complete`, { worker_id: worker })
        statuses.push(end.status)
      }
    }
    /** Claims five at a time and completes them in one batch (runs and jobs locked in no set order). */
    const batched = async (worker: string) => {
      for (;;) {
        const claim = await postTimed(base, '/claims', { kinds: [kind], worker_id: worker, max_jobs: 5 })
        statuses.push(claim.status)
        if (claim.status !== 200 || claim.body.length === 0) return
        await pace()
        const toComplete: string[] = []
        for (const { run } of claim.body) {
          const hb = await postTimed(base, `/runs/${run.id}/heartbeat`, { worker_id: worker })
          statuses.push(hb.status)
          if (hb.body.cancel_requested) {
            statuses.push((await postTimed(base, `/runs/${run.id}/fail`, { worker_id: worker, error: 'x' })).status)
          } else toComplete.push(run.id)
        }
        if (toComplete.length === 0) continue
        const done = await postTimed(base, '/runs/complete', {
          worker_id: worker,
          runs: toComplete.map((run_id) => ({ run_id })),
        })
        statuses.push(done.status, ...done.body.results.map((r: { status: number }) => r.status))
      }
    }
    const workers = [
      ...Array.from({ length: 3 }, (_, i) => single(`w-single-${i}`)),
      ...Array.from({ length: 3 }, (_, i) => batched(`w-batch-${i}`)),
    ]
    // Let the workers get going, then cancel everything, 25 jobs a call, until nothing is left.
    for (let i = 0; i < 500; i++) {
      const [row] = await f.sql<{ n: number }[]>`
        select count(*)::int as n from ${f.sql(f.tables.jobs)} where kind = ${kind} and status <> 'pending'`
      if ((row?.n ?? 0) >= 20) break
      await Bun.sleep(5)
    }
    const answers: { matched: number; changed: number; more: boolean }[] = []
    for (let call = 0; call < 1000; call++) {
      const res = await postTimed(base, '/jobs/bulk', { action: 'cancel', filter: { kind }, limit: 25 })
      statuses.push(res.status)
      expect(res.status).toBe(200)
      answers.push(res.body)
      if (!res.body.more) break
    }
    expect(answers.at(-1)?.more).toBe(false)
    // None lost: once bulk says nothing is left, no job is pending or running un-cancelled.
    const [uncancelled] = await f.sql<{ n: number }[]>`
      select count(*)::int as n from ${f.sql(f.tables.jobs)}
      where kind = ${kind} and (status = 'pending' or (status = 'active' and not cancel_requested))`
    expect(uncancelled?.n).toBe(0)
    await Promise.all(workers)

    expect(statuses.filter((s) => s !== 200 && s !== 204)).toEqual([])
    const jobs = await f.sql<{ id: string; status: string; attempt_count: number; cancel_requested: boolean }[]>`
      select id, status, attempt_count, cancel_requested from ${f.sql(f.tables.jobs)} where kind = ${kind}`
    expect(jobs.length).toBe(N)
    expect(new Set(jobs.map((j) => j.id))).toEqual(new Set(ids))
    const byStatus = (s: string) => jobs.filter((j) => j.status === s).length
    expect(byStatus('succeeded') + byStatus('cancelled')).toBe(N)
    expect(byStatus('cancelled')).toBeGreaterThan(0)
    // A cancelled job was cancel-requested; a succeeded one ran once.
    expect(jobs.filter((j) => j.status === 'cancelled' && !j.cancel_requested)).toEqual([])
    const runs = await f.sql<{ job_id: string; n: number; running: number; last: string }[]>`
      select r.job_id, count(*)::int as n, count(*) filter (where r.status = 'running')::int as running,
             (array_agg(r.status order by r.attempt desc))[1] as last
      from ${f.sql(f.tables.runs)} r join ${f.sql(f.tables.jobs)} j on j.id = r.job_id
      where j.kind = ${kind} group by r.job_id`
    const runsOf = new Map(runs.map((r) => [r.job_id, r]))
    for (const job of jobs) {
      const r = runsOf.get(job.id)
      expect(r?.n ?? 0).toBe(job.attempt_count)
      expect(r?.running ?? 0).toBe(0)
      if (job.status === 'succeeded') expect(r?.last).toBe('succeeded')
      if (job.status === 'cancelled' && r) expect(r.last).toBe('failed')
    }
    // The counter saw every cancelled job end exactly once (bulk from pending, workers from active).
    expect(await terminalCount(kind, 'cancelled')).toBe(byStatus('cancelled'))
    expect(await terminalCount(kind, 'succeeded')).toBe(byStatus('succeeded'))
  })
})
