/**
 * A Foreman app on the test database under a fresh table prefix, plus small
 * helpers to talk to it through the HTTP layer (`app.handle`) or a real socket.
 */
import { afterAll } from 'bun:test'
import { buildApp, type ForemanApp } from '../../src/app'
import { type Config, loadConfig } from '../../src/config'
import type { Sql } from '../../src/db/client'
import { openConnections } from '../../src/db/connections'
import { dropTables, migrate } from '../../src/db/migrate'
import { type Tables, tablesFor } from '../../src/db/tables'
import type { Deps } from '../../src/deps'
import { createLiveEvents } from '../../src/events/live'
import { createLogger } from '../../src/log'
import { primeKnownFromDatabase } from '../../src/metrics/known-labels'
import { createMetrics } from '../../src/metrics/registry'
import { listen, startSweeps } from '../../src/server'
import type { SweepLoop } from '../../src/sweeps/loop'

/** A JSON answer: status, parsed body (or null), headers. */
export interface Answer<T = any> {
  status: number
  body: T
  headers: Headers
}

/** Fixture variations: a second Foreman on the same tables, as another instance would be. */
export interface FixtureOptions {
  /** Share another fixture's tables (its prefix) instead of a fresh prefix. */
  prefix?: string
  /** Leave the tables for the fixture that owns them to drop. */
  keepTables?: boolean
  /** Another database than the shared test one (a primary of the file's own, with a replica in `readDatabaseUrl`). */
  url?: string
  /** application_name of its connections (its NOTIFY connection adds `-notify`); default `foreman-test`. */
  applicationName?: string
  /** Most connections of its query pool (default 20). */
  poolMax?: number
  /** Run the reaper, retention and scheduler as a server does (default off: tests drive sweeps themselves). */
  sweeps?: boolean
}

/** One isolated Foreman on the shared test database. */
export interface Fixture {
  app: ForemanApp
  deps: Deps
  sql: Sql
  tables: Tables
  /** Sends a request through app.handle; `body` is JSON-encoded unless a string. */
  call<T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Answer<T>>
  /** Serves the app on a free port; answers the base URL (…/foreman). */
  serve(): string
  /** Drops this fixture's tables and closes its pool. */
  close(): Promise<void>
}

let counter = 0

/** A unique table prefix per fixture, so test files can run side by side. */
export function uniquePrefix(): string {
  return `t${process.pid}_${Date.now().toString(36)}_${counter++}_`
}

/** Builds a migrated Foreman on a fresh prefix; closed automatically after the file. */
export async function startFixture(overrides: Partial<Config> = {}, options: FixtureOptions = {}): Promise<Fixture> {
  const url = options.url ?? process.env.DATABASE_URL
  if (!url) throw new Error('DATABASE_URL is not set: the test preload did not run')
  const prefix = options.prefix ?? uniquePrefix()
  const config: Config = { ...loadConfig({}), tablePrefix: prefix, ...overrides }
  // `npm run test:pgbouncer` (tests/support/pgbouncer.ts): the pool goes through
  // PgBouncer in transaction mode, what needs a session straight to the database.
  const pooler = options.url ? undefined : process.env.FOREMAN_TEST_PGBOUNCER_URL
  const connections = openConnections({
    url: pooler ?? url,
    poolMax: options.poolMax ?? 20,
    poolMode: pooler ? 'transaction' : 'session',
    directUrl: pooler ? url : null,
    readUrl: config.readDatabaseUrl,
    applicationName: options.applicationName ?? 'foreman-test',
  })
  const { sql, sessionSql, notifySql, readSql } = connections
  const tables = tablesFor(prefix)
  await migrate(sessionSql, tables)
  const log = createLogger('PROD', process.env.TEST_LOG_LEVEL ?? 'silent')
  const events = createLiveEvents({
    sql,
    listenSql: sessionSql,
    notifySql,
    tables,
    log,
    pollIntervalMs: config.eventsPollSec * 1000,
  })
  await events.start()
  const deps: Deps = { config, sql, readSql, tables, log, events, metrics: createMetrics() }
  await primeKnownFromDatabase(deps)
  const app = buildApp(deps)
  const sweeps: SweepLoop[] = options.sweeps ? startSweeps(deps) : []
  const servers: ReturnType<typeof listen>[] = []
  let closed = false

  const fixture: Fixture = {
    app,
    deps,
    sql,
    tables,
    async call(method, path, body, headers = {}) {
      const init: RequestInit = { method, headers: { ...headers } }
      if (body !== undefined) {
        init.body = typeof body === 'string' ? body : JSON.stringify(body)
        if (typeof body !== 'string') (init.headers as Record<string, string>)['content-type'] ??= 'application/json'
      }
      const res = await app.handle(new Request(`http://localhost/foreman${path}`, init))
      const text = await res.text()
      return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers }
    },
    serve() {
      // The production listener (body limits, idle timeout), on a free port.
      const server = listen(app, { port: 0 })
      servers.push(server)
      return `http://127.0.0.1:${server.port}/foreman`
    },
    async close() {
      if (closed) return
      closed = true
      events.close()
      for (const server of servers) server.stop(true)
      await Promise.all(sweeps.map((s) => s.stop()))
      await events.stop()
      if (!options.keepTables) {
        await dropTables(sql, tables)
      }
      await connections.end()
    },
  }
  afterAll(() => fixture.close())
  return fixture
}
