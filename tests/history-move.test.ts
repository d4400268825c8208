/**
 * Finished jobs leave the hot tables for history (migrations/009, src/history/):
 * what moves, what stays, and that a move is whole.
 */
import { describe, expect, test } from 'bun:test'
import { dropExpiredHistory, moveFinishedJobs } from '../src/history/service'
import { claimOne, postOk, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()
const { sql, tables: t } = f

const columnsOf = async (table: string) =>
  (
    await sql<{ name: string; type: string }[]>`
      select attname as name, format_type(atttypid, atttypmod) as type
      from pg_attribute where attrelid = to_regclass(${table}) and attnum > 0 and not attisdropped
      order by attnum`
  ).map((c) => `${c.name} ${c.type}`)

const hot = async (kind: string) =>
  (await sql<{ status: string }[]>`select status from ${sql(t.jobs)} where kind = ${kind} order by status`).map(
    (r) => r.status,
  )
const historic = async (kind: string) =>
  (await sql<{ status: string }[]>`select status from ${sql(t.jobsHistory)} where kind = ${kind} order by status`).map(
    (r) => r.status,
  )

describe('the history tables', () => {
  test('have the hot tables’ columns, in the same order (a move is insert … select *)', async () => {
    expect(await columnsOf(t.jobsHistory)).toEqual(await columnsOf(t.jobs))
    expect(await columnsOf(t.runsHistory)).toEqual([
      ...(await columnsOf(t.runs)),
      'job_completed_at timestamp with time zone',
    ])
  })
})

describe('moving finished jobs', () => {
  test('moves succeeded, failed and cancelled jobs with their runs; waiting, pending and active stay', async () => {
    const kind = uniqueKind('move')
    const done = await postOk(f, '/jobs', { kind })
    const doneRun = (await claimOne(f, kind, 'w-move')).run
    await postOk(f, `/runs/${doneRun.id}/complete`, { worker_id: 'w-move', result: { ok: 1 } })
    const failed = await postOk(f, '/jobs', { kind })
    const failedRun = (await claimOne(f, kind, 'w-move')).run
    await postOk(f, `/runs/${failedRun.id}/fail`, { worker_id: 'w-move', error: 'no' })
    const cancelled = await postOk(f, '/jobs', { kind })
    await postOk(f, `/jobs/${cancelled.id}/cancel`, undefined)
    const active = await postOk(f, '/jobs', { kind })
    await claimOne(f, kind, 'w-move')
    const pending = await postOk(f, '/jobs', { kind })
    const waiting = await postOk(f, '/jobs', { kind, depends_on: [pending.id] })

    const { moved } = await moveFinishedJobs(f.deps, 0)
    expect(moved).toBeGreaterThanOrEqual(3)
    expect(await hot(kind)).toEqual(['active', 'pending', 'waiting'])
    expect(await historic(kind)).toEqual(['cancelled', 'failed', 'succeeded'])
    const runs = await sql<{ id: string; job_completed_at: Date }[]>`
      select id, job_completed_at from ${sql(t.runsHistory)} where job_id in ${sql([done.id, failed.id])} order by id`
    expect(runs.map((r) => r.id).sort()).toEqual([doneRun.id, failedRun.id].sort())
    expect(await sql`select 1 from ${sql(t.runs)} where id in ${sql([doneRun.id, failedRun.id])}`).toHaveLength(0)
    // The rows are as they were: a job in history reads back whole.
    const [row] = await sql<{ result: unknown }[]>`select result from ${sql(t.jobsHistory)} where id = ${done.id}`
    expect(row?.result).toEqual({ ok: 1 })
    expect([active.id, waiting.id]).toHaveLength(2)
  })

  test('keeps jobs finished less than FOREMAN_HISTORY_AFTER_SEC ago, and skips a row a transition holds', async () => {
    const kind = uniqueKind('recent')
    const job = await postOk(f, '/jobs', { kind })
    await postOk(f, `/jobs/${job.id}/cancel`, undefined)
    await moveFinishedJobs(f.deps, 3600)
    expect(await hot(kind)).toEqual(['cancelled'])

    let release = () => {}
    const held = sql.begin(async (tx) => {
      await tx`select 1 from ${tx(t.jobs)} where id = ${job.id} for update`
      await new Promise<void>((resolve) => {
        release = resolve
      })
    })
    await Bun.sleep(50)
    await moveFinishedJobs(f.deps, 0)
    expect(await hot(kind)).toEqual(['cancelled'])
    release()
    await held
    await moveFinishedJobs(f.deps, 0)
    expect(await historic(kind)).toEqual(['cancelled'])
  })
})

describe('the history sweep', () => {
  test('an instance moves finished jobs on its own, FOREMAN_HISTORY_AFTER_SEC after they finish, and counts them', async () => {
    const g = await startFixture({ historyAfterSec: 0.2 }, { sweeps: true })
    const kind = uniqueKind('swept')
    const job = await postOk(g, '/jobs', { kind })
    await postOk(g, `/jobs/${job.id}/cancel`, undefined)
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await Bun.sleep(50)) {
      const [row] = await g.sql`select 1 from ${g.sql(g.tables.jobsHistory)} where id = ${job.id}`
      if (row) break
    }
    expect(await g.sql`select 1 from ${g.sql(g.tables.jobsHistory)} where id = ${job.id}`).toHaveLength(1)
    expect(await g.sql`select 1 from ${g.sql(g.tables.jobs)} where id = ${job.id}`).toHaveLength(0)
    const scrape = await (await g.app.handle(new Request('http://localhost/foreman/metrics'))).text()
    expect(scrape).toMatch(/^foreman_history_moved_total [1-9]/m)
  })
})

describe('retention by the day', () => {
  test('drops whole days older than the retention, with their keys; newer days stay', async () => {
    const kind = uniqueKind('retain')
    const old = await postOk(f, '/jobs', { kind, idempotency_key: 'old-key' })
    const recent = await postOk(f, '/jobs', { kind })
    for (const id of [old.id, recent.id]) await postOk(f, `/jobs/${id}/cancel`, undefined)
    // Completed three days ago, as far as history can tell.
    await sql`update ${sql(t.jobs)} set completed_at = now() - interval '3 days' where id = ${old.id}`
    await moveFinishedJobs(f.deps, 0)
    expect(await historic(kind)).toEqual(['cancelled', 'cancelled'])

    const { dropped } = await dropExpiredHistory(f.deps, 2)
    expect(dropped).toBeGreaterThanOrEqual(1)
    const left = await sql<{ id: string }[]>`select id from ${sql(t.jobsHistory)} where kind = ${kind}`
    expect(left.map((r) => r.id)).toEqual([recent.id])
    expect(await sql`select 1 from ${sql(t.jobKeys)} where kind = ${kind}`).toHaveLength(0)
  })
})
