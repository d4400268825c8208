/**
 * GET /jobs?params=…: JSON containment alongside the other filters, its 400s, and
 * the optional GIN index (FOREMAN_PARAMS_INDEX): built at start-up when asked,
 * used by the list when present, and not needed for a correct answer.
 */
import { describe, expect, test } from 'bun:test'
import { ConfigError, loadConfig } from '../src/config'
import { dropTables, ensureParamsIndex, paramsIndexName } from '../src/db/migrate'
import { tablesFor } from '../src/db/tables'
import { newJobId } from '../src/ids'
import { jobList } from '../src/jobs/reads-sql'
import { createLogger } from '../src/log'
import { startForeman } from '../src/server'
import { createExplainer } from './support/explain'
import { claimOne, enqueueJob, uniqueKind } from './support/factories'
import { type Fixture, startFixture, uniquePrefix } from './support/harness'

const url = process.env.DATABASE_URL as string
const plain = await startFixture()
const indexed = await startFixture()
expect(await ensureParamsIndex(indexed.sql, indexed.tables)).toBe(true)

const list = (f: Fixture, query: Record<string, string>) => f.call('GET', `/jobs?${new URLSearchParams(query)}`)
const ids = (rows: { id: string }[]) => rows.map((r) => r.id)

describe('GET /jobs?params=', () => {
  for (const [label, f] of [
    ['without the index', plain],
    ['with the index', indexed],
  ] as const) {
    test(`keeps the jobs whose params contain the object, with the other filters (${label})`, async () => {
      const kind = uniqueKind('search')
      const a = await enqueueJob(f, { kind, params: { customer: 42, order: { id: 'o-1', lines: [1, 2] }, tag: 'x' } })
      const b = await enqueueJob(f, { kind, params: { customer: 42, order: { id: 'o-2' } } })
      const c = await enqueueJob(f, { kind, params: { customer: 7 } })
      const active = await enqueueJob(f, { kind, priority: 10, params: { customer: 42 } })
      expect((await claimOne(f, kind)).job.id).toBe(active.id)
      const elsewhere = await enqueueJob(f, { params: { customer: 42 } })

      const byCustomer = await list(f, { kind, params: '{"customer":42}' })
      expect(byCustomer.status).toBe(200)
      expect(ids(byCustomer.body)).toEqual([active.id, b.id, a.id])
      expect(ids((await list(f, { kind, params: '{"order":{"id":"o-1"}}' })).body)).toEqual([a.id])
      expect(ids((await list(f, { kind, params: '{"order":{"lines":[2]}}' })).body)).toEqual([a.id])
      expect(ids((await list(f, { kind, params: '{}' })).body)).toEqual([active.id, c.id, b.id, a.id])
      expect(ids((await list(f, { kind, params: '{"customer":42}', status: 'active' })).body)).toEqual([active.id])
      expect(ids((await list(f, { kind, params: '{"customer":42}', status: 'pending' })).body)).toEqual([b.id, a.id])
      // Across kinds; paged by cursor.
      expect(ids((await list(f, { params: '{"customer":42}', limit: '1' })).body)).toEqual([elsewhere.id])
      const page = (await list(f, { kind, params: '{"customer":42}', limit: '2' })).body
      expect(ids(page)).toEqual([active.id, b.id])
      const next = (await list(f, { kind, params: '{"customer":42}', limit: '2', cursor: page[1].id })).body
      expect(ids(next)).toEqual([a.id])
      expect(ids((await list(f, { kind, params: '{"customer":"42"}' })).body)).toEqual([])
    })
  }

  test.each([
    ['not JSON', '{customer:42}'],
    ['an array', '[42]'],
    ['a number', '42'],
    ['null', 'null'],
    ['a string', '"x"'],
    ['\\u0000 in a value', '{"a":"\\u0000"}'],
    ['a non-finite number', '{"a":1e999}'],
    ['over 4,096 characters', `{"a":"${'x'.repeat(4100)}"}`],
  ])('400 naming params for %s', async (_name, text) => {
    const res = await list(plain, { params: text })
    expect(res.status).toBe(400)
    expect(res.body.error).toStartWith('params')
  })
})

