/**
 * Migrations and the table prefix: migrate() is idempotent and safe to run from
 * two instances at once, every database object carries the prefix, and two
 * prefixes share one database without seeing each other.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfigError } from '../src/config'
import { createSql } from '../src/db/client'
import { dropTables, MIGRATIONS_DIR, migrate } from '../src/db/migrate'
import { type Tables, tablesFor } from '../src/db/tables'
import { claimOne, enqueueJob, uniqueKind } from './support/factories'
import { startFixture, uniquePrefix } from './support/harness'

const f = await startFixture()
const migrationFiles = (await readdir(MIGRATIONS_DIR)).filter((name) => /^\d+_.+\.sql$/.test(name)).sort()

describe('migrate()', () => {
  test('a second run applies nothing and records each file once', async () => {
    expect(migrationFiles.length).toBeGreaterThan(0)
    expect(await migrate(f.sql, f.tables)).toEqual([])
    expect(await migrate(f.sql, f.tables)).toEqual([])
    const rows = await f.sql`select version, name from ${f.sql(f.tables.migrations)} order by version`
    expect(rows.map((r) => r.name)).toEqual(migrationFiles)
  })

  test('two instances migrating a fresh prefix at once both succeed and apply each file once', async () => {
    const url = process.env.DATABASE_URL as string
    const a = createSql({ url, max: 2 })
    const b = createSql({ url, max: 2 })
    const tables = tablesFor(uniquePrefix())
    try {
      const [fromA, fromB] = await Promise.all([migrate(a, tables), migrate(b, tables)])
      // One of them applied everything, the other found it done.
      expect([fromA, fromB].sort((x, y) => y.length - x.length)).toEqual([migrationFiles, []])
      const rows = await a`select name from ${a(tables.migrations)} order by version`
      expect(rows.map((r) => r.name)).toEqual(migrationFiles)
      // The schema works: a job can be inserted under the new prefix.
      await a`insert into ${a(tables.jobs)} (id, kind) values ('job_x', 'k')`
      expect((await b`select count(*)::int as n from ${b(tables.jobs)}`)[0]?.n).toBe(1)
    } finally {
      await dropTables(a, tables)
      await Promise.all([a.end(), b.end()])
    }
  })
})

/** Every table a prefix owns. */
const everyTable = (t: Tables) => [t.jobs, t.runs, t.schedules, t.pausedQueues, t.limits, t.flowSlots, t.migrations]

/** Every name a fixture's tables own in the catalog: tables, indexes, constraints, types, sequences. */
async function ownedNames(tables: Tables) {
  const names = everyTable(tables)
  return f.sql<{ what: string; name: string }[]>`
    with owned as (
      select c.oid from pg_class c
      where c.relnamespace = current_schema()::regnamespace and c.relname = any(${names})
    )
    select 'table' as what, c.relname::text as name from pg_class c where c.oid in (select oid from owned)
    union all
    select 'index', c.relname::text from pg_index i join pg_class c on c.oid = i.indexrelid
    where i.indrelid in (select oid from owned)
    union all
    select 'constraint', con.conname::text from pg_constraint con where con.conrelid in (select oid from owned)
    union all
    select 'type', t.typname::text from pg_type t where t.typrelid in (select oid from owned)
    union all
    select 'sequence', s.relname::text from pg_depend d join pg_class s on s.oid = d.objid
    where s.relkind = 'S' and d.refobjid in (select oid from owned)
    order by 1, 2`
}

describe('table prefix', () => {
  test('every table, index, constraint and row type of a fixture starts with its prefix', async () => {
    const owned = await ownedNames(f.tables)
    expect(
      owned
        .filter((o) => o.what === 'table')
        .map((o) => o.name)
        .sort(),
    ).toEqual(everyTable(f.tables).sort())
    // The migration's named indexes are all there (under the prefix).
    const indexes = owned.filter((o) => o.what === 'index').map((o) => o.name)
    for (const suffix of ['jobs_pkey', 'jobs_claim_idx', 'jobs_kind_idempotency_key_key', 'job_runs_one_running_key']) {
      expect(indexes).toContain(`${f.tables.prefix}${suffix}`)
    }
    expect(owned.filter((o) => o.what === 'constraint').length).toBeGreaterThan(5)
    expect(owned.filter((o) => !o.name.startsWith(f.tables.prefix))).toEqual([])
    // Ids are app-generated: no sequences at all.
    expect(owned.filter((o) => o.what === 'sequence')).toEqual([])
  })

  test('every object the migration files create or reference is named with {{prefix}}', async () => {
    for (const name of migrationFiles) {
      const text = await Bun.file(join(MIGRATIONS_DIR, name)).text()
      const declared = [
        ...text.matchAll(
          /\b(?:create\s+(?:unique\s+)?(?:table|index|sequence|view|type|function)(?:\s+if\s+not\s+exists)?|constraint|references)\s+([^\s(]+)/gi,
        ),
      ].map((m) => m[1] as string)
      expect(declared.length).toBeGreaterThan(0)
      // %I: a name built at run time ('{{prefix}}jobs_history_p' || day), not declared here.
      const unprefixed = declared.filter((d) => !d.startsWith('{{prefix}}') && d !== '%I')
      expect({ name, unprefixed }).toEqual({
        name,
        unprefixed: [],
      })
    }
  })

  test("tablesFor('') names the bare tables", () => {
    expect(tablesFor('')).toEqual({
      prefix: '',
      jobs: 'jobs',
      runs: 'job_runs',
      schedules: 'schedules',
      pausedQueues: 'paused_queues',
      limits: 'limits',
      flowSlots: 'flow_slots',
      jobsHistory: 'jobs_history',
      runsHistory: 'job_runs_history',
      jobKeys: 'job_keys',
      migrations: 'migrations',
    })
  })

  test('tablesFor rejects a prefix that is not an identifier fragment', () => {
    for (const bad of ['Bad-Prefix', 'x; drop table jobs;--', '1abc', 'a b', `a${'b'.repeat(41)}`, 'ümlaut_']) {
      expect(() => tablesFor(bad)).toThrow(ConfigError)
    }
    expect(() => tablesFor('Bad-Prefix')).toThrow(/FOREMAN_TABLE_PREFIX/)
    expect(tablesFor(`a${'b'.repeat(40)}`).jobs).toBe(`a${'b'.repeat(40)}jobs`)
  })

  describe('two prefixes in one database', () => {
    let g: Awaited<ReturnType<typeof startFixture>>
    afterAll(() => g?.close())

    test('a job enqueued under one prefix is invisible, unclaimable and no duplicate under the other', async () => {
      g = await startFixture()
      expect(g.tables.prefix).not.toBe(f.tables.prefix)
      const kind = uniqueKind('shared')
      const job = await enqueueJob(f, { kind, idempotency_key: 'same' })

      expect((await g.call('GET', `/jobs?kind=${kind}`)).body).toEqual([])
      expect((await g.call('GET', `/jobs/${job.id}`)).status).toBe(404)
      expect((await g.call('POST', '/claim', { kinds: [kind], worker_id: 'w' })).status).toBe(204)
      // The same idempotency key is fresh under the other prefix.
      const twin = await enqueueJob(g, { kind, idempotency_key: 'same' })
      expect(twin.id).not.toBe(job.id)

      expect((await f.call('GET', `/jobs?kind=${kind}`)).body.map((j: any) => j.id)).toEqual([job.id])
      const claimed = await claimOne(f, kind)
      expect(claimed.job.id).toBe(job.id)
      expect((await g.call('GET', `/jobs/${twin.id}`)).body.status).toBe('pending')
    })
  })
})
