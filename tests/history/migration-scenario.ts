/**
 * Upgrading a populated database to history (migration 009 and the sweep that
 * drains the finished jobs out of the hot tables), with the API in use meanwhile.
 * Shared by the reduced run in `npm test` (tests/history-migration.test.ts) and
 * the full one, 1M finished jobs (`npm run test:history`).
 *
 * The tables are built at migration 008 (the layout before history), loaded with
 * the backlog the plan tests use (finished jobs spread over 8 days, pending,
 * active, backing off, scheduled ahead; some keyed), then migrated as a start-up
 * would. The drain runs side by side with enqueues, claims and completions, and
 * at the end every job and run the database held before is where it belongs,
 * unchanged: the same ids, statuses and contents, hot or historic.
 */
import { expect } from 'bun:test'
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSql, type Sql } from '../../src/db/client'
import { dropTables, MIGRATIONS_DIR, migrate } from '../../src/db/migrate'
import { type Tables, tablesFor } from '../../src/db/tables'
import { jobsHotAndHistory } from '../../src/history/anywhere-sql'
import { RUN_COLUMNS } from '../../src/jobs/columns'
import { sweepHistory } from '../../src/sweeps/history'
import { loadBacklog, loadWorkingSet } from '../support/backlog'
import { claimOne, postOk } from '../support/factories'
import { startFixture, uniquePrefix } from '../support/harness'

/** What the scenario measured. */
export interface MigrationFigures {
  finished: number
  loadSec: number
  migrateSec: number
  drainSec: number
  movedPerSec: number
  keys: number
}

/** Migrates `tables` with the files up to and including `lastVersion` only. */
async function migrateUpTo(sql: Sql, tables: Tables, lastVersion: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'foreman-migrations-'))
  try {
    for (const name of await readdir(MIGRATIONS_DIR)) {
      if (Number.parseInt(name, 10) <= lastVersion) await cp(join(MIGRATIONS_DIR, name), join(dir, name))
    }
    await migrate(sql, tables, dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Every loaded job and run as (status, count, id checksum, content checksum), hot and history together. */
async function fingerprint(sql: Sql, t: Tables, withHistory: boolean) {
  const jobs = withHistory
    ? sql`select * from ${jobsHotAndHistory(sql, t, sql.unsafe('*'))} both_tables`
    : sql`select * from ${sql(t.jobs)}`
  const runs = withHistory
    ? sql`select ${sql(RUN_COLUMNS)} from ${sql(t.runs)} union all select ${sql(RUN_COLUMNS)} from ${sql(t.runsHistory)}`
    : sql`select ${sql(RUN_COLUMNS)} from ${sql(t.runs)}`
  const [row] = await sql<{ jobs: unknown; runs: unknown }[]>`
    select
      (select json_agg(s order by s.status) from (
        select status, count(*) as n, sum(hashtext(id)::bigint) as ids, sum(hashtext(j::text)::bigint) as rows
        from (${jobs}) j where kind not like 'probe-%' group by status) s) as jobs,
      (select json_agg(s order by s.status) from (
        select status, count(*) as n, sum(hashtext(r::text)::bigint) as rows
        from (${runs}) r where worker_id <> 'probe' group by status) s) as runs`
  return row
}

/** Runs the upgrade on `finished` finished jobs (and a tenth as many live ones); answers its figures. */
export async function historyMigrationScenario(finished: number, log = (_: string) => {}): Promise<MigrationFigures> {
  const prefix = uniquePrefix()
  const t = tablesFor(prefix)
  const url = process.env.DATABASE_URL ?? ''
  const sql = createSql({ url, max: 4 })
  try {
    await migrateUpTo(sql, t, 8)
    let started = performance.now()
    await loadWorkingSet(sql, t, { pendingPerKind: 100, active: 100, expired: 0 })
    await loadBacklog(sql, t, {
      finished,
      pending: Math.ceil(finished / 10),
      backoff: Math.ceil(finished / 100),
      tomorrow: Math.ceil(finished / 100),
    })
    // One finished job in 20 holds an idempotency key, as an upgrade would find them.
    await sql`update ${sql(t.jobs)} set idempotency_key = 'legacy-' || id where completed_at is not null and hashtext(id) % 20 = 0`
    await sql.unsafe(`vacuum analyze "${t.jobs}", "${t.runs}"`)
    const loadSec = (performance.now() - started) / 1000
    log(`loaded ${finished} finished jobs in ${loadSec.toFixed(1)} s`)
    const before = await fingerprint(sql, t, false)
    const [keyed] = await sql<{ n: number; id: string }[]>`
      select count(*)::int as n, min(id) as id from ${sql(t.jobs)} where idempotency_key is not null`

    started = performance.now()
    expect(await migrate(sql, t)).toEqual(['009_history.sql'])
    const migrateSec = (performance.now() - started) / 1000
    const [keys] = await sql<{ n: number }[]>`select count(*)::int as n from ${sql(t.jobKeys)}`
    expect(keys?.n).toBe(keyed?.n)
    log(`migrated in ${migrateSec.toFixed(2)} s (${keys?.n} keys)`)

    // The upgraded instance: it serves while its sweep drains the finished jobs.
    const f = await startFixture({ historyAfterSec: 0 }, { prefix, keepTables: true })
    const [kept] = await sql<{ kind: string; idempotency_key: string }[]>`
      select kind, idempotency_key from ${sql(t.jobs)} where id = ${keyed?.id ?? ''}`
    started = performance.now()
    let draining = true
    const drain = (async () => {
      try {
        while ((await sweepHistory(f.deps)).moved > 0);
      } finally {
        draining = false
      }
    })()
    let probes = 0
    try {
      while (draining) {
        const kind = `probe-${probes++}`
        const job = await postOk(f, '/jobs', { kind })
        const { run } = await claimOne(f, kind, 'probe')
        expect(run.job_id).toBe(job.id)
        await postOk(f, `/runs/${run.id}/complete`, { worker_id: 'probe' })
        // A key the upgrade found is still taken, wherever its job is by now.
        const again = await f.call('POST', '/jobs', { kind: kept?.kind, idempotency_key: kept?.idempotency_key })
        expect(again.status).toBe(409)
      }
    } finally {
      // Never drop the tables under a sweep still running.
      await drain
    }
    const drainSec = (performance.now() - started) / 1000
    log(`drained in ${drainSec.toFixed(1)} s with ${probes} rounds of enqueue, claim, complete and a duplicate key`)

    const [left] = await sql<{ n: number }[]>`
      select count(*)::int as n from ${sql(t.jobs)} where completed_at is not null and kind not like 'probe-%'`
    expect(left?.n).toBe(0)
    expect(await fingerprint(sql, t, true)).toEqual(before)
    await f.close()
    return { finished, loadSec, migrateSec, drainSec, movedPerSec: finished / drainSec, keys: keys?.n ?? 0 }
  } finally {
    await dropTables(sql, t)
    await sql.end()
  }
}