describe('the params index', () => {
  test('serves a params search when present; without it the search is a filtered scan', async () => {
    const kind = uniqueKind('plan')
    for (const f of [plain, indexed]) {
      const rows = Array.from({ length: 5000 }, (_, i) => ({ id: newJobId(), params: { customer: i, region: 'eu' } }))
      await f.sql`
        insert into ${f.sql(f.tables.jobs)} (id, kind, params)
        select x.id, ${kind}, x.params from jsonb_to_recordset(${f.sql.json(rows as never)}::jsonb) as x(id text, params jsonb)`
      await f.sql`analyze ${f.sql(f.tables.jobs)}`
    }
    const explainer = createExplainer(url)
    try {
      const search = (f: Fixture, filter: Record<string, unknown>) =>
        explainer.explainCall((sql) => jobList(sql, f.tables, { limit: 50, params: { customer: 4242 }, ...filter }))
      const name = paramsIndexName(indexed.tables)
      for (const filter of [{}, { kind }, { status: 'pending' as const }]) {
        const withIndex = await search(indexed, filter)
        expect(withIndex.indexes).toContain(name)
        // Only the rows the index names are read: the one match, not the table.
        expect(withIndex.rowsRead).toBeLessThan(100)
        const without = await search(plain, filter)
        expect(without.indexes).not.toContain(paramsIndexName(plain.tables))
        expect(without.rowsRead).toBeGreaterThanOrEqual(5000)
      }
    } finally {
      await explainer.close()
    }
  })

  test('ensureParamsIndex builds once, concurrently with another instance, and rebuilds an invalid index', async () => {
    const f = await startFixture()
    const name = paramsIndexName(f.tables)
    const built = await Promise.all([ensureParamsIndex(f.sql, f.tables), ensureParamsIndex(f.sql, f.tables)])
    expect(built.sort()).toEqual([false, true])
    expect(await ensureParamsIndex(f.sql, f.tables)).toBe(false)
    const valid = async () =>
      (
        await f.sql<
          { valid: boolean }[]
        >`select indisvalid as valid from pg_index where indexrelid = to_regclass(${name})`
      )[0]?.valid
    expect(await valid()).toBe(true)
    // As a build cut short leaves it.
    await f.sql`update pg_index set indisvalid = false where indexrelid = to_regclass(${name})`
    expect(await ensureParamsIndex(f.sql, f.tables)).toBe(true)
    expect(await valid()).toBe(true)
  })

  test('FOREMAN_PARAMS_INDEX=true makes start-up build it; off by default', async () => {
    for (const [setting, expected] of [
      ['true', true],
      [undefined, false],
    ] as const) {
      const prefix = uniquePrefix()
      const env = { DATABASE_URL: url, PORT: '0', FOREMAN_TABLE_PREFIX: prefix, FOREMAN_PARAMS_INDEX: setting }
      const running = await startForeman(loadConfig(env), createLogger('PROD', 'silent'))
      const [row] = await plain.sql<{ found: boolean }[]>`
        select to_regclass(${paramsIndexName(tablesFor(prefix))}) is not null as found`
      await running.shutdown()
      await dropTables(plain.sql, tablesFor(prefix))
      expect(row?.found).toBe(expected)
    }
  })

  test('FOREMAN_PARAMS_INDEX reads true/false (1/0, yes/no, on/off) and refuses anything else', () => {
    expect(loadConfig({}).paramsIndex).toBe(false)
    for (const yes of ['true', 'TRUE', '1', 'yes', 'on'])
      expect(loadConfig({ FOREMAN_PARAMS_INDEX: yes }).paramsIndex).toBe(true)
    for (const no of ['false', '0', 'no', 'off', ''])
      expect(loadConfig({ FOREMAN_PARAMS_INDEX: no }).paramsIndex).toBe(false)
    expect(() => loadConfig({ FOREMAN_PARAMS_INDEX: 'maybe' })).toThrow(ConfigError)
    expect(() => loadConfig({ FOREMAN_PARAMS_INDEX: 'maybe' })).toThrow('FOREMAN_PARAMS_INDEX')
  })
})
