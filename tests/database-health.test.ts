/**
 * GET /database: the table health /metrics reads, with plain-words warnings for a
 * bad state (a transaction left open, dead rows piling up with no autovacuum) and
 * none when all is well.
 */
import { expect, test } from 'bun:test'
import { newJobId } from '../src/ids'
import { DEFAULT_THRESHOLDS, databaseHealth } from '../src/operations/database'
import { startFixture } from './support/harness'

const f = await startFixture()
const { sql, tables: t } = f

test('a healthy database: both tables, the oldest transaction’s age, and no warnings', async () => {
  const res = await f.call('GET', '/database')
  expect(res.status).toBe(200)
  expect(res.body).toEqual({
    tables: [t.runs, t.jobs].sort().map((table) => ({
      table,
      live_tuples: expect.any(Number),
      dead_tuples: expect.any(Number),
      last_autovacuum: null,
      last_autoanalyze: null,
    })),
    oldest_transaction_age_seconds: expect.any(Number),
    warnings: [],
  })
})

test('a transaction held open on another connection is named, with what to do; under the default 5 minutes it is not', async () => {
  let release!: () => void
  let opened!: () => void
  const isOpen = new Promise<void>((resolve) => {
    opened = resolve
  })
  const held = sql.begin(async (tx) => {
    await tx`select txid_current()`
    opened()
    await new Promise<void>((resolve) => {
      release = resolve
    })
  })
  await isOpen
  try {
    // The default limit is 5 minutes; any open transaction passes a limit of 0.
    const health = await databaseHealth(f.deps, { ...DEFAULT_THRESHOLDS, oldestTransactionSec: 0 })
    expect(health.oldest_transaction_age_seconds).toBeGreaterThan(0)
    expect(health.warnings).toHaveLength(1)
    expect(health.warnings[0]).toContain('A transaction in this database has been open for')
    expect(health.warnings[0]).toContain('pg_stat_activity')
    // At the default limit it is not (yet) a problem.
    expect((await databaseHealth(f.deps)).warnings).toEqual([])
  } finally {
    release()
    await held
  }
})

test('dead rows piling up with no autovacuum: two warnings naming the table; a VACUUM clears them', async () => {
  // Autovacuum off for this table, so the dead rows stay until the test vacuums.
  await sql.unsafe(`alter table "${t.jobs}" set (autovacuum_enabled = false)`)
  const conn = await sql.reserve()
  try {
    const ids = Array.from({ length: 12_000 }, () => newJobId())
    await conn`insert into ${conn(t.jobs)} (id, kind) select unnest(${ids}::text[]), 'dead'`
    await conn`delete from ${conn(t.jobs)} where id = any(${ids.slice(0, 11_000)}::text[])`
    // Statistics reach the shared counters at most once a second; flush this backend's now.
    await conn`select pg_stat_force_next_flush()`
  } finally {
    conn.release()
  }
  const res = await f.call('GET', '/database')
  const jobs = res.body.tables.find((h: { table: string }) => h.table === t.jobs)
  expect(jobs.dead_tuples).toBeGreaterThanOrEqual(11_000)
  const about = (res.body.warnings as string[]).filter((w) => w.includes(t.jobs))
  expect(about).toHaveLength(2)
  expect(about[0]).toContain(`Table ${t.jobs} holds 11,000 dead row versions`)
  expect(about[1]).toContain(`Autovacuum has not vacuumed ${t.jobs} since its statistics were last reset`)

  await sql.unsafe(`vacuum "${t.jobs}"`)
  expect((await f.call('GET', '/database')).body.warnings).toEqual([])
})
