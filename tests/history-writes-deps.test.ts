/**
 * Dependencies on finished jobs that moved to history (issue 14), and the
 * history sweep moving a job while an action waits on its lock: the action
 * finds it in history.
 */
import { describe, expect, test } from 'bun:test'
import { moveFinishedJobs, prepareHistoryDays } from '../src/history/service'
import { historyMoveBatch } from '../src/history/sql'
import { blockedOn, claimOne, enqueueJob, postOk, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()
const { sql, tables: t } = f

const inHistory = async (id: string) => (await sql`select 1 from ${sql(t.jobsHistory)} where id = ${id}`).length > 0

/** A job that ran once and ended with `outcome`. */
async function endedJob(outcome: 'complete' | 'fail', body: Record<string, unknown> = {}) {
  const job = await enqueueJob(f, body)
  const { run } = await claimOne(f, job.kind, 'w-deps')
  return postOk(f, `/runs/${run.id}/${outcome}`, { worker_id: 'w-deps', error: 'no', retryable: false })
}

async function toHistory(...ids: string[]) {
  await moveFinishedJobs(f.deps, 0)
  for (const id of ids) expect(await inHistory(id)).toBe(true)
}

describe('depends_on a job in history', () => {
  test('a succeeded one counts at once: the new job is pending, and is on its dependents list', async () => {
    const parent = await endedJob('complete')
    await toHistory(parent.id)
    const res = await f.call('POST', '/jobs', { kind: uniqueKind('after'), depends_on: [parent.id] })
    expect(res.status).toBe(201)
    expect(res.body.status).toBe('pending')
    const [row] = await sql`select dependents from ${sql(t.jobsHistory)} where id = ${parent.id}`
    expect(row?.dependents).toEqual([res.body.id])
  })

  test("a failed one cancels the new job, unless on_dependency_failure is 'run'", async () => {
    const parent = await endedJob('fail')
    await toHistory(parent.id)
    const doomed = await f.call('POST', '/jobs', { kind: uniqueKind('doomed'), depends_on: [parent.id] })
    expect(doomed.status).toBe(201)
    expect(doomed.body).toMatchObject({ status: 'cancelled', error: `dependency ${parent.id} failed` })
    const cleanup = await f.call('POST', '/jobs', {
      kind: uniqueKind('cleanup'),
      depends_on: [parent.id],
      on_dependency_failure: 'run',
    })
    expect(cleanup.body.status).toBe('pending')
  })

  test('a batch graph may name a job in history; an id in neither table is still a 400', async () => {
    const parent = await endedJob('complete')
    await toHistory(parent.id)
    const kind = uniqueKind('graph')
    const ok = await f.call('POST', '/jobs/batch', {
      jobs: [
        { ref: 'a', kind, depends_on: [parent.id] },
        { ref: 'b', kind, depends_on: ['a'] },
      ],
    })
    expect(ok.status).toBe(200)
    expect(ok.body.jobs.map((j: { job: { status: string } }) => j.job.status)).toEqual(['pending', 'waiting'])
    const unknown = 'job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D'
    const bad = await f.call('POST', '/jobs/batch', { jobs: [{ kind, depends_on: [parent.id, unknown] }] })
    expect(bad.status).toBe(400)
    expect(bad.body.error).toContain('jobs.0.depends_on.1')
  })

  test('retry recounts dependencies as they stand, in history too: a succeeded one lets it run', async () => {
    const parent = await endedJob('complete')
    const kind = uniqueKind('recount')
    const child = await enqueueJob(f, { kind, depends_on: [parent.id] })
    const { run } = await claimOne(f, kind, 'w-deps')
    await postOk(f, `/runs/${run.id}/fail`, { worker_id: 'w-deps', error: 'no', retryable: false })
    await toHistory(parent.id, child.id)
    const res = await f.call('POST', `/jobs/${child.id}/retry`)
    expect(res.status).toBe(200)
    expect(res.body.status).toBe('pending')
    expect(await inHistory(parent.id)).toBe(true)
  })

  test('retry of a job whose dependency failed, both in history, cancels it again', async () => {
    const parent = await endedJob('fail')
    const child = await f.call('POST', '/jobs', { kind: uniqueKind('again'), depends_on: [parent.id] })
    expect(child.body.status).toBe('cancelled')
    await toHistory(parent.id, child.body.id)
    const res = await f.call('POST', `/jobs/${child.body.id}/retry`)
    expect(res.status).toBe(200)
    expect(res.body.status).toBe('cancelled')
  })
})

/**
 * Holds `id`'s hot row as the history sweep does while it moves it, lets `act`
 * start and block on that lock, then moves the row and commits: `act` must
 * find the job in history.
 */
async function movedUnder<T>(id: string, act: () => Promise<T>, blockedText: string): Promise<T> {
  await prepareHistoryDays(f.deps)
  let go!: () => void
  const proceed = new Promise<void>((resolve) => {
    go = resolve
  })
  let locked!: () => void
  const isLocked = new Promise<void>((resolve) => {
    locked = resolve
  })
  const mover = sql.begin(async (tx) => {
    await tx`select 1 from ${tx(t.jobs)} where id = ${id} for update`
    locked()
    await proceed
    const today = new Date().toISOString().slice(0, 10)
    // The sweep's statement, in the transaction that holds the lock (it takes Sql; a transaction runs it the same).
    await historyMoveBatch(tx as unknown as typeof sql, t, { afterSec: 0, first: today, last: today }, 2000)
  })
  await isLocked
  const answer = act()
  await blockedOn(f, blockedText)
  go()
  await mover
  // (Not checked here that it is in history: the action, released by the commit, may already have acted on it.)
  return answer
}

describe('the sweep moves the job while an action waits on its lock', () => {
  test('an enqueue depending on it finds it in history', async () => {
    const parent = await endedJob('complete')
    const res = await movedUnder(
      parent.id,
      () => f.call('POST', '/jobs', { kind: uniqueKind('race-dep'), depends_on: [parent.id] }),
      'dependents',
    )
    expect(res.status).toBe(201)
    expect(res.body.status).toBe('pending')
  })

  test('a retry restores it from history', async () => {
    const job = await endedJob('fail')
    const res = await movedUnder(job.id, () => f.call('POST', `/jobs/${job.id}/retry`), 'for update')
    expect(res.status).toBe(200)
    expect(res.body.status).toBe('pending')
    expect(await inHistory(job.id)).toBe(false)
  })

  test('a delete and a cancel find it in history', async () => {
    const job = await endedJob('complete')
    const cancel = await movedUnder(job.id, () => f.call('POST', `/jobs/${job.id}/cancel`), 'for update')
    expect(cancel.body).toMatchObject({ id: job.id, status: 'succeeded' })
    const other = await endedJob('complete')
    const del = await movedUnder(other.id, () => f.call('DELETE', `/jobs/${other.id}`), 'for update')
    expect(del.body).toEqual({ id: other.id })
    expect(await inHistory(other.id)).toBe(false)
    expect(await sql`select 1 from ${sql(t.jobs)} where id = ${other.id}`).toHaveLength(0)
  })
})
