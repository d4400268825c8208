/** Shared set-up for benchmarks: a database, and Foreman instances on it served on port 0. */
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../src/app'
import { parseSse } from '../src/client/sse'
import { loadConfig } from '../src/config'
import { createNotifySql, createSql, type Sql } from '../src/db/client'
import { startEmbeddedPostgres } from '../src/db/embedded'
import { dropTables, migrate } from '../src/db/migrate'
import { type Tables, tablesFor } from '../src/db/tables'
import { createLiveEvents, type LiveEvents } from '../src/events/live'
import { createLogger } from '../src/log'
import { createMetrics } from '../src/metrics/registry'

/** DATABASE_URL when set, else an embedded Postgres (default durability) in a temporary folder. */
export async function benchDatabase(): Promise<{ url: string; stop: () => Promise<void> }> {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, stop: async () => {} }
  const dir = await mkdtemp(join(tmpdir(), 'foreman-bench-'))
  await chmod(dir, 0o755)
  const db = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), relocationDir: join(dir, 'relocated') })
  const stop = async () => {
    await db.stop()
    await rm(dir, { recursive: true, force: true })
  }
  return { url: db.url, stop }
}

/** One Foreman instance on a shared database, served on a free port. */
export interface BenchInstance {
  base: string
  sql: Sql
  tables: Tables
  events: LiveEvents
  close(dropTables: boolean): Promise<void>
}

/** Starts an instance on `prefix`; `notify: false` keeps its changes in-process (events "off"). */
export async function startInstance(url: string, prefix: string, notify = true): Promise<BenchInstance> {
  const config = { ...loadConfig({}), tablePrefix: prefix }
  const sql = createSql({ url, max: config.database.poolMax })
  const notifySql = notify ? createNotifySql(url) : null
  const tables = tablesFor(prefix)
  await migrate(sql, tables)
  const log = createLogger('PROD', 'warn')
  const events = createLiveEvents({ sql, notifySql, tables, log, pollIntervalMs: config.eventsPollSec * 1000 })
  await events.start()
  const app = buildApp({ config, sql, readSql: sql, tables, log, events, metrics: createMetrics() })
  const server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: app.fetch, idleTimeout: 60 })
  return {
    base: `http://127.0.0.1:${server.port}/foreman`,
    sql,
    tables,
    events,
    async close(drop) {
      events.close()
      server.stop(true)
      await events.stop()
      if (drop) {
        await dropTables(sql, tables)
      }
      await Promise.all([sql.end(), notifySql?.end()])
    },
  }
}

/** POSTs JSON. */
export const post = (url: string, body: unknown) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

/** Runs `workers` loops of `step` until one returns false; answers elapsed seconds. */
export async function timed(workers: number, step: () => Promise<boolean>): Promise<number> {
  const started = performance.now()
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (await step());
    }),
  )
  return (performance.now() - started) / 1000
}

/** The p-th percentile (0–100) of some numbers. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

/** Rounds for the report. */
export const round = (n: number, digits = 2) => Number(n.toFixed(digits))

/** Reads an SSE stream with the client's parser, calling `onEvent` per event until aborted. */
export async function readSse(
  url: string,
  onEvent: (event: string, data: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const res = await fetch(url, { signal })
  if (!res.body) throw new Error(`no stream from ${url}: ${res.status}`)
  try {
    for await (const message of parseSse(res.body)) onEvent(message.event, message.data)
  } catch (err) {
    if (!signal.aborted) throw err
  }
}
